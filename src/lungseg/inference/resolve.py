"""Segmenters: anything that turns a CTImage into a label map. `resolve_segmenter` maps the
user's --model choice (classical, default, a checkpoint path) to one."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LungsegError, NotHUError
from ..io import CTImage
from .output import SegmenterOutput


class ClassicalSegmenter:
    """Thresholds + connected components; no weights, works on HU and image-mode input."""

    name = "classical"
    requires_hu = False

    def __call__(self, ct: CTImage, postprocess: bool = True) -> SegmenterOutput:
        from ..classical import segment_classical

        return SegmenterOutput(segment_classical(ct))


def check_intensity(segmenter, ct: CTImage) -> None:
    """Refuse non-HU input for HU-only models instead of returning an empty mask."""
    if getattr(segmenter, "requires_hu", False) and not ct.is_hu:
        lo, hi = np.percentile(ct.array, [1, 99])
        raise NotHUError(
            f"input values ({lo:.4g}..{hi:.4g}) are not Hounsfield units, and model '{segmenter.name}' "
            "needs HU; use --model classical (or an image-mode model) for pictures and normalised "
            "data, or --intensity hu if the values really are HU")


def resolve_segmenter(model="default", device: str = "cpu", notes: list[str] | None = None, **options):
    """'classical', 'default' (the shipped model; classical if none ships), a checkpoint path,
    or an object that is already a segmenter (callable with .name). options (networks only):
    runtime ('auto' | 'torch' | 'openvino'), precision ('auto' | 'fp32' | 'bf16'), tta (bool);
    default model only: nodule_threshold (float), classify (bool: the nodules' malignancy)."""
    notes = notes if notes is not None else []
    if callable(model) and hasattr(model, "name"):
        return model
    model = str(model)
    if model != "default" and options.pop("nodule_threshold", None) is not None:
        notes.append(f"--nodule-threshold applies to the default model's nodule list only; ignored for '{model}'")
    if model != "default" and options.pop("classify", None) is not None:
        notes.append(f"the malignancy classifier (--no-classify, classify=) runs on the default model's nodules "
                     f"only; ignored for '{model}'")
    if model == "classical":
        return ClassicalSegmenter()
    if model == "default":
        from .pipeline import DefaultSegmenter, default_available

        if default_available():
            return DefaultSegmenter(device=device, **options)
        notes.append("no trained default model is shipped in this version; used the classical segmenter")
        return ClassicalSegmenter()
    path = Path(model)
    if not path.exists():
        raise LungsegError(f"model '{model}' not found (use classical, default, or a checkpoint file path)")
    return _load_model(path, device, **options)


def _load_model(path: Path, device: str, **options):
    from .network import ModelSegmenter

    return ModelSegmenter.from_checkpoint(path, device=device, **options)
