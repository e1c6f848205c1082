"""Join trained candidate scorers (scripts/train_scorer.py) into one whose probability is the mean
of theirs, choose its operating point on the validation phantoms by the same rule as
train_scorer.py, and write it (.pt, .onnx, .json) like a single scorer.

    .venv/bin/python scripts/ensemble_scorers.py --members out/scorer2/scorer.pt out/scorer3/scorer.pt \
        --val out/scorer2/val.npz --val-lidc out/scorer3/lidc_val.npz --out src/lungseg/weights/scorer.pt

Why: the scorer trained on phantoms alone ranks real LIDC nodules poorly (validation crop AP 0.77)
and the one trained with the LIDC crops too loses the largest central tumours (a 107 mL phantom
tumour and a 112 mL tumour inserted into LIDC-IDRI-0003 fall below its operating point); their
mean keeps both (validation phantom AP 0.662, higher than either member's).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from train_scorer import FP_BUDGET_PER_SCAN, average_precision, operating_point, predict

    from lungseg.models.candidate_scorer import load_scorer, save_scorer, scorer_ensemble
    from lungseg.models.exported import round_to_half

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=Path, nargs="+", required=True)
    ap.add_argument("--val", type=Path, required=True, help="validation phantom candidates (build_scorer_data.py)")
    ap.add_argument("--val-lidc", type=Path, help="LIDC crop patches (build_scorer_lidc_data.py --split val)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    start = time.time()
    loaded = [load_scorer(p) for p in args.members]
    # stored as fp16 (the package's size budget): every figure below is of the rounded weights
    model = round_to_half(scorer_ensemble([m for m, _ in loaded]).eval())
    val = np.load(args.val)
    n_scans = len(np.unique(val["meta"][:, 0]))
    scores = predict(model, val["patches"]) * val["meta"][:, 2]
    point = operating_point(scores, val["labels"], n_scans)
    validation = {"average_precision": average_precision(scores, val["labels"]), "n_candidates": int(len(scores)),
                  "n_nodules": int(val["labels"].sum()), "n_scans": n_scans, **point}
    if args.val_lidc:
        lidc = np.load(args.val_lidc)
        validation.update(lidc_crops_average_precision=average_precision(predict(model, lidc["patches"]), lidc["labels"]),
                          lidc_crops_data=str(args.val_lidc))
    meta = {"members": len(loaded), "operating_point": point["threshold"],
            "score": "mean cnn_probability of the members * mean_nodule_probability",
            "operating_point_rule":
            f"lowest score with <= {FP_BUDGET_PER_SCAN:g} false candidate per scan on the validation phantoms",
            "validation": validation, "val_data": str(args.val),
            "member_files": [str(p) for p in args.members],
            "member_meta": [{k: v for k, v in m.items() if k != "history"} for _, m in loaded],
            "minutes": (time.time() - start) / 60}
    save_scorer(model, args.out, meta, half=True)
    print(json.dumps({k: meta[k] for k in ("operating_point", "validation")}, indent=2))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
