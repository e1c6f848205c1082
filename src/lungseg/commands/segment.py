"""`lungseg segment INPUT -o OUTPUT`: one scan, or every scan in a folder (with a progress bar,
resumable, optionally one shard of it for cluster array jobs)."""
from __future__ import annotations

import argparse
import logging
import sys
import time
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
                   help="mask file (.nii.gz, .nii, .nrrd, .mha, .mhd, .png for 2D, .npy; .dcm = DICOM-SEG for "
                        "DICOM input); a folder in batch mode")
    p.add_argument("--format", choices=["dicom-seg"],
                   help="write the mask in this format whatever the suffix of -o: dicom-seg = one DICOM "
                        "Segmentation (BINARY, SNOMED-coded segments) referencing the input DICOM series "
                        "(default: from the suffix; in batch mode <case>.dcm for each DICOM zip)")
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
    p.add_argument("--no-classify", action="store_true",
                   help="skip the nodules' malignancy classifier (default model): no malignancy_score/class in the "
                        "report (the score is the LIDC readers' suspicion scale, not a diagnosis)")
    p.add_argument("--every-slice", action="store_true",
                   help="run the lung network on every slice; by default scans of <= 1.5 mm slices skip every "
                        "other one and interpolate (lung Dice 0.998 to running all, ~1 s faster on 300 slices)")
    p.add_argument("--crf", action="store_true",
                   help="refine the lungs with a dense CRF (needs pip install pydensecrf2; slow: ~0.1 s per slice)")
    p.add_argument("--intensity", choices=["auto", "hu", "image"], default="auto",
                   help="treat input values as Hounsfield units (hu), image intensities (image), or detect (auto)")
    p.add_argument("--no-postprocess", action="store_true", help="skip the post-processing chain")
    p.add_argument("--shard", metavar="I/N",
                   help="batch mode: segment only shard I of N (0 <= I < N), every N-th scan of the name-sorted "
                        "folder from the I-th on; e.g. --shard $SLURM_ARRAY_TASK_ID/10 in an array job")
    p.add_argument("--overwrite", action="store_true",
                   help="batch mode: redo scans whose outputs exist (default: skip them, so a rerun resumes)")
    p.add_argument("--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..memory import keep_freed_memory, no_huge_page_advice

    keep_freed_memory()  # a one-shot process: reuse freed pages instead of faulting them in again
    no_huge_page_advice()  # and fault them in without stalling on memory compaction
    logging.basicConfig(format="lungseg: warning: %(message)s", level=logging.ERROR if args.quiet else logging.WARNING)
    shard = _parse_shard(args.shard)
    src = Path(args.input)
    if not src.exists():
        raise LungsegError(f"input not found: {src}")
    cases = _batch_inputs(src)
    if cases is None:
        if shard is not None:
            raise LungsegError(f"--shard splits a folder of scans, but {src} is a single scan")
        _segment_one(src, Path(args.output), args, args.report, args.preview, args.probabilities)
        return 0
    return _segment_batch(cases, Path(args.output), args, shard)


def _parse_shard(text: str | None):
    from ..batch import Shard

    return None if text is None else Shard.parse(text)


def _segment_one(src: Path, out: Path, args, report, preview, probabilities, model=None) -> None:
    from ..api import segment
    from ..io import suffix_of

    fmt = getattr(args, "format", None)
    if fmt == "dicom-seg" or suffix_of(out) == ".dcm":
        from ..io.dicom_seg import NEEDS_DICOM, may_be_dicom

        if not may_be_dicom(src):  # before the segmentation, not after it
            raise LungsegError(f"{NEEDS_DICOM} ({src.name} is not DICOM)")
    warming = None
    if preview and model is None:  # one scan: the renderer loads while the networks run
        from ..preview import warm_up

        warming = warm_up()
    result = segment(src, model=model or args.model, postprocess=not args.no_postprocess, device=args.device,
                     intensity=args.intensity, **network_options(args))
    result.save(out, format=fmt)
    if report:
        result.save_report(report)
    if preview:
        if warming is not None:
            warming.join()
        result.save_preview(preview)
    if probabilities:
        result.save_probabilities(probabilities)
    if not args.quiet:
        lungs = result.report["lungs"]
        print(f"{src.name}: right {lungs['right']['volume_ml']:.0f} mL, left {lungs['left']['volume_ml']:.0f} mL, "
              f"{len(result.report['nodules'])} nodule(s) -> {out}")


def network_options(args) -> dict:
    """--runtime/--precision/--tta/--crf (and keeping probabilities for --probabilities) for
    networks, --nodule-threshold/--no-classify for the default model (resolve_segmenter notes
    them as ignored for others); the classical segmenter takes none."""
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
    if getattr(args, "no_classify", False):
        options["classify"] = False  # given only when asked: resolve_segmenter notes it for other models
    if getattr(args, "every_slice", False):
        options["every_slice"] = True
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


def _case_outputs(src: Path, out_dir: Path, args) -> dict[str, Path | None]:
    """Where a batch case's mask and requested extras go (None: not requested)."""
    from ..io import suffix_of

    name = _case_name(src)
    ext = ".png" if suffix_of(src) in {".png", ".jpg", ".jpeg", ".tif", ".tiff"} else ".nii.gz"
    if getattr(args, "format", None) == "dicom-seg":
        ext = ".dcm"
    return {"mask": out_dir / f"{name}{ext}",
            "report": out_dir / f"{name}.report.json" if args.report else None,
            "preview": out_dir / f"{name}.preview.png" if args.preview else None,
            "probabilities": out_dir / f"{name}.probabilities.npy" if args.probabilities else None}


def _check_unique_names(cases: list[Path]) -> None:
    """a.nii.gz and a.nrrd would share one mask: with resume the second would be 'skipped'."""
    seen: dict[str, Path] = {}
    for src in cases:
        other = seen.setdefault(_case_name(src), src)
        if other is not src:
            raise LungsegError(f"{other.name} and {src.name} would write the same mask "
                               f"'{_case_name(src)}'; rename one")


def _segment_batch(cases: list[Path], out_dir: Path, args, shard=None) -> int:
    """Each case in turn; a finished case (all its outputs exist) is skipped unless --overwrite,
    so a killed job resumes; a failing case is logged and the rest go on. Exit 1 if any failed."""
    from tqdm import tqdm

    from ..batch import BATCH_LOG, BatchLog
    from ..inference import resolve_segmenter

    _check_unique_names(cases)
    network_options(args)  # bad options fail the run at once, not every case
    todo = shard.select(cases) if shard is not None else cases
    out_dir.mkdir(parents=True, exist_ok=True)
    log = BatchLog(out_dir / (shard.log_name if shard is not None else BATCH_LOG))
    model = None  # loaded at the first case to do: a resumed run with nothing left loads nothing
    for src in tqdm(todo, desc="segmenting", unit="scan", disable=args.quiet, file=sys.stderr):
        outputs = _case_outputs(src, out_dir, args)
        if not args.overwrite and all(p.exists() for p in outputs.values() if p is not None):
            log.add(src.name, "skipped", 0.0)
            continue
        if model is None:  # outside the try: a model that cannot load is the run's error, not a case's
            model = resolve_segmenter(args.model, device=args.device, **network_options(args))
        start = time.perf_counter()
        try:
            _segment_one(src, outputs["mask"], args, outputs["report"], outputs["preview"],
                         outputs["probabilities"], model)
        except Exception as e:  # one bad scan must not end a cluster job: log it and go on
            if getattr(args, "debug", False) and not isinstance(e, LungsegError):
                raise
            message = str(e) if isinstance(e, LungsegError) else f"unexpected {type(e).__name__}: {e}"
            log.add(src.name, "failed", time.perf_counter() - start, message)
            tqdm.write(f"lungseg: error: {src.name}: {message}", file=sys.stderr)
        else:
            log.add(src.name, "ok", time.perf_counter() - start)
    return _summarise(log, len(todo), shard, args.quiet)


def _summarise(log, n: int, shard, quiet: bool) -> int:
    where = f" of shard {shard}" if shard is not None else ""
    failed, skipped = log.count("failed"), log.count("skipped")
    if failed:
        print(f"lungseg: error: {failed} of {n} scans{where} failed (see {log.path})", file=sys.stderr)
        return 1
    if not quiet:
        done = f"{skipped} already done (kept; --overwrite redoes them), " if skipped else ""
        print(f"{n} scans{where}: {done}{n - skipped} segmented; log: {log.path}")
    return 0
