"""Large tumours (central/hilar and chest-wall, 30-100 mm) on held-out phantoms: how much of each
tumour the lung mask keeps (the R231 convention: tumours are lung), the lungs' Dice against the
phantom's lungs-with-tumour, and the tumour's Dice as label 3.

Seeds 7600-7602 (central) and 7603-7605 (chest-wall), 512x512x160: never used in training or
selection of weights (training used seeds in 7000-7309, validation 7500-7503); they did show the first
nodule stage 2 failing and checked its fix (the lung-mask cut), so treat them as validation.

    .venv/bin/python benchmarks/tumour_in_lung.py [--lung-checkpoint PATH ...]
Prints a table and writes benchmarks/results/tumour_in_lung.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = [(7600, "central"), (7601, "central"), (7602, "central"),
         (7603, "chest-wall"), (7604, "chest-wall"), (7605, "chest-wall")]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return float(2 * (a & b).sum() / s) if s else 1.0


def main() -> None:
    from lungseg.inference.network import ModelSegmenter
    from lungseg.inference.pipeline import LUNG_HU, DefaultSegmenter
    from lungseg.synth import generate_case
    from lungseg.synth.tissue import Tissue

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lung-checkpoint", nargs="*", type=Path, default=[LUNG_HU])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tumour_in_lung.json")
    args = ap.parse_args()
    segmenter = DefaultSegmenter(low_confidence=False)
    cases = [(seed, kind, generate_case(seed, size=(512, 512, 160), tumour=kind)) for seed, kind in CASES]
    rows = []
    for ckpt in args.lung_checkpoint:
        segmenter.lungs.hu = ModelSegmenter.from_checkpoint(ckpt, runtime="torch" if ckpt != LUNG_HU else "auto",
                                                            low_confidence=False)
        for seed, kind, case in cases:
            tumour = case.tissue == Tissue.TUMOUR
            labels = segmenter(case.ct).labels
            lungs = np.isin(labels, (1, 2, 3))
            rows.append({"checkpoint": str(ckpt), "seed": seed, "kind": kind,
                         "tumour_ml": round(float(tumour.sum() * case.ct.voxel_volume_ml), 1),
                         "tumour_inside_lung_mask": round(float(lungs[tumour].mean()), 3),
                         "lung_dice": round(dice(lungs, np.isin(case.lung_labels(), (1, 2))), 4),
                         "tumour_dice_label3": round(dice(labels == 3, tumour), 3)})
            print(rows[-1], flush=True)
    print(f"\n{'checkpoint':50s} {'kind':10s} {'inside lung mask':>16s} {'lung Dice':>9s} {'label-3 Dice':>12s}")
    for ckpt in args.lung_checkpoint:
        for kind in ("central", "chest-wall"):
            sel = [r for r in rows if r["checkpoint"] == str(ckpt) and r["kind"] == kind]
            print(f"{str(ckpt)[-50:]:50s} {kind:10s} {np.mean([r['tumour_inside_lung_mask'] for r in sel]):16.3f} "
                  f"{np.mean([r['lung_dice'] for r in sel]):9.4f} {np.mean([r['tumour_dice_label3'] for r in sel]):12.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
