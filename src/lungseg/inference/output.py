"""What every segmenter returns (the lowest layer of the inference package: imports nothing of it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SegmenterOutput:
    labels: np.ndarray  # uint8 (z, y, x), canonical grid
    probabilities: np.ndarray | None = None  # float (C, z, y, x) when the segmenter has them
    low_confidence: np.ndarray | None = None  # bool (z, y, x)
    notes: list[str] = field(default_factory=list)  # what the user should know about this result
    model: str | None = None  # what produced this result, when it differs from the segmenter's name
    # scored nodule findings: flat voxel indices (into the canonical grid) and each voxel's
    # detection score, so the report can give every final nodule the score of what it grew from
    nodule_voxels: np.ndarray | None = None
    nodule_voxel_scores: np.ndarray | None = None
    detection_score_meaning: str | None = None  # what the scores are, written once in the report
    detection_threshold: float | None = None  # the operating point: findings listed from this score on
    # malignancy (stage 6, classify.py), carried like the detection scores: the flat indices of the
    # classified nodules' voxels, each voxel's index into malignancy_results (one classifier answer,
    # {'malignancy_score', 'malignancy_class'}, per final nodule) and what the scores mean
    malignancy_voxels: np.ndarray | None = None
    malignancy_voxel_ids: np.ndarray | None = None
    malignancy_results: list[dict] | None = None
    malignancy: dict | None = None  # the classifier's describe(): meaning, caveat, threshold, classes
