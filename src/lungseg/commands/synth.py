"""`lungseg synth --n 5 --out DIR`: synthetic chest CT phantoms with exact labels."""
from __future__ import annotations

import argparse
import sys

from ..errors import LungsegError

EPILOG = """\
Writes per case: DIR/synth_SEED.nii.gz (HU), DIR/synth_SEED_labels.nii.gz (1 right lung, 2 left lung,
3 nodule), DIR/synth_SEED.json (every drawn parameter, nodules, lung volumes), DIR/tissue/synth_SEED.nii.gz
(internal tissue labels), with --dicom also DIR/dicom/synth_SEED/ (a CT series); and DIR/montage.png.
With --nnunet, DIR becomes an nnU-Net v2 raw dataset (imagesTr/, labelsTr/, dataset.json).
Case i uses seed SEED+i, so the same command always writes the same volumes.
"""


def add_parser(subparsers):
    p = subparsers.add_parser("synth", help="generate synthetic chest CT phantoms with exact labels",
                              description="Generate procedural chest CT volumes in HU with right/left lung and "
                                          "nodule labels (airways, vessels, heart, bones, pathology, scanner noise).",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5, help="number of cases (default 5)")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the first case (default 0)")
    p.add_argument("--size", nargs="+", default=["256", "256", "120"], metavar="N",
                   help="NX NY NZ voxels (default 256 256 120), or 'random' for clinical grids "
                        "(256-512 in-plane, 0.6-5 mm slices, up to 600 slices)")
    p.add_argument("--spacing", nargs=3, type=float, metavar=("SX", "SY", "SZ"),
                   help="voxel size in mm (default: fit the patient in the field of view)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--difficulty", choices=["easy", "mixed", "hard"], default="mixed",
                       help="pathology and noise mix (default mixed)")
    level.add_argument("--hard", action="store_const", const="hard", dest="difficulty",
                       help="same as --difficulty hard (effusion, consolidation, touching lungs, low dose)")
    p.add_argument("--nnunet", action="store_true", help="write an nnU-Net dataset folder instead")
    p.add_argument("--dicom", action="store_true", help="also write each case as a DICOM series")
    p.add_argument("--contrast", action="store_true", default=None, help="contrast-enhanced blood in every case")
    p.add_argument("--no-montage", action="store_true", help="skip montage.png")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _shape(size: list[str]):
    if len(size) == 1 and size[0].lower() == "random":
        return "random"
    try:
        nx, ny, nz = (int(v) for v in size)
    except ValueError:
        raise LungsegError(f"--size takes NX NY NZ (three integers) or 'random', not {' '.join(size)}") from None
    if min(nx, ny) < 32 or nz < 1 or max(nx, ny) > 1024 or nz > 1000:
        raise LungsegError(f"--size {nx} {ny} {nz} is out of range (32-1024 in-plane, 1-1000 slices)")
    return (nz, ny, nx)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ..synth import generate_case, render_montage, write_case, write_nnunet_dataset
    from ..synth.dataset import case_name

    if args.n < 1:
        raise LungsegError("--n must be at least 1")
    shape = _shape(args.size)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LungsegError(f"--out {out} exists and is not a folder")
    overrides = dict(shape=shape, difficulty=args.difficulty)
    if args.spacing:
        overrides["spacing"] = tuple(args.spacing)
    if args.contrast:
        overrides["contrast"] = True
    total = args.n * shape[0] if shape != "random" else None
    bar = tqdm(total=total, desc="synth", unit="slice", disable=args.quiet, file=sys.stderr)
    cases, written = [], []
    try:
        for i in range(args.n):
            seed = args.seed + i
            bar.set_postfix_str(case_name(seed))
            case = generate_case(seed, progress=bar.update, **overrides)
            if args.nnunet:
                cases.append(case)
            else:
                paths = write_case(case, out, case_name(seed), dicom=args.dicom)
                written.append((case_name(seed), paths["image"], case))
                if not args.no_montage:
                    cases.append(case)
    finally:
        bar.close()
    if args.nnunet:
        write_nnunet_dataset(out, len(cases), args.seed, cases=cases)
        if args.dicom:
            from ..synth.dicom_writer import write_dicom_series

            for c in cases:
                name = case_name(c.params["seed"])
                write_dicom_series(c.ct, out / "dicom" / name, patient_id=name)
        written = [(case_name(c.params["seed"]), out / "imagesTr" / f"{case_name(c.params['seed'])}_0000.nii.gz", c)
                   for c in cases]
    for name, path, c in written:
        print(f"{path}  {c.ct.shape[2]}x{c.ct.shape[1]}x{c.ct.shape[0]}  lungs R {c.lung_volume_ml(1):.0f} mL "
              f"L {c.lung_volume_ml(2):.0f} mL  nodules {len(c.nodules)}")
    if not args.no_montage and cases:
        print(f"montage: {render_montage(cases[:8], out / 'montage.png')}")
    return 0
