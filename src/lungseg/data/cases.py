"""Case: one labelled image of one patient, loaded lazily, labels named so any source can feed
any class list. Images are float32 (z, y, x) in canonical LPS order (a 2D slice has z = 1);
labels uint8 on the same grid, with `label_names` saying what each value means.

Canonical class names: background, right_lung, left_lung, nodule, and lung (= right or left),
so a both-lungs mask trains a "lung" class and a left/right map can be merged into one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import LungsegError

CANONICAL = ("background", "right_lung", "left_lung", "nodule", "lung")
_SYNONYMS = [  # (pattern on a normalised name, canonical name); first match wins
    (r"^(bg|background|0)$", "background"),
    (r"right.*lung|lung.*right|^r_?lung$|^rightlung$", "right_lung"),
    (r"left.*lung|lung.*left|^l_?lung$|^leftlung$", "left_lung"),
    (r"nodule|tumou?r|lesion|mass|cancer", "nodule"),
    (r"^(lung|lungs|whole_?lung|lung_?mask)$", "lung"),
]


def canonical_name(name: str) -> str:
    """Map a label name from a dataset.json or config to our canonical vocabulary (else keep it)."""
    norm = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    for pattern, canon in _SYNONYMS:
        if re.search(pattern, norm):
            return canon
    return norm


@dataclass
class Case:
    case_id: str
    patient_id: str
    loader: Callable[[], tuple]  # -> (image float32 zyx, label uint8 zyx[, spacing xyz])
    label_names: dict[int, str]  # value -> canonical class name (0 is background)
    is_hu: bool
    spacing: tuple[float, float, float] | None = None  # (x, y, z) mm when known
    source: str = ""
    cache: bool = True
    meta: dict = field(default_factory=dict)
    _data: tuple | None = field(default=None, repr=False)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._data is not None:
            return self._data
        loaded = self.loader()  # (image, label) or (image, label, spacing_xyz) when the loader knows it
        image, label = loaded[:2]
        if len(loaded) > 2 and loaded[2] is not None:
            self.spacing = tuple(float(v) for v in loaded[2])
        image = np.asarray(image, dtype=np.float32)
        label = np.asarray(label, dtype=np.uint8)
        if image.ndim == 2:
            image, label = image[None], label[None]
        if image.shape != label.shape:
            raise LungsegError(f"case {self.case_id}: image {image.shape} and label {label.shape} differ in shape")
        if self.cache:
            self._data = (image, label)
        return image, label


def label_lut(label_names: dict[int, str], classes: list[str], overrides: dict | None = None) -> np.ndarray:
    """A 256-entry lookup table: source label value -> index into `classes`.

    A "lung" class takes right_lung, left_lung and lung values; other names must match exactly.
    Values whose class is not wanted become background (e.g. nodules for a lungs-only model) unless
    `overrides` maps their name to another class (e.g. {"nodule": "lung"})."""
    classes = [canonical_name(c) for c in classes]
    overrides = {canonical_name(k): canonical_name(v) for k, v in (overrides or {}).items()}
    lut = np.zeros(256, dtype=np.uint8)
    for value, name in label_names.items():
        name = overrides.get(canonical_name(name), canonical_name(name))
        if name in classes:
            target = name
        elif name in ("right_lung", "left_lung") and "lung" in classes:
            target = "lung"
        else:
            continue
        lut[int(value)] = classes.index(target)
    return lut


def missing_classes(label_names: dict[int, str], classes: list[str], overrides: dict | None = None) -> list[str]:
    """Classes in `classes` that this source cannot provide (so a model would never see them)."""
    lut = label_lut(label_names, classes, overrides)
    have = set(lut[[int(v) for v in label_names]].tolist()) | {0}
    return [c for i, c in enumerate(classes) if i not in have]
