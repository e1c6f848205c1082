"""The shipped default: a HU lung model (right/left), a nodule model run inside the lungs, and an
image-mode lung model for pictures and normalised data. Weights live in lungseg/weights/."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import NotHUError
from .io import CTImage
from .postprocess import clean_nodules
from .segmenters import SegmenterOutput

WEIGHTS_DIR = Path(__file__).parent / "weights"
NODULE_MAX_PIXEL_MM = 1.5  # the nodule model learnt on thin-slice crops (~0.7 mm pixels)
LUNG_HU = WEIGHTS_DIR / "lung_hu.pt"
LUNG_IMAGE = WEIGHTS_DIR / "lung_image.pt"
NODULE = WEIGHTS_DIR / "nodule.pt"


def _nodule_precision(precision: str) -> str:
    """"auto" runs the nodule network in bf16 where the CPU has it: benchmarks/runtimes.py found
    its LIDC validation Dice within 0.001 of fp32's (the lung network's was not: it stays fp32)."""
    if precision != "auto":
        return precision
    from .infer_openvino import cpu_has_bf16

    return "bf16" if cpu_has_bf16() else "fp32"


def default_available() -> bool:
    return LUNG_HU.exists()


class DefaultSegmenter:
    name = "default"
    requires_hu = False  # HU input goes to the HU models, anything else to the image-mode model

    def __init__(self, device: str = "cpu", tta: bool = False, nodules: bool = True, precision: str = "auto",
                 keep_probabilities: bool = False, runtime: str = "auto", crf: bool = False,
                 low_confidence: bool = True):
        from .infer import ModelSegmenter
        from .nodules import NoduleSegmenter

        kw = dict(device=device, precision=precision, tta=tta, keep_probabilities=keep_probabilities, runtime=runtime,
                  low_confidence=low_confidence)
        self.lung_hu = ModelSegmenter.from_checkpoint(LUNG_HU, crf=crf, **kw)
        self._image_kw = kw
        self._lung_image = None
        self.nodule = NoduleSegmenter.from_checkpoint(NODULE, device=device, precision=_nodule_precision(precision),
                                                      runtime=runtime, tta=tta) \
            if nodules and NODULE.exists() else None

    @property
    def lung_image(self):
        """The image-mode model, loaded on first use (most input is HU and never needs it)."""
        if self._lung_image is None and LUNG_IMAGE.exists():
            from .infer import ModelSegmenter

            self._lung_image = ModelSegmenter.from_checkpoint(LUNG_IMAGE, **self._image_kw)
        return self._lung_image

    def __call__(self, ct: CTImage, postprocess: bool = True) -> SegmenterOutput:
        if not ct.is_hu:
            if self.lung_image is None:
                raise NotHUError("input is not in Hounsfield units and no image-mode model is installed; "
                                 "use --model classical, or --intensity hu if the values are HU")
            out = self.lung_image(ct, postprocess=postprocess)
            out.model = "default (image-mode lungs)"
            return out
        out = self.lung_hu(ct, postprocess=postprocess)
        out.model = "default (lungs)"
        if self.nodule is not None and min(ct.spacing[:2]) > NODULE_MAX_PIXEL_MM:
            out.notes.append(f"nodules not searched: pixels are {min(ct.spacing[:2]):.2f} mm, the nodule model "
                             f"needs <= {NODULE_MAX_PIXEL_MM} mm")
        elif self.nodule is not None:
            labels = out.labels  # the lung model's own new array: nodules go in place
            labels[self.nodule.find(ct, labels)] = 3
            out.labels = clean_nodules(labels, np.asarray(ct.spacing_zyx)) if postprocess else labels
            out.model = "default (lungs + nodules)"
        return out
