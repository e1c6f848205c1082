"""Run a network saved by lungseg.models.exported: OpenVINO on its ONNX export when it is there
(no torch import), else PyTorch. input (n, ...) -> logits (n,)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def exported_runner(weights, runtime: str, load_torch):
    """load_torch(weights) -> (torch model, meta), used when OpenVINO or the export is missing."""
    onnx = Path(weights).with_suffix(".onnx")
    if runtime in ("auto", "openvino") and onnx.exists():
        from .openvino_runtime import openvino_available, openvino_core

        if openvino_available():
            compiled = openvino_core().compile_model(str(onnx), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            return lambda x: np.asarray(compiled(np.ascontiguousarray(x, np.float32))[0])[:, 0]
    import torch

    model, _ = load_torch(weights)

    def run(x):
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()[:, 0]

    return run
