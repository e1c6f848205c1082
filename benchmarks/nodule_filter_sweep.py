"""How the nodule finder's candidate filter (minimum mean probability) trades found nodules for
false candidates on whole-scan phantoms: the table the shipped 0.9 was chosen from.

Runs on training phantoms by default (seeds 1000-1003: the nodule model saw crops of them, never
the held-out seeds 5100-5103 that benchmarks/default_model_eval.py scores), the shipped lung model
and the given nodule checkpoint, and applies the rest of the chain as `lungseg segment` does (at
least half of a candidate in the lungs, clean_nodules).

    .venv/bin/python benchmarks/nodule_filter_sweep.py [--checkpoint PATH] [--seeds 1000,1001,1002,1003]
Prints a table and writes benchmarks/results/nodule_filter_sweep.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9, 0.95)


def main() -> None:
    from lungseg.inference.pipeline import NODULE, DefaultSegmenter, nodule_precision
    from lungseg.inference.candidates import NoduleSegmenter
    from lungseg.postprocess import clean_nodules
    from lungseg.synth import generate_case

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", type=Path, default=NODULE)
    ap.add_argument("--seeds", default="1000,1001,1002,1003")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "nodule_filter_sweep.json")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    lungs_model = DefaultSegmenter(nodules=False, low_confidence=False)
    finder = NoduleSegmenter.from_checkpoint(args.checkpoint, precision=nodule_precision("auto"))
    totals = {t: dict(found=0, true=0, found_10mm_plus=0, true_10mm_plus=0, false_candidates=0) for t in THRESHOLDS}
    full = np.ones((3, 3, 3))
    for seed in seeds:
        case = generate_case(seed, size=(512, 512, 160), n_nodules=6)
        ct, truth = case.ct, case.labels == 3
        labels = lungs_model(ct).labels
        plan = finder._plan(ct, labels)
        coords, ids, mean_p, inside, *_ = finder.candidates(plan, labels)
        t_lab, n_true = ndi.label(truth, full)
        diam = [(6 * (t_lab == i).sum() * np.prod(ct.spacing_zyx) / np.pi) ** (1 / 3) for i in range(1, n_true + 1)]
        for t in THRESHOLDS:
            keep = ((mean_p >= t) & (inside >= finder.min_inside))[ids]
            merged = labels.copy()
            merged[tuple(c[keep] + b.start for c, b in zip(coords, plan.box))] = 3
            pred = clean_nodules(merged, np.asarray(ct.spacing_zyx)) == 3
            p_lab, n_pred = ndi.label(pred, full)
            found = [i for i in np.unique(t_lab[pred & truth]) if i]
            row = totals[t]
            row["found"] += len(found)
            row["true"] += n_true
            row["found_10mm_plus"] += sum(diam[i - 1] >= 10 for i in found)
            row["true_10mm_plus"] += sum(d >= 10 for d in diam)
            row["false_candidates"] += n_pred - len([i for i in np.unique(p_lab[pred & truth]) if i])
        print(f"seed {seed} done", flush=True)
    print(f"\n{'min mean p':>10}  {'found':>7}  {'>= 10 mm':>8}  {'false / scan':>12}")
    for t, row in totals.items():
        row["false_per_scan"] = row["false_candidates"] / len(seeds)
        print(f"{t:>10}  {row['found']:>3}/{row['true']:<3}  {row['found_10mm_plus']:>3}/{row['true_10mm_plus']:<4}"
              f"  {row['false_per_scan']:>12.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "seeds": seeds,
                                    "rows": {str(t): r for t, r in totals.items()}}, indent=2, default=int))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
