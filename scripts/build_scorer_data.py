"""Candidate patches for the candidate scorer, from whole-scan phantoms: every candidate the
shipped nodule network proposes (at least half inside the lungs), labelled 1 when at least 30 %
of it lies in a true nodule (phantom labels), else 0 (vessels end-on, hilum, fissures, pleura).
Every true nodule also gives one positive patch outlined by its true mask (the network proposes
only about half of them: without these the scorer would see few nodules).

    .venv/bin/python scripts/build_scorer_data.py --seeds 1000-1029 --n-nodules 10 --out out/scorer/train.npz
    .venv/bin/python scripts/build_scorer_data.py --seeds 1100-1105 --no-truth-patches --out out/scorer/val.npz
    .venv/bin/python scripts/build_scorer_data.py --seeds 7010-7021 --tumour central --out out/scorer/train_central.npz
    .venv/bin/python scripts/build_scorer_data.py --seeds 7250-7259 --dense-pathology --out out/scorer/train_dense.npz
    .venv/bin/python scripts/build_scorer_data.py --seeds 1020-1049 --real-nodules 12 --out out/scorer/train_real.npz

Training seeds 1000-1029, validation 1100-1105; never the held-out 5100-5103 of
benchmarks/whole_scan_detection.py.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

MIN_TRUE_SHARE = 0.3


def seeds_of(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    from lungseg.data.crop_hu import CROP_HU
    from lungseg.inference.patches import candidate_patches
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.synth import generate_case

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="1000-1011")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-nodules", type=int, default=6)
    ap.add_argument("--tumour", choices=["central", "chest-wall"], help="every phantom with this large tumour")
    ap.add_argument("--dense-pathology", action="store_true",
                    help="every phantom with a pleural effusion and a consolidation: their candidates are negatives")
    ap.add_argument("--no-truth-patches", action="store_true", help="only what the network proposes (validation)")
    ap.add_argument("--real-nodules", type=int, default=0,
                    help="move this many real LIDC nodules of the TRAIN patients into each phantom first "
                         "(lungseg.data.synthetic.with_real_nodules): real small nodules in whole-scan context")
    ap.add_argument("--real-hu", choices=list(CROP_HU), default="window",
                    help="the real nodules' HU: the fixed crop window of the shipped scorer, or each crop slice's own "
                         "estimated scale (lungseg.data.crop_hu), as on real CT")
    args = ap.parse_args()
    model = DefaultSegmenter(low_confidence=False)
    finder = model.nodule
    patches, labels, meta = [], [], []
    for seed in tqdm(seeds_of(args.seeds), desc="phantoms"):
        case = generate_case(seed, size=(512, 512, 160), n_nodules=args.n_nodules,
                             **({"tumour": args.tumour} if args.tumour else {}),
                             **({"effusion": True, "consolidation": True} if args.dense_pathology else {}))
        ct, truth = case.ct, case.labels == 3
        if args.real_nodules:
            from lungseg.data.synthetic import real_nodule_pool, with_real_nodules

            hu, with_real = with_real_nodules(ct.array, case.labels, ct.spacing_zyx, args.real_nodules, seed,
                                              pool=real_nodule_pool("train", args.real_hu))
            ct, truth = ct.with_array(hu), with_real == 3
        lungs = model.lungs(ct).labels
        found = finder.find_candidates(ct, lungs)
        if not found.count:
            continue
        in_truth = truth[found.box][found.coords]
        size = np.maximum(np.bincount(found.ids, minlength=found.count + 1), 1)
        share = np.bincount(found.ids, weights=in_truth, minlength=found.count + 1) / size
        comps = [c for c in range(1, found.count + 1) if found.inside[c] >= finder.min_inside]
        patches.append(candidate_patches(ct.array, ct.spacing_zyx, found.box, found.coords, found.ids, comps)
                       .astype(np.float16))
        labels += [int(share[c] >= MIN_TRUE_SHARE) for c in comps]
        meta += [(seed, c, float(found.mean_probability[c]), int(size[c])) for c in comps]
        if not args.no_truth_patches:
            truth_ids, n = ndi.label(truth, np.ones((3, 3, 3)))
            coords = np.nonzero(truth_ids)
            full = tuple(slice(0, s) for s in truth.shape)
            patches.append(candidate_patches(ct.array, ct.spacing_zyx, full, coords, truth_ids[coords],
                                             np.arange(1, n + 1)).astype(np.float16))
            labels += [1] * n
            meta += [(seed, -k, 1.0, 0) for k in range(1, n + 1)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, patches=np.concatenate(patches), labels=np.array(labels, np.int8),
             meta=np.array(meta, np.float64))
    print(f"{len(labels)} candidates, {sum(labels)} nodules -> {args.out}")


if __name__ == "__main__":
    main()
