"""Stage 4, post-processing: the listed nodules go into the lung label map (label 3) and are
cleaned (lungseg.postprocess.clean_nodules); each nodule voxel keeps its detection score."""
from __future__ import annotations

import numpy as np

from ..postprocess import clean_nodules


def add_nodules(labels: np.ndarray, voxels: tuple[np.ndarray, ...], scores: np.ndarray, spacing_zyx,
                postprocess: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels with the nodules, flat indices of the scored voxels, their scores). labels is
    changed in place (it is the lung stage's own new array)."""
    labels[voxels] = 3
    if postprocess:
        labels = clean_nodules(labels, np.asarray(spacing_zyx))
    flat = np.ravel_multi_index(voxels, labels.shape) if len(voxels[0]) else np.zeros(0, np.intp)
    return labels, flat, np.asarray(scores, dtype=np.float32)
