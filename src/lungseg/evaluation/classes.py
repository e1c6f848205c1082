"""The classes that evaluation scores and how each is built from a canonical label map.

Canonical codes (after a reference/prediction label map is applied):
    0 background, 1 right lung, 2 left lung, 3 nodule, 4 lung whose side is unknown
    (a binary whole-lung reference such as imlab3d or CIP wholeLung-64).

"both_lungs" counts nodule voxels as lung: a whole-lung reference drawn by a person includes
the nodules inside the lung, and our own label maps overwrite lung with 3 where a nodule is.
So right_lung + left_lung differ from both_lungs by the nodule voxels (documented, intended).
"""
from __future__ import annotations

import numpy as np

BACKGROUND, RIGHT, LEFT, NODULE, LUNG = 0, 1, 2, 3, 4

CLASS_CODES: dict[str, tuple[int, ...]] = {
    "right_lung": (RIGHT,),
    "left_lung": (LEFT,),
    "both_lungs": (RIGHT, LEFT, NODULE, LUNG),
    "nodule": (NODULE,),
}
ALL_CLASSES = tuple(CLASS_CODES)
LUNG_CLASSES = ("right_lung", "left_lung", "both_lungs")
CLASS_TITLES = {"right_lung": "right lung", "left_lung": "left lung", "both_lungs": "both lungs", "nodule": "nodule"}


def class_mask(labels: np.ndarray, name: str) -> np.ndarray:
    """Boolean mask of one evaluation class in a canonical label array."""
    codes = CLASS_CODES[name]
    if len(codes) == 1:
        return labels == codes[0]
    return np.isin(labels, codes)


def check_classes(classes) -> tuple[str, ...]:
    """Validate a list of class names; keeps the canonical order."""
    unknown = [c for c in classes if c not in CLASS_CODES]
    if unknown:
        from ..errors import LungsegError

        raise LungsegError(f"unknown class(es) {', '.join(unknown)}; choose from {', '.join(ALL_CLASSES)}")
    return tuple(c for c in ALL_CLASSES if c in set(classes))
