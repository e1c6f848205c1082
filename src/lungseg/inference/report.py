"""Stage 5, report: lungseg.volumetry's numbers, each nodule with the detection score of the
candidate it grew from (the highest score among its voxels) and, when the pipeline classified
the nodules (classify.py), its malignancy_score and class; the meanings are written once."""
from __future__ import annotations

import numpy as np

from ..io import CTImage
from ..volumetry import build_report
from .output import SegmenterOutput


def segmentation_report(ct: CTImage, labels: np.ndarray, out: SegmenterOutput, model: str,
                        notes: list[str]) -> dict:
    score_of = voxel_score_lookup(out.nodule_voxels, out.nodule_voxel_scores, labels.shape) \
        if out.nodule_voxel_scores is not None else None
    report = build_report(ct, labels, model=model, warnings=notes, score_of=score_of,
                          malignancy_of=malignancy_lookup(out, labels.shape))
    if score_of is not None:
        report["detection_score"] = out.detection_score_meaning
        report["nodule_operating_point"] = out.detection_threshold
    if out.malignancy is not None:
        report["malignancy"] = out.malignancy
    return report


def malignancy_lookup(out: SegmenterOutput, shape):
    """pts (index arrays of one nodule) -> its {'malignancy_score', 'malignancy_class'}, or None
    (no classifier ran, or the nodule was not among those classified)."""
    if out.malignancy_results is None or out.malignancy_voxels is None:
        return None
    which = voxel_score_lookup(out.malignancy_voxels, out.malignancy_voxel_ids, shape)
    results = out.malignancy_results

    def malignancy_of(pts):
        i = which(pts)
        return None if i is None else dict(results[int(i)])

    return malignancy_of


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
