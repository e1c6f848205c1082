"""ModelSegmenter: a trained checkpoint -> probabilities -> labels on the CT's grid.

2D models run slice by slice in batches (each slice resized to the training input size and
back); 3D models run MONAI's sliding-window inference. Precision "auto" is fp32: bf16 autocast
(precision="bf16") is ~2x faster on CPUs that have it but moved Dice by up to 0.002 on coarse
scans (benchmarks/runtimes.py). Test-time augmentation mirrors left/right and swaps the two
lung channels back. Full probability maps are kept only when asked for (they are large).
`from_checkpoint` runs the model on OpenVINO (lungseg.infer_openvino) when an ONNX export of the
same weights lies beside the checkpoint: same masks, no torch import.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import LungsegError
from .io import CTImage
from .postprocess import low_confidence_map, postprocess_labels
from .segmenters import SegmenterOutput
from .upsample import class_argmax

CLASS_TO_LABEL = {"background": 0, "right_lung": 1, "left_lung": 2, "nodule": 3, "lung": 1}


def bf16_supported() -> bool:
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class ModelSegmenter:
    def __init__(self, model, meta: dict, device: str = "cpu", precision: str = "auto", tta: bool = False,
                 batch_size: int = 16, keep_probabilities: bool = False, crf: bool = False,
                 low_confidence: bool = True):
        import torch

        self._read_meta(meta, tta, batch_size, keep_probabilities, crf, low_confidence)
        self.runtime = "torch"
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        use_bf16 = precision == "bf16" and (self.device.type != "cpu" or bf16_supported())
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        if self.device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)

    def _read_meta(self, meta: dict, tta: bool, batch_size: int, keep_probabilities: bool, crf: bool,
                   low_confidence: bool = True) -> None:
        """What inference needs from a checkpoint's metadata (shared by every runtime)."""
        self.meta = meta
        pre = meta.get("preprocessing", {})
        self.intensity = pre.get("intensity", {"mode": "window", "windows": ["lung"]})
        self.dims = int(pre.get("dims", 2))
        self.input_size = pre.get("input_size")
        self.patch_size = pre.get("patch_size")
        self.context = int(pre.get("context_slices", 0))  # 2.5D: neighbour slices as channels
        self.classes = list(meta.get("classes", ["background", "right_lung", "left_lung", "nodule"]))
        self.name = meta.get("display_name") or Path(meta.get("path", "model")).stem
        self.requires_hu = self.intensity.get("mode") in ("window", "clip")
        self.tta = tta
        self.batch_size = batch_size
        self.keep_probabilities = keep_probabilities
        self.crf = crf  # dense-CRF refinement of the probabilities (lungseg.crf)
        self.low_confidence = low_confidence  # the map previews show; a scan-sized array, so optional

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", runtime: str = "auto", resize: bool = True,
                        **kwargs) -> "ModelSegmenter":
        """runtime: 'torch', 'openvino' (needs an up-to-date `lungseg export` beside the
        checkpoint) or 'auto' (OpenVINO on CPU when such an export exists, else torch)."""
        from .infer_openvino import OpenVINOSegmenter, openvino_export_for

        if runtime not in ("auto", "torch", "openvino"):
            raise LungsegError(f"unknown runtime '{runtime}' (use auto, torch or openvino)")
        onnx = openvino_export_for(path, resize=resize, required=runtime == "openvino") \
            if runtime in ("auto", "openvino") and device == "cpu" else None
        if onnx is not None:
            return OpenVINOSegmenter(onnx, **kwargs)
        from .models import load_checkpoint

        model, meta = load_checkpoint(path, map_location=device)
        segmenter = cls(model, meta, device=device, **kwargs)
        if not resize:
            segmenter.input_size = None
        return segmenter

    # ---- public ------------------------------------------------------------------------------
    def iter_probabilities(self, ct: CTImage):
        """Yield (first slice, probabilities (b, K, y, x) float32) batch by batch, so a big scan
        never holds its whole network input or probability volume in memory (2D models)."""
        from .data.preprocess import normalize_intensity

        if self.dims != 2:
            x = normalize_intensity(ct.array, self.intensity, is_hu=ct.is_hu)
            yield 0, self._predict_3d(x).transpose(1, 0, 2, 3)
            return
        for start, x in self.iter_inputs(ct):
            yield start, self.predict_batch(x)

    def iter_inputs(self, ct: CTImage):
        """(first slice, normalised network input (b, C, y, x)) per batch of a 2D model."""
        from .data.preprocess import context_indices, intensity_stats, normalize_intensity, stack_context

        stats = intensity_stats(ct.array, self.intensity)  # whole-scan statistics, as in training
        for start in range(0, ct.shape[0], self.batch_size):
            stop = min(start + self.batch_size, ct.shape[0])
            if self.context:
                chunk = ct.array[context_indices(start, stop, ct.shape[0], self.context)]
                x = normalize_intensity(chunk, self.intensity, is_hu=ct.is_hu, stats=stats)
                yield start, stack_context(x, self.context)
            else:
                yield start, normalize_intensity(ct.array[start:stop], self.intensity, is_hu=ct.is_hu, stats=stats,
                                                 batch_first=True)

    def _iter_outputs(self, ct: CTImage, keep: bool):
        """(first slice, winning class (b, y, x), low-confidence map, probabilities or None)."""
        for start, p in self.iter_probabilities(ct):
            low = low_confidence_map(p.transpose(1, 0, 2, 3)) if self.low_confidence else None
            yield start, class_argmax(p), low, p if keep else None

    def predict_probabilities(self, ct: CTImage) -> np.ndarray:
        """(K, z, y, x) float32 softmax probabilities in checkpoint class order."""
        out = np.empty((len(self.classes),) + ct.shape, dtype=np.float32)
        for start, p in self.iter_probabilities(ct):
            out[:, start:start + p.shape[0]] = p.transpose(1, 0, 2, 3)
        return out

    def __call__(self, ct: CTImage, postprocess: bool = True) -> SegmenterOutput:
        lut = np.array([CLASS_TO_LABEL.get(c, 0) for c in self.classes], dtype=np.uint8)  # class -> label
        labels = np.empty(ct.shape, dtype=np.uint8)
        low = np.empty(ct.shape, dtype=bool) if self.low_confidence else None
        keep = self.keep_probabilities or self.crf
        probs = np.empty((len(self.classes),) + ct.shape, np.float16) if keep else None
        for start, w, lo, p in self._iter_outputs(ct, keep):
            sl = slice(start, start + w.shape[0])
            labels[sl] = lut[w]  # batch by batch: no scan-sized array of class indices
            if low is not None:
                low[sl] = lo
            if probs is not None:
                probs[:, sl] = p.transpose(1, 0, 2, 3)
        if self.crf:
            from .crf import dense_crf

            labels = lut[dense_crf(ct.array, probs, spacing_xy=ct.spacing[:2])]
        if "lung" in self.classes and "left_lung" not in self.classes:  # a both-lungs model
            from .classical import split_left_right

            labels = np.where(labels == 3, 3, split_left_right(labels == 1, ct)).astype(np.uint8)
        if postprocess:
            labels = postprocess_labels(labels, ct.spacing_zyx, hu=ct.array if ct.is_hu else None)
        return SegmenterOutput(labels, probs if self.keep_probabilities else None, low)

    # ---- internals ---------------------------------------------------------------------------
    def _forward(self, batch):
        import torch

        def run(t):
            out = self.model(t)
            return torch.softmax((out[0] if isinstance(out, (tuple, list)) else out).float(), dim=1)

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            return self.mirror_average(run, batch, lambda t, axes: torch.flip(t, dims=axes))

    def tta_mirrors(self) -> tuple[tuple[int, ...], ...]:
        """In-plane axes mirrored by test-time augmentation, besides the plain pass. Lung models:
        the left/right mirror, whose right and left lungs swap back (an up/down mirror makes an
        anatomy they never saw). Models whose classes have no side (the nodule model): every
        in-plane mirroring (x, y, both; nnU-Net's 2D mirroring), which lifts the LIDC validation
        crop Dice of the shipped one from 0.794 to 0.802 (the left/right mirror alone: 0.799)."""
        if not self.tta:
            return ()
        if any("lung" in c for c in self.classes):
            return ((-1,),)
        return ((-1,), (-2,), (-2, -1))

    def mirror_average(self, run, x, flip):
        """Mean of run(x) over the TTA mirrorings (run: batch -> probabilities; flip(a, axes))."""
        probs = run(x)
        mirrors = self.tta_mirrors()
        for axes in mirrors:
            p = flip(run(flip(x, axes)), axes)
            probs = probs + (p[:, self._swap_lr()] if -1 in axes else p)
        return probs / (1 + len(mirrors)) if mirrors else probs

    def _swap_lr(self) -> list[int]:
        """Channel order that turns a mirrored prediction's right lung back into the left."""
        order = list(range(len(self.classes)))
        if "right_lung" in self.classes and "left_lung" in self.classes:
            r, l_ = self.classes.index("right_lung"), self.classes.index("left_lung")
            order[r], order[l_] = l_, r
        return order

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """(b, C, h, w) network input -> (b, K, h, w) probabilities at the input's size."""
        import torch
        import torch.nn.functional as F

        b, c, h, w = x.shape
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        if self.input_size:
            t = F.interpolate(t, size=tuple(self.input_size), mode="bilinear", align_corners=False)
        else:
            size = _padded((h, w), self._divisibility())
            t = F.pad(t, (0, size[1] - w, 0, size[0] - h), mode="replicate")
        probs = self._forward(t)
        if self.input_size:
            probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
        else:
            probs = probs[..., :h, :w]
        return probs.cpu().numpy()

    def _predict_3d(self, x: np.ndarray) -> np.ndarray:
        import torch
        from monai.inferers import sliding_window_inference

        roi = tuple(self.patch_size or self.input_size or (96, 96, 96))
        t = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device)
        probs = sliding_window_inference(t, roi_size=roi, sw_batch_size=2, predictor=self._forward,
                                         overlap=0.25, mode="gaussian", padding_mode="replicate")
        return probs[0].cpu().numpy().astype(np.float32)

    def _divisibility(self) -> int:
        return int(self.meta.get("spec", {}).get("divisibility", 16))


def _padded(shape, k: int) -> tuple[int, ...]:
    return tuple(int(np.ceil(s / k) * k) for s in shape)
