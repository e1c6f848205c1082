"""Stage 5, report: lungseg.volumetry's numbers, each nodule with the detection score of the
candidate it grew from (the highest score among its voxels)."""
from __future__ import annotations

import numpy as np

from ..io import CTImage
from ..volumetry import build_report
from .output import SegmenterOutput


def segmentation_report(ct: CTImage, labels: np.ndarray, out: SegmenterOutput, model: str,
                        notes: list[str]) -> dict:
    score_of = voxel_score_lookup(out.nodule_voxels, out.nodule_voxel_scores, labels.shape) \
        if out.nodule_voxel_scores is not None else None
    report = build_report(ct, labels, model=model, warnings=notes, score_of=score_of)
    if score_of is not None:
        report["detection_score"] = out.detection_score_meaning
        report["nodule_operating_point"] = out.detection_threshold
    return report


def voxel_score_lookup(flat: np.ndarray, scores: np.ndarray, shape):
    """pts (index arrays) -> the highest score among those of its voxels that were scored, or None."""
    order = np.argsort(flat, kind="stable")
    flat, scores = np.asarray(flat)[order], np.asarray(scores)[order]

    def score_of(pts):
        if not len(flat):
            return None
        q = np.ravel_multi_index(pts, shape)
        i = np.clip(np.searchsorted(flat, q), 0, len(flat) - 1)
        hit = flat[i] == q
        return float(scores[i[hit]].max()) if hit.any() else None

    return score_of
