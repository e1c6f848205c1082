"""`lungseg segment INPUT -o OUTPUT`: one scan, or every scan in a folder (with a progress bar)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import LungsegError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "segment", help="segment right/left lungs (and nodules) in a CT scan",
        description="Segment a chest CT: label 1 = right lung, 2 = left lung, 3 = nodule, written on "
                    "exactly the input's voxel grid. INPUT is a DICOM folder/zip/file, NIfTI, NRRD, "
                    "MHA/MHD, PNG/JPG/TIFF or NPY/NPZ, or a folder of such files (batch mode).")
    p.add_argument("input", help="scan file or folder")
    p.add_argument("-o", "--output", required=True,
                   help="mask file (.nii.gz, .nii, .nrrd, .mha, .mhd, .png for 2D, .npy); a folder in batch mode")
    p.add_argument("--model", default="default", help="classical | default | path to a checkpoint (default: default)")
    p.add_argument("--report", metavar="JSON", help="write volumes, emphysema index and nodules as JSON")
    p.add_argument("--preview", metavar="PNG", help="write a PNG with axial/coronal/sagittal overlays")
    p.add_argument("--probabilities", metavar="PATH", help="write probability maps (.npy, or lung probability as .nii.gz)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--runtime", choices=["auto", "torch", "openvino"], default="auto",
                   help="auto (default): OpenVINO on CPU when the checkpoint has an ONNX export beside it "
                        "(`lungseg export`), else PyTorch")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto (default) = fp32; bf16 is faster on CPUs that have it, masks may move slightly")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: the lungs averaged with their left/right mirror, the nodules "
                        "with every in-plane mirroring (about twice the time in all)")
    p.add_argument("--nodule-threshold", type=float, metavar="SCORE",
                   help="list nodules whose detection_score (0-1: how likely the finding is a nodule or tumour) is "
                        "at least SCORE (default: the model's validated operating point; 0 lists every candidate)")
    p.add_argument("--crf", action="store_true",
                   help="refine the lungs with a dense CRF (needs pip install pydensecrf2; slow: ~0.1 s per slice)")
    p.add_argument("--intensity", choices=["auto", "hu", "image"], default="auto",
                   help="treat input values as Hounsfield units (hu), image intensities (image), or detect (auto)")
    p.add_argument("--no-postprocess", action="store_true", help="skip the post-processing chain")
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..memory import keep_freed_memory

    keep_freed_memory()  # a one-shot process: reuse freed pages instead of faulting them in again
    logging.basicConfig(format="lungseg: warning: %(message)s", level=logging.ERROR if args.quiet else logging.WARNING)
    src = Path(args.input)
    if not src.exists():
        raise LungsegError(f"input not found: {src}")
    cases = _batch_inputs(src)
    if cases is None:
        _segment_one(src, Path(args.output), args, args.report, args.preview, args.probabilities)
        return 0
    return _segment_batch(cases, Path(args.output), args)


def _segment_one(src: Path, out: Path, args, report, preview, probabilities, model=None) -> None:
    from ..api import segment

    result = segment(src, model=model or args.model, postprocess=not args.no_postprocess, device=args.device,
                     intensity=args.intensity, **network_options(args))
    result.save(out)
    if report:
        result.save_report(report)
    if preview:
        result.save_preview(preview)
    if probabilities:
        result.save_probabilities(probabilities)
    if not args.quiet:
        lungs = result.report["lungs"]
        print(f"{src.name}: right {lungs['right']['volume_ml']:.0f} mL, left {lungs['left']['volume_ml']:.0f} mL, "
              f"{len(result.report['nodules'])} nodule(s) -> {out}")


def network_options(args) -> dict:
    """--runtime/--precision/--tta/--crf (and keeping probabilities for --probabilities) for
    networks; the classical segmenter takes none."""
    if args.model == "classical":
        return {}
    threshold = getattr(args, "nodule_threshold", None)
    if threshold is not None and not 0 <= threshold <= 1:
        raise LungsegError(f"--nodule-threshold must lie in 0..1, got {threshold}")
    options = {"runtime": args.runtime, "precision": args.precision, "tta": args.tta, "crf": args.crf,
               "keep_probabilities": bool(args.probabilities),
               "low_confidence": bool(getattr(args, "preview", None))}  # only the preview shows it
    if threshold is not None:
        options["nodule_threshold"] = threshold
    return options


def _batch_inputs(src: Path) -> list[Path] | None:
    """The scans of a batch folder, or None when src is a single scan (file or DICOM folder)."""
    from ..io import is_supported_file, suffix_of

    if not src.is_dir():
        return None
    files = sorted(f for f in src.iterdir() if f.is_file() and not f.name.startswith("."))
    if any(suffix_of(f) in {".dcm", ".ima", ""} and is_supported_file(f) for f in files):
        return None  # a DICOM series
    scans = [f for f in files if is_supported_file(f)]
    return scans or None  # an empty or unsupported folder is reported by the reader


def _case_name(path: Path) -> str:
    from ..io import suffix_of

    s = suffix_of(path)
    return path.name[: -len(s)] if s else path.name


def _segment_batch(cases: list[Path], out_dir: Path, args) -> int:
    from tqdm import tqdm

    from ..io import suffix_of
    from ..inference import resolve_segmenter

    out_dir.mkdir(parents=True, exist_ok=True)
    model = resolve_segmenter(args.model, device=args.device, **network_options(args))  # loaded once
    failed = 0
    for src in tqdm(cases, desc="segmenting", unit="scan", disable=args.quiet, file=sys.stderr):
        name = _case_name(src)
        ext = ".png" if suffix_of(src) in {".png", ".jpg", ".jpeg", ".tif", ".tiff"} else ".nii.gz"
        try:
            _segment_one(src, out_dir / f"{name}{ext}", args,
                         out_dir / f"{name}.report.json" if args.report else None,
                         out_dir / f"{name}.preview.png" if args.preview else None,
                         out_dir / f"{name}.probabilities.npy" if args.probabilities else None, model)
        except LungsegError as e:
            failed += 1
            print(f"lungseg: error: {src.name}: {e}", file=sys.stderr)
    if failed:
        print(f"lungseg: error: {failed} of {len(cases)} scans failed", file=sys.stderr)
        return 2
    return 0
