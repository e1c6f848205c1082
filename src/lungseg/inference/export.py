"""Export a 2D lungseg checkpoint to ONNX for the fast CPU runtime (OpenVINO, or ONNX Runtime).

The exported graph does the per-batch job: resize to the training input size, network, softmax
and, unless upsample=False, resize back to the slice size; so inference needs neither torch nor
MONAI (their import alone costs ~3.5 s per run here). A JSON sidecar beside the .onnx keeps the checkpoint's
preprocessing and classes, plus the SHA-256 of the checkpoint it came from so a stale export
is detected.

    lungseg export model.pt [-o model.onnx] [--no-resize]
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from ..errors import LungsegError
from ..io import atomic_path

SIDECAR_FORMAT = "lungseg-onnx"
META_KEYS = ("model_name", "model_kwargs", "spec", "preprocessing", "classes", "epoch", "metrics", "display_name")


def sidecar_path(onnx_path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_sidecar(onnx_path) -> dict:
    path = sidecar_path(onnx_path)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LungsegError(f"cannot read {path}: {e}") from None
    if meta.get("format") != SIDECAR_FORMAT:
        raise LungsegError(f"{path} is not a lungseg ONNX sidecar")
    return meta


def export_onnx(checkpoint, onnx_path=None, resize: bool = True, upsample: bool = True, opset: int = 17) -> Path:
    """Write <onnx_path> (default: the checkpoint's name with .onnx) and its JSON sidecar.
    resize=False leaves resizing to the caller (the nodule model runs on native-size crops);
    upsample=False ends the graph at the network's input size and leaves the way back to the
    slice size to lungseg.inference.upsample (the argmax of torch's bilinear upsampling, computed only
    along class borders: 3x faster than the graph's own upsampling on CPU)."""
    import torch
    import torch.nn.functional as F

    from ..models import load_checkpoint

    checkpoint = Path(checkpoint)
    model, meta = load_checkpoint(checkpoint)
    pre = meta.get("preprocessing", {})
    if int(pre.get("dims", 2)) != 2:
        raise LungsegError("only 2D models can be exported (3D models run in PyTorch)")
    input_size = tuple(pre["input_size"]) if resize and pre.get("input_size") else None

    class ProbabilityGraph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            h, w = x.shape[-2:]
            t = F.interpolate(x, size=input_size, mode="bilinear", align_corners=False) if input_size else x
            out = self.net(t)
            out = out[0] if isinstance(out, (tuple, list)) else out
            p = torch.softmax(out, dim=1)
            return F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False) if input_size and upsample else p

    from ..data.preprocess import input_channels

    side = input_size or (64, 64)
    example = torch.zeros(2, input_channels(pre), *side)
    onnx_path = Path(onnx_path) if onnx_path else checkpoint.with_suffix(".onnx")
    axes = {0: "batch", 2: "height", 3: "width"}
    with atomic_path(onnx_path) as tmp, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter needs no onnxscript
        torch.onnx.export(ProbabilityGraph().eval(), (example,), str(tmp), input_names=["image"],
                          output_names=["probabilities"], dynamic_axes={"image": axes, "probabilities": axes},
                          opset_version=opset, dynamo=False)
    sidecar = {k: meta[k] for k in META_KEYS if k in meta}
    sidecar.update(format=SIDECAR_FORMAT, graph_input_size=list(input_size) if input_size else None,
                   graph_upsamples=bool(upsample or not input_size),
                   source_checkpoint=checkpoint.name, source_sha256=file_sha256(checkpoint))
    sidecar.setdefault("display_name", checkpoint.stem)
    with atomic_path(sidecar_path(onnx_path)) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1, default=str))
    return onnx_path
