"""Network runtimes behind one interface (base.Runtime): PyTorch (torch_runtime) and OpenVINO
(openvino_runtime). `load` picks one for a checkpoint; callers never see which."""
from __future__ import annotations

from pathlib import Path

from ...errors import LungsegError
from .base import Runtime, padded

RUNTIMES = ("auto", "torch", "openvino")


def load(path, device: str = "cpu", runtime: str = "auto", resize: bool = True,
         precision: str = "auto") -> tuple[Runtime, dict]:
    """(runtime, checkpoint metadata) for a checkpoint. runtime: 'torch', 'openvino' (needs an
    up-to-date `lungseg export` beside the checkpoint) or 'auto' (OpenVINO on CPU when such an
    export exists, else torch). resize=False: the network sees native-size input (padded)."""
    if runtime not in RUNTIMES:
        raise LungsegError(f"unknown runtime '{runtime}' (use auto, torch or openvino)")
    if runtime in ("auto", "openvino") and device == "cpu":
        from .openvino_runtime import OpenVINORuntime, openvino_export_for

        onnx = openvino_export_for(path, resize=resize, required=runtime == "openvino")
        if onnx is not None:
            ov = OpenVINORuntime(onnx, precision=precision)
            meta = dict(ov.meta, path=str(onnx))
            ov.divisibility = divisibility(meta)
            return ov, meta
    from ...models import load_checkpoint
    from .torch_runtime import TorchRuntime

    model, meta = load_checkpoint(Path(path), map_location=device)
    size = meta.get("preprocessing", {}).get("input_size") if resize else None
    return TorchRuntime(model, size, divisibility(meta), device=device, precision=precision), meta


def divisibility(meta: dict) -> int:
    return int(meta.get("spec", {}).get("divisibility", 16))


__all__ = ["RUNTIMES", "Runtime", "divisibility", "load", "padded"]
