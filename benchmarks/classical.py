"""Accuracy of the classical (no-weights) segmenter on the real sets in ../shared/data.

Prints a table and writes benchmarks/results/classical.json.
    .venv/bin/python benchmarks/classical.py [--shared ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import warnings

import numpy as np

from lungseg.classical import segment_classical
from lungseg.io import CTImage, read_ct

warnings.filterwarnings("ignore", category=FutureWarning)  # MONAI deprecation chatter
CIP_LEFT, CIP_RIGHT = [3, 7, 8, 9, 10, 11], [2, 4, 5, 6, 12, 13, 14]


def dice(a, b) -> float:
    s = a.sum() + b.sum()
    return float("nan") if s == 0 else float(2 * (a & b).sum() / s)


def hd95(a, b, spacing_zyx) -> float:
    """95th-percentile Hausdorff distance in mm (MONAI), NaN when a mask is empty."""
    import torch
    from monai.metrics import compute_hausdorff_distance

    if not a.any() or not b.any():
        return float("nan")
    t = lambda m: torch.from_numpy(m[None, None].astype(np.float32))  # noqa: E731
    return float(compute_hausdorff_distance(t(a), t(b), percentile=95, spacing=list(spacing_zyx))[0, 0])


def run(shared: Path) -> list[dict]:
    rows = []

    def add(case, ref_kind, pred, ref, ct, seconds, note=""):
        rows.append({"case": case, "reference": ref_kind, "dice": round(dice(pred, ref), 4),
                     "hd95_mm": round(hd95(pred, ref, ct.spacing_zyx), 2), "seconds": round(seconds, 2), "note": note})

    cip = shared / "lungs/cip_copdgene"
    codes = read_ct(cip / "lm-64.nrrd").array.astype(int) & 0xFF
    whole = read_ct(cip / "wholeLung-64.nrrd").array > 0
    for name in ("ct-64.nrrd", "ct-64-transformed.nrrd", "ct-64Dicom"):
        ct = read_ct(cip / name)
        t = time.perf_counter()
        lab = segment_classical(ct)
        dt = time.perf_counter() - t
        add(f"cip {name}", "wholeLung (both)", lab > 0, whole, ct, dt)
        add(f"cip {name}", "lm-64 right", lab == 1, np.isin(codes, CIP_RIGHT), ct, dt)
        add(f"cip {name}", "lm-64 left", lab == 2, np.isin(codes, CIP_LEFT), ct, dt)
    for i in (1, 2, 3):
        ct = read_ct(shared / f"lungs/imlab3d/id00{i}-128x128x64.nii.gz")
        ref = read_ct(shared / f"lungs/imlab3d/id00{i}-128x128x64-msk.nii.gz").array > 127.5
        t = time.perf_counter()
        lab = segment_classical(ct)
        note = "stomach gas touches the left lung base at 5 mm slices" if i == 2 else ""
        add(f"imlab3d id00{i}", "mask>127.5 (both)", lab > 0, ref, ct, time.perf_counter() - t, note)
    x = np.load(shared / "lungs/kaggle_lungs_64px/x_train.npy")[..., 0]
    y = np.load(shared / "lungs/kaggle_lungs_64px/y_train.npy")[..., 0] > 0.5
    t = time.perf_counter()
    scores = [dice(segment_classical(CTImage.from_array(a, is_hu=False))[0] > 0, m) for a, m in zip(x, y, strict=True)]
    rows.append({"case": f"kaggle 64px x{len(x)} (image mode)", "reference": "y>0.5 (both)",
                 "dice": round(float(np.nanmean(scores)), 4), "dice_median": round(float(np.nanmedian(scores)), 4),
                 "dice_below_0.8": int(np.sum(np.array(scores) < 0.8)), "hd95_mm": float("nan"),
                 "seconds": round(time.perf_counter() - t, 2),
                 "note": "mean over slices; failures are slices where lungs and outside air share one grey level"})
    ab = read_ct(shared / "dicom/abdomen_series")
    t = time.perf_counter()
    lab = segment_classical(ab)
    rows.append({"case": "abdomen_series (no lungs)", "reference": "empty", "dice": 1.0 if lab.max() == 0 else 0.0,
                 "hd95_mm": float("nan"), "seconds": round(time.perf_counter() - t, 2),
                 "note": f"lung voxels found: {int((lab > 0).sum())}"})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "classical.json")
    args = ap.parse_args()
    rows = run(args.shared)
    print(f"{'case':34s} {'reference':20s} {'Dice':>7s} {'HD95 mm':>8s} {'s':>6s}  note")
    for r in rows:
        print(f"{r['case']:34s} {r['reference']:20s} {r['dice']:7.4f} {r['hd95_mm']:8.2f} {r['seconds']:6.2f}  {r['note']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
