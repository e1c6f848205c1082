"""Cut the bundled nodule sample from LIDC-IDRI-0003 (../shared/data/whole_scans, CC BY 3.0):
24 slices (2.5 mm) centred on its large left-lung nodule, in-plane the box of both lungs on those
slices plus 8 mm, native 0.82 mm pixels, int16 HU, gzip NRRD.

    .venv/bin/python scripts/make_nodule_sample.py [--zip PATH] [--out PATH]

The box comes from the classical segmenter (deterministic, no weights), so the same zip always
gives the same file. The nodule centre is the LIDC readers' consensus, about (72.1, 77.0, -190.7)
mm LPS (see src/lungseg/sample_data/README.md).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared/data/whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip"
NODULE_LPS = (72.1, 77.0, -190.7)
SLICES = 24  # 60 mm: the ~31 mm nodule with room above and below, and the file stays ~3 MB
MARGIN = 10  # pixels (8 mm) around the lungs: pleura and some chest wall


def main() -> None:
    from lungseg.classical import segment_classical
    from lungseg.io import read_ct
    from lungseg.samples import SAMPLE_NODULE_CT

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    ap.add_argument("--out", type=Path, default=SAMPLE_NODULE_CT)
    args = ap.parse_args()
    start = time.perf_counter()
    ct = read_ct(args.zip)
    centre = np.rint(ct.index_of_points(np.array([NODULE_LPS]))[0]).astype(int)
    z0 = int(centre[0]) - SLICES // 2
    lungs = segment_classical(ct)[z0:z0 + SLICES] > 0
    _, ys, xs = np.nonzero(lungs)
    y0, x0 = max(ys.min() - MARGIN, 0), max(xs.min() - MARGIN, 0)
    y1, x1 = min(ys.max() + MARGIN + 1, ct.shape[1]), min(xs.max() + MARGIN + 1, ct.shape[2])
    crop = np.clip(np.rint(ct.array[z0:z0 + SLICES, y0:y1, x0:x1]), -32768, 32767).astype(np.int16)
    img = sitk.GetImageFromArray(crop)
    img.SetSpacing(ct.spacing)
    img.SetDirection(ct.direction)
    img.SetOrigin(tuple(float(v) for v in ct.physical_points(np.array([[z0, y0, x0]]))[0]))
    img.SetMetaData("lungseg_source", "LIDC-IDRI-0003 (TCIA, CC BY 3.0), cropped; see ATTRIBUTION_LIDC.txt")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(args.out), True)
    print(f"{args.out}: {crop.shape[2]}x{crop.shape[1]}x{crop.shape[0]} voxels of "
          f"{ct.spacing[0]:.2f}x{ct.spacing[1]:.2f}x{ct.spacing[2]:.2f} mm, slices {z0}-{z0 + SLICES - 1}, "
          f"rows {y0}-{y1 - 1}, columns {x0}-{x1 - 1} of the canonical (LPS) volume; "
          f"{args.out.stat().st_size / 1e6:.2f} MB; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
