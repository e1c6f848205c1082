"""Candidate-scorer patches from the REAL LIDC crop stacks: every nodule of one patient split is
a positive (its readers' consensus, >= 2 readers, as the candidate), and the vessels and other
dense structures of the same stacks are negatives. The phantom patches
(scripts/build_scorer_data.py) teach the whole-scan context; these teach real nodules' texture:
part-solid and ground-glass nodules, real noise, real vessels.

    .venv/bin/python scripts/build_scorer_lidc_data.py --split train --out out/scorer3/lidc_train.npz
    .venv/bin/python scripts/build_scorer_lidc_data.py --split val --out out/scorer3/lidc_val.npz

Splits: the nodule network's patient split of the crops (70/20/10, seed 0), so a scorer trained
on --split train never sees a validation or test patient (LIDC-IDRI-0003 is a validation patient).
A crop stack holds only its nodule's own slices: beyond them the patch is filled as out-of-scan
(air), for the nodules and the negatives alike, so the cut itself tells the classes nothing.
Negatives: connected regions over -500 HU that come no nearer than 3 mm to the nodule, 2-15 mm across, centred
at least half a patch (20 mm) from the crop's in-plane edge (vessels in and out of plane, small scars), up to --negatives per stack.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from lungseg.inference.patches import PATCH, PATCH_MM

DENSE_HU = -500.0
NEGATIVE_DIAMETER_MM = (2.0, 15.0)
NODULE_CLEARANCE_MM = 3.0


def negative_regions(hu: np.ndarray, nodule: np.ndarray, spacing_zyx, rng: np.random.Generator, limit: int):
    """Label volume and the numbers of up to `limit` dense regions away from the nodule."""
    near = ndi.binary_dilation(nodule, iterations=max(1, int(round(NODULE_CLEARANCE_MM / spacing_zyx[1]))))
    ids, n = ndi.label((hu > DENSE_HU) & ~nodule)
    if n == 0:
        return ids, []
    sizes = np.bincount(ids.ravel(), minlength=n + 1).astype(float)
    touching = np.zeros(n + 1, bool)  # whole regions that reach the nodule's surroundings go, not just their near end
    touching[np.unique(ids[near])] = True
    diameter = 2 * (3 * sizes * np.prod(spacing_zyx) / (4 * np.pi)) ** (1 / 3)
    # centred at least half a patch from the crop's in-plane edge: the patch never shows the
    # crop's cut sideways (the nodules, at the crop's centre, never do)
    counts = np.maximum(sizes, 1)
    margin = PATCH * PATCH_MM / 2
    central = np.ones(n + 1, bool)
    for axis in (1, 2):
        centre = np.bincount(ids.ravel(), weights=np.indices(ids.shape)[axis].ravel(), minlength=n + 1) / counts
        central &= (centre * spacing_zyx[axis] >= margin) & ((ids.shape[axis] - 1 - centre) * spacing_zyx[axis] >= margin)
    lo, hi = NEGATIVE_DIAMETER_MM
    ok = np.nonzero((diameter >= lo) & (diameter <= hi) & central & ~touching)[0]
    ok = ok[ok > 0]
    return ids, list(rng.choice(ok, size=min(limit, len(ok)), replace=False)) if len(ok) else []


def main() -> None:
    from lungseg.classification.samples import lidc_malignancy, samples_of_split
    from lungseg.data.crop_hu import CROP_HU, crop_as_hu
    from lungseg.inference.patches import candidate_patches

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=["train", "val", "test"], required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--negatives", type=int, default=3, help="negative regions per crop stack")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crop-hu", choices=list(CROP_HU), default="window",
                    help="the crops' HU: the fixed window of the shipped scorer, or each slice's own estimated "
                         "scale (lungseg.data.crop_hu), as on real CT")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    samples = samples_of_split(lidc_malignancy(as_hu=crop_as_hu(args.crop_hu)), args.split)
    patches, labels, meta = [], [], []
    for k, s in enumerate(tqdm(samples, desc=f"LIDC {args.split} stacks")):
        full = tuple(slice(0, n) for n in s.hu.shape)
        coords = np.nonzero(s.mask)
        patches.append(candidate_patches(s.hu, s.spacing_zyx, full, coords, np.ones(len(coords[0]), np.int32), [1]))
        labels.append(1)
        meta.append((k, 1, 1.0, len(coords[0])))
        ids, negs = negative_regions(s.hu, s.mask, s.spacing_zyx, rng, args.negatives)
        if negs:
            coords = np.nonzero(ids)
            patches.append(candidate_patches(s.hu, s.spacing_zyx, full, coords, ids[coords], negs))
            labels += [0] * len(negs)
            meta += [(k, int(c), 1.0, int((ids == c).sum())) for c in negs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, patches=np.concatenate(patches).astype(np.float16), labels=np.array(labels, np.int8),
             meta=np.array(meta, np.float64))
    print(f"{len(labels)} patches, {sum(labels)} nodules from {len({s.patient_id for s in samples})} patients -> {args.out}")


if __name__ == "__main__":
    main()
