"""PyTorch runtime: eager torch on CPU or GPU, optional bf16 autocast, MONAI's sliding window for 3D."""
from __future__ import annotations

import os

import numpy as np

from ..tta import Mirroring
from .base import Runtime, padded


def bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class TorchRuntime(Runtime):
    name = "torch"

    def __init__(self, model, input_size=None, divisibility: int = 16, device: str = "cpu",
                 precision: str = "auto"):
        import torch

        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.input_size = tuple(input_size) if input_size else None
        self.divisibility = divisibility
        use_bf16 = precision == "bf16" and (self.device.type != "cpu" or bf16_supported())
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        self.precision = "bf16" if use_bf16 else "fp32"
        if self.device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)

    def _forward(self, batch, mirroring: Mirroring):
        import torch

        def run(t):
            out = self.model(t)
            return torch.softmax((out[0] if isinstance(out, (tuple, list)) else out).float(), dim=1)

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            return mirroring.average(run, batch, lambda t, axes: torch.flip(t, dims=axes))

    def probabilities(self, x: np.ndarray, mirroring: Mirroring) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        b, c, h, w = x.shape
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        if self.input_size:
            t = F.interpolate(t, size=self.input_size, mode="bilinear", align_corners=False)
        else:
            size = padded((h, w), self.divisibility)
            t = F.pad(t, (0, size[1] - w, 0, size[0] - h), mode="replicate")
        probs = self._forward(t, mirroring)
        if self.input_size:
            probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
        else:
            probs = probs[..., :h, :w]
        return probs.cpu().numpy()

    def volume_probabilities(self, x: np.ndarray, roi, mirroring: Mirroring) -> np.ndarray:
        import torch
        from monai.inferers import sliding_window_inference

        t = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)
        probs = sliding_window_inference(t, roi_size=tuple(roi), sw_batch_size=2,
                                         predictor=lambda p: self._forward(p, mirroring),
                                         overlap=0.25, mode="gaussian", padding_mode="replicate")
        return probs[0].cpu().numpy().astype(np.float32)
