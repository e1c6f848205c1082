"""Patient-level splits (never slice-level) and duplicate detection across splits."""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from ..errors import LungsegError


def split_patients(patient_ids, fractions=(0.7, 0.2, 0.1), seed: int = 0) -> dict[str, list[str]]:
    """Shuffle unique patient ids (seeded) and cut them into train/val/test by `fractions`.

    Every non-zero fraction gets at least one patient when there are enough patients."""
    ids = sorted(set(patient_ids))
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6:
        raise LungsegError(f"split fractions must be three numbers summing to 1, got {list(fractions)}")
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    n = len(order)
    counts = [int(round(f * n)) for f in fractions]
    for i, f in enumerate(fractions):  # a wanted split never ends up empty if patients allow
        if f > 0 and counts[i] == 0 and n >= sum(1 for x in fractions if x > 0):
            counts[i] = 1
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    counts[0] += n - sum(counts)
    out, start = {}, 0
    for name, c in zip(("train", "val", "test"), counts):
        out[name] = sorted(order[start:start + c])
        start += c
    return out


def kfold_patients(patient_ids, k: int, fold: int, seed: int = 0, test_fraction: float = 0.0) -> dict[str, list[str]]:
    """k-fold by patient: an optional fixed test set first, then fold `fold` of the rest is val."""
    ids = sorted(set(patient_ids))
    if k < 2 or not 0 <= fold < k:
        raise LungsegError(f"k-fold needs k >= 2 and 0 <= fold < k (got k={k}, fold={fold})")
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_test = int(round(test_fraction * len(order)))
    test, rest = order[:n_test], order[n_test:]
    if len(rest) < k:
        raise LungsegError(f"{len(rest)} patients cannot make {k} folds")
    folds = np.array_split(np.arange(len(rest)), k)
    val = [rest[i] for i in folds[fold]]
    train = [p for p in rest if p not in set(val)]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def image_fingerprints(case) -> list[str]:
    """One hash per 2D slice of the case's image (exact content), so a slice copied into another
    patient's volume or a 2D image saved twice is found."""
    image, _ = case.load()
    return [hashlib.sha1(np.ascontiguousarray(s).tobytes()).hexdigest() for s in image]


def find_duplicates(split_cases: dict[str, list]) -> list[dict]:
    """Identical images shared between different patients (or splits).

    Returns one record per duplicated image: {"hash", "occurrences": [(split, case_id, slice)],
    "cross_split": bool}. Blank slices (one value everywhere, e.g. padding) are ignored."""
    seen = defaultdict(list)
    for split, cases in split_cases.items():
        for case in cases:
            image, _ = case.load()
            for z, h in enumerate(image_fingerprints(case)):
                if float(image[z].max()) == float(image[z].min()):
                    continue
                seen[h].append((split, case.case_id, case.patient_id, z))
    found = []
    for h, occ in seen.items():
        patients = {o[2] for o in occ}
        if len(patients) > 1:  # the same image under two patients: a leak or a copy
            found.append({"hash": h[:12], "occurrences": [(s, c, z) for s, c, _, z in occ],
                          "cross_split": len({o[0] for o in occ}) > 1})
    return found
