"""Nodule lists on slabs: scans that cut through the lungs. The real LIDC-IDRI-0003 series is cut
into stacks of --slices consecutive slices every --step slices (a 24-slice stack at 2.5 mm is
60 mm, like the bundled `make demo` crop), each stack is segmented as a scan of its own by the
shipped default model, and its listed findings are matched by the LUNA16 rules of `lungseg
evaluate --detection` to the readers' references (>= 2 readers) whose centre lies in the stack;
findings on the readers' other marks, and on references centred outside the stack that reach into
it, are ignored. What a cut field of view adds is false findings at its ends (vessels cut by the
first or last slice), so the table counts them per slab.

LIDC-IDRI-0003 is a validation patient everywhere in lungseg (no model was trained on it).

    .venv/bin/python benchmarks/slab_detection.py [--slices 24] [--step 8]
Prints a table per slab and writes benchmarks/results/slab_detection.json.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
LIDC = ROOT.parent / "shared" / "data" / "whole_scans" / "LIDC-IDRI-0003"


def slab_case(segmenter, ct, z0: int, n: int, references, ignored):
    """The DetectionCase of slices z0..z0+n-1 of `ct`, segmented as a scan of their own."""
    import lungseg
    from lungseg.evaluation.detection import DetectionCase, Prediction
    from lungseg.io import CTImage

    slab = CTImage.from_array(ct.array[z0:z0 + n], spacing=ct.spacing, is_hu=True)
    nodules = lungseg.segment(slab, model=segmenter).report["nodules"]
    predictions = [Prediction(tuple(float(v) for v in ct.physical_points(  # back on the whole scan's grid
        (np.array(f["centroid_index_zyx"]) + [z0, 0, 0])[None])[0]), f["detection_score"]) for f in nodules]
    z = {f: ct.index_of_points(np.array([f.center_mm]))[0][0] for f in references}
    inside = [f for f in references if z0 <= z[f] < z0 + n]
    # a nodule centred outside the slab but reaching into it: a mark on it is neither needed nor false
    gap_mm = {f: max(z0 - z[f], z[f] - (z0 + n - 1), 0.0) * ct.spacing_zyx[0] for f in references}
    cut = [f for f in references if f not in inside and gap_mm[f] < f.diameter_mm / 2]
    return DetectionCase(f"slices {z0}-{z0 + n - 1}", inside, predictions, list(ignored) + cut)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=24)
    ap.add_argument("--step", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "slab_detection.json")
    args = ap.parse_args()

    from lungseg.evaluation.detection import match_case
    from lungseg.evaluation.detection_cases import reference_cases
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.io import read_ct

    ct = read_ct(LIDC / "LIDC-IDRI-0003.zip")
    (references, ignored), = reference_cases(LIDC).values()
    segmenter = DefaultSegmenter(low_confidence=False, classify=False)
    rows = []
    for z0 in tqdm(range(0, ct.shape[0] - args.slices + 1, args.step), desc="slabs"):
        case = slab_case(segmenter, ct, z0, args.slices, references, ignored)
        m = match_case(case)
        rows.append({"slab": case.name, "references": len(case.references),
                     "found": int(np.isfinite(m.detection_scores).sum()),
                     "false": len(m.false_positive_scores), "ignored": m.n_ignored,
                     "false_scores": [round(float(s), 3) for s in m.false_positive_scores]})
    total = {k: sum(r[k] for r in rows) for k in ("references", "found", "false", "ignored")}
    print(f"LIDC-IDRI-0003 in {len(rows)} slabs of {args.slices} slices (every {args.step}), shipped operating point")
    print(f"{'slab':>16} {'refs':>5} {'found':>6} {'false':>6} {'ignored':>8}")
    for r in rows + [{"slab": "all", **total}]:
        print(f"{r['slab']:>16} {r['references']:>5} {r['found']:>6} {r['false']:>6} {r['ignored']:>8}")
    print(f"false findings per slab: {total['false'] / max(len(rows), 1):.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"note": __doc__.split("\n\n")[0], "slices": args.slices, "step": args.step,
                                    "machine": platform.node(), "rows": rows, "total": total,
                                    "false_per_slab": total["false"] / max(len(rows), 1)}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
