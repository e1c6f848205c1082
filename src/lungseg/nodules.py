"""Nodule finding on whole CT: the nodule model runs on the lungs' bounding box of every slice
that holds lung, resampled to the pixel spacing it was trained at, and its output is kept only
in and against the lungs."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .io import CTImage

TRAINING_PIXEL_MM = 0.7  # LIDC crops are at native CT resolution, typically 0.6-0.8 mm
MARGIN_PX = 8


class NoduleSegmenter:
    def __init__(self, segmenter, threshold: float = 0.5, pixel_mm: float = TRAINING_PIXEL_MM):
        self.segmenter = segmenter  # a ModelSegmenter whose classes include "nodule"
        self.segmenter.input_size = None  # full-resolution crops (padded), never squashed to 128
        self.channel = segmenter.classes.index("nodule")
        self.threshold = threshold
        self.pixel_mm = pixel_mm
        self.name = segmenter.name

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", precision: str = "auto", **kwargs) -> "NoduleSegmenter":
        from .infer import ModelSegmenter

        return cls(ModelSegmenter.from_checkpoint(path, device=device, precision=precision), **kwargs)

    def probability(self, ct: CTImage, lungs: np.ndarray) -> np.ndarray:
        """Nodule probability (z, y, x) float32; zero outside the lungs' slices and box."""
        import torch
        import torch.nn.functional as F

        prob = np.zeros(ct.shape, np.float32)
        zs = np.nonzero(lungs.any(axis=(1, 2)))[0]
        if len(zs) == 0:
            return prob
        ys, xs = np.nonzero(lungs.any(axis=0))
        y0, y1 = max(0, ys.min() - MARGIN_PX), min(ct.shape[1], ys.max() + MARGIN_PX + 1)
        x0, x1 = max(0, xs.min() - MARGIN_PX), min(ct.shape[2], xs.max() + MARGIN_PX + 1)
        crop = ct.array[zs[0]:zs[-1] + 1, y0:y1, x0:x1]
        sx, sy = ct.spacing[0], ct.spacing[1]
        h, w = crop.shape[1:]
        size = (max(16, round(h * sy / self.pixel_mm)), max(16, round(w * sx / self.pixel_mm)))
        if size != (h, w):
            t = torch.from_numpy(np.ascontiguousarray(crop))[:, None]
            crop = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
        sub = CTImage.from_array(crop, spacing=(self.pixel_mm, self.pixel_mm, ct.spacing[2]), is_hu=ct.is_hu)
        p = np.empty(sub.shape, np.float32)
        for start, batch in self.segmenter.iter_probabilities(sub):
            p[start:start + batch.shape[0]] = batch[:, self.channel]
        if size != (h, w):
            p = F.interpolate(torch.from_numpy(p)[:, None], size=(h, w), mode="bilinear",
                              align_corners=False)[:, 0].numpy()
        prob[zs[0]:zs[-1] + 1, y0:y1, x0:x1] = p
        return prob

    def __call__(self, ct: CTImage, lung_labels: np.ndarray) -> np.ndarray:
        """Boolean nodule mask, kept only within 2 voxels of the lungs."""
        lungs = np.isin(lung_labels, (1, 2))
        found = self.probability(ct, lungs) >= self.threshold
        near = ndi.binary_dilation(lungs, structure=ndi.generate_binary_structure(3, 1), iterations=2)
        return found & near
