"""The lung network on every other thin slice (lungseg.inference.thin_slices) against every slice.

Volumes: the REAL LIDC-IDRI-0003 series resampled along z to 300 slices of 1.17 mm (no lung
reference: agreement between the two runs), and two whole-scan phantoms of 512x512x300 (~1 mm
slices, seeds 1100-1101, the scorer's validation seeds) with their true lungs. Per volume: the
lung Dice of the two runs against each other and against the truth, and the lung stage's time
(network + post-processing), median of 3.

    .venv/bin/python benchmarks/thin_slices.py
Prints the table and writes benchmarks/results/thin_slices.json.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def lung_dice(a: np.ndarray, b: np.ndarray) -> dict:
    """Right and left lung Dice (label 3 counts as neither), as `lungseg evaluate` scores them."""
    from lungseg.evaluation.metrics import dice_scores

    d = dice_scores(a, b, classes=("right_lung", "left_lung"))
    return {"right": d["right_lung"], "left": d["left_lung"]}


def timed_lungs(stage, ct, every_slice: bool, repeats: int = 3):
    stage.hu.every_slice = every_slice
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        labels = stage(ct).labels
        times.append(time.perf_counter() - t)
    return labels, statistics.median(times)


def main() -> None:
    import tempfile

    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.io import read_ct
    from lungseg.synth import generate_case
    from speed import real_volume

    stage = DefaultSegmenter(nodules=False, low_confidence=False).lungs
    volumes = []
    with tempfile.TemporaryDirectory() as tmp:
        real_volume(Path(tmp) / "real300.nii.gz")
        volumes.append(("real LIDC-IDRI-0003, 300 x 1.17 mm", read_ct(Path(tmp) / "real300.nii.gz"), None))
    for seed in (1100, 1101):
        case = generate_case(seed, size=(512, 512, 300))
        volumes.append((f"phantom {seed}, 300 x {case.ct.spacing[2]:.2f} mm", case.ct, case.labels))
    rows = []
    for name, ct, truth in volumes:
        every, t_every = timed_lungs(stage, ct, every_slice=True)
        skip, t_skip = timed_lungs(stage, ct, every_slice=False)
        row = {"volume": name, "agreement": lung_dice(every, skip), "seconds_every_slice": t_every,
               "seconds_every_other_slice": t_skip}
        if truth is not None:
            row["truth_every_slice"], row["truth_every_other_slice"] = lung_dice(every, truth), lung_dice(skip, truth)
        rows.append(row)
    print(f"{'volume':38s} {'agreement R/L':>15s} {'truth, every slice':>19s} {'truth, every other':>19s} "
          f"{'s every':>8s} {'s other':>8s}")
    for r in rows:
        fmt = lambda d: f"{d['right']:.4f}/{d['left']:.4f}" if d else "-"  # noqa: E731
        print(f"{r['volume']:38s} {fmt(r['agreement']):>15s} {fmt(r.get('truth_every_slice')):>19s} "
              f"{fmt(r.get('truth_every_other_slice')):>19s} {r['seconds_every_slice']:8.2f} "
              f"{r['seconds_every_other_slice']:8.2f}")
    out = ROOT / "benchmarks" / "results" / "thin_slices.json"
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
