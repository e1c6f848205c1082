"""How many REAL nodules the shipped nodule list would hold: the candidate stage and the scorer run
on every LIDC crop stack of one patient split, and a nodule (its >= 2 readers' consensus) counts
as listed when a candidate that overlaps it scores at least the shipped operating point.

The whole-scan figures (benchmarks/whole_scan_detection.py) have one real scan with 3 nodules;
this has the 266 nodules of the validation patients (84; the crops' 70/20/10 patient split, seed
0, which the nodule network and scorer B were chosen on). A crop stack holds only its nodule's own
slices and ~90 mm around it, so false findings per scan cannot be counted here: this is the
sensitivity side only. Every voxel of a stack counts as lung (the lung network needs whole slices).

    .venv/bin/python benchmarks/lidc_crop_listing.py [--split val]
Prints a table by nodule size and writes benchmarks/results/lidc_crop_listing_<split>.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
SIZE_BINS_MM = ((3, 6), (6, 10), (10, 20), (20, 1000))


def best_candidate(finder, ct, mask: np.ndarray) -> tuple[float, float]:
    """(highest detection score, highest mean probability) of the candidates overlapping `mask`
    (0, 0 when none does)."""
    lungs = np.ones(mask.shape, np.uint8)
    found = finder.find_candidates(ct, lungs)
    if not found.count:
        return 0.0, 0.0
    scores = finder.scorer.score(found, ct)
    hits = np.unique(found.ids[mask[found.box][found.coords]])
    if not len(hits):
        return 0.0, 0.0
    return float(scores[hits].max()), float(found.mean_probability[hits].max())


def main() -> None:
    from lungseg.classification.samples import lidc_malignancy, samples_of_split
    from lungseg.data.crop_hu import CROP_HU, crop_as_hu
    from lungseg.evaluation.lesions import equivalent_diameter
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.io import CTImage

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=["train", "val", "test"], default="val")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--crop-hu", choices=list(CROP_HU), default="window",
                    help="the crops' HU: the fixed window the shipped models learnt on (default, the recorded "
                         "figures), or each slice's own estimated scale (lungseg.data.crop_hu), as on real CT")
    args = ap.parse_args()
    finder = DefaultSegmenter(low_confidence=False, classify=False).nodule
    op = float(finder.scorer.min_score)
    finder.scorer.min_score = 0.0  # score every candidate; the operating point is applied below
    rows = []
    crops = lidc_malignancy(as_hu=crop_as_hu(args.crop_hu))
    for s in tqdm(samples_of_split(crops, args.split), desc=f"LIDC {args.split} stacks"):
        dz, dy, dx = s.spacing_zyx
        ct = CTImage.from_array(s.hu, spacing=(dx, dy, dz))
        score, mean_p = best_candidate(finder, ct, s.mask)
        diameter = equivalent_diameter(int(s.mask.sum()), s.spacing_zyx, single_slice=False)
        rows.append({"case": s.case_id, "patient": s.patient_id, "diameter_mm": round(float(diameter), 2),
                     "detection_score": round(score, 4), "mean_probability": round(mean_p, 4)})
    table = []
    for lo, hi in SIZE_BINS_MM + ((3, 1000),):
        sel = [r for r in rows if lo <= r["diameter_mm"] < hi]
        if not sel:
            continue
        name = f"{lo}-{hi} mm" if hi < 1000 else (f">= {lo} mm" if (lo, hi) != (3, 1000) else "all >= 3 mm")
        table.append({"size": name, "nodules": len(sel),
                      "proposed": sum(r["mean_probability"] > 0 for r in sel) / len(sel),
                      "listed": sum(r["detection_score"] >= op for r in sel) / len(sel),
                      "mean_p_below_op": sum(0 < r["mean_probability"] < op for r in sel) / len(sel)})
    print(f"LIDC {args.split} crop stacks, shipped operating point {op:.3f} (consensus of >= 2 readers)")
    print(f"{'size':>12} {'nodules':>8} {'proposed':>9} {'listed':>7} {'mean p < op':>12}")
    for t in table:
        print(f"{t['size']:>12} {t['nodules']:>8} {t['proposed']:>9.3f} {t['listed']:>7.3f} {t['mean_p_below_op']:>12.3f}")
    out = args.out or ROOT / "benchmarks" / "results" / f"lidc_crop_listing_{args.split}.json"
    out.write_text(json.dumps({"note": __doc__.split("\n\n")[0], "split": args.split, "operating_point": op,
                               "table": table, "nodules": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
