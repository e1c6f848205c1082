"""OpenVINO runtime: runs a `lungseg export` ONNX graph on the CPU, no torch needed.

Chosen by measurement (benchmarks/runtimes.py): OpenVINO fp32 is the fastest runtime whose
masks keep PyTorch fp32's Dice to 0.001 (bf16 is faster but moves Dice by up to 0.002 on coarse
scans, so it is opt-in: precision="bf16"), and a run skips the ~3.5 s import of torch and MONAI.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np

from ...errors import LungsegError
from ..upsample import bilinear
from ..export import file_sha256, read_sidecar
from ..tta import Mirroring
from .base import Runtime, padded


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_export_for(checkpoint, resize: bool = True, required: bool = False) -> Path | None:
    """The ONNX export beside `checkpoint` made from exactly these weights with the wanted
    resizing, or None (an error instead when `required`)."""
    checkpoint = Path(checkpoint)
    onnx = checkpoint.with_suffix(".onnx")
    problem = None
    if not openvino_available():
        problem = "the openvino package is not installed"
    elif not onnx.exists():
        problem = f"no ONNX export beside it; run `lungseg export {checkpoint}`"
    else:
        meta = read_sidecar(onnx)
        graph_resizes = bool(meta.get("graph_input_size"))
        wants_resize = resize and bool(meta.get("preprocessing", {}).get("input_size"))
        if meta.get("source_sha256") != file_sha256(checkpoint):
            problem = f"{onnx.name} was exported from other weights; run `lungseg export {checkpoint}` again"
        elif graph_resizes != wants_resize:
            problem = f"{onnx.name} {'resizes' if graph_resizes else 'does not resize'} its input, the caller " \
                      f"needs the opposite (lungseg export {'--no-resize ' if not wants_resize else ''}{checkpoint})"
    if problem is None:
        return onnx
    if required:
        raise LungsegError(f"cannot run {checkpoint.name} on OpenVINO: {problem}")
    return None


def cpu_has_bf16() -> bool:
    if not openvino_available():
        return False
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cache_dir() -> Path | None:
    """Where compiled networks are kept: $LUNGSEG_CACHE_DIR ("off": nowhere), else
    $XDG_CACHE_HOME/lungseg/openvino or ~/.cache/lungseg/openvino; None when not writable."""
    chosen = os.environ.get("LUNGSEG_CACHE_DIR")
    if chosen and chosen.lower() in ("off", "0", "none"):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lungseg" / "openvino"
    path = Path(chosen) if chosen else base
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


@functools.lru_cache(maxsize=1)
def openvino_core():
    """One OpenVINO Core per process. With a cache directory a run loads the compiled networks
    (OpenVINO keys them by graph file and settings) instead of converting and compiling the ONNX
    graphs again: 0.2 -> 0.08 s for the two default networks."""
    import openvino as ov

    core = ov.Core()
    where = cache_dir()
    if where is not None:
        core.set_property({"CACHE_DIR": str(where)})
    return core


class OpenVINORuntime(Runtime):
    name = "openvino"

    def __init__(self, onnx_path, precision: str = "auto", divisibility: int = 16):
        meta = read_sidecar(onnx_path)
        self.meta = meta
        self.input_size = tuple(meta["graph_input_size"]) if meta.get("graph_input_size") else None
        self.graph_upsamples = meta.get("graph_upsamples", True)  # else lungseg.inference.upsample goes back
        self.divisibility = divisibility
        core = openvino_core()
        if precision == "bf16" and not cpu_has_bf16():
            raise LungsegError("this CPU has no bf16 support; use --precision fp32")
        self.precision = "bf16" if precision == "bf16" else "fp32"  # "auto": fp32, see the module note
        config = {"INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        # A graph that resizes to a fixed size (the lung network) runs each batch as two halves on
        # two streams: measured on 2 cores 6.6 -> 6.3 ms per slice and ~0.25 s less on a
        # 512x512x300 run, same masks. Graphs fed windows of changing size (the nodule network)
        # gained nothing: OpenVINO re-plans for every new shape.
        self.streams = 2 if self.input_size else 1
        if self.streams > 1:
            config.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": str(self.streams)})
        self.compiled = core.compile_model(str(onnx_path), "CPU", config)
        self._local = threading.local()  # one infer request per thread: a segmenter may be shared

    @property
    def graph_resizes(self) -> bool:
        return bool(self.input_size)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._collect(self._start(x))

    def _start(self, x: np.ndarray, slot: int = 0) -> list:
        """Start the graph on batch x, split over the streams; returns the running requests.
        Two slots of requests let one batch run while the previous one's result is used. The
        requests read x in place: keep it alive until _collect."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        parts = np.array_split(x, self.streams) if len(x) >= self.streams else [x]
        slots = getattr(self._local, "slots", None)
        if slots is None:
            slots = self._local.slots = {}
        if slot not in slots:
            slots[slot] = [self.compiled.create_infer_request() for _ in range(self.streams)]
        requests = slots[slot][:len(parts)]
        for request, part in zip(requests, parts):
            request.start_async({0: part}, share_inputs=True)
        return requests

    @staticmethod
    def _collect(requests: list) -> np.ndarray:
        for request in requests:
            request.wait()
        return np.concatenate([r.get_output_tensor(0).data for r in requests])  # a copy: requests reuse buffers

    def _graph_probabilities(self, x: np.ndarray, mirroring: Mirroring) -> np.ndarray:
        """The graph's probabilities for (b, C, h, w) input (TTA averaged): at the slice size, or
        at the network's input size when the graph does not upsample."""
        b, c, h, w = x.shape
        if not self.input_size:  # pad to what the network's strides divide, as the torch path does
            size = padded((h, w), self.divisibility)
            x = np.pad(x, ((0, 0), (0, 0), (0, size[0] - h), (0, size[1] - w)), mode="edge")
        # mirroring commutes with the resizing, so low-resolution outputs mirror back too
        probs = mirroring.average(self._run, x, lambda a, axes: np.flip(a, axes))
        return probs if self.input_size else probs[..., :h, :w]

    def probabilities(self, x: np.ndarray, mirroring: Mirroring) -> np.ndarray:
        probs = self._graph_probabilities(x, mirroring)
        return probs if self.graph_upsamples else bilinear(probs, x.shape[-2:])

    def iter_low_res(self, batches, mirroring: Mirroring):
        """A graph that stops at its input size yields its own output; the network runs on the
        next batch while the caller upsamples this one."""
        if self.graph_upsamples:
            yield from super().iter_low_res(batches, mirroring)
            return
        if mirroring.mirrors or not self.input_size:
            for start, x in batches:
                yield start, x.shape[-2:], self._graph_probabilities(x, mirroring)
            return
        pending = None  # numpy upsampling uses one core: keep the other busy with the next batch
        for k, (start, x) in enumerate(batches):
            running = (start, x, self._start(x, slot=k % 2))  # x stays referenced: the requests read it
            if pending is not None:
                yield pending[0], pending[1].shape[-2:], self._collect(pending[2])
            pending = running
        if pending is not None:
            yield pending[0], pending[1].shape[-2:], self._collect(pending[2])
