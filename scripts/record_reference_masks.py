"""Record what `lungseg segment` (default model) writes on a few real cases, so a refactor can be
checked to leave the masks alone (tests/test_inference_layout.py). Rerun only when the shipped
model or its post-processing changes on purpose:

    .venv/bin/python scripts/record_reference_masks.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import lungseg

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CASES = {  # name -> scan (the bundled sample, a rotated CIP volume, a whole LIDC DICOM series)
    "sample": ROOT / "src/lungseg/sample_data/sample_ct.nrrd",
    "cip_rot": SHARED / "lungs/cip_copdgene/ct-64-transformed.nrrd",
    "lidc0003": SHARED / "whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip",
}
OUT = ROOT / "tests/data/reference_masks"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, path in CASES.items():
        labels = lungseg.segment(path).labels
        np.savez_compressed(OUT / f"{name}.npz", labels=labels)
        print(name, labels.shape, np.bincount(labels.ravel(), minlength=4).tolist())


if __name__ == "__main__":
    main()
