"""`lungseg evaluate PRED REF [-o DIR]`: score predicted label maps against references."""
from __future__ import annotations

import sys

from ..errors import LungsegError

EPILOG = """\
PRED and REF are label files (NIfTI, NRRD, MHA, PNG, NPY, DICOM-SEG .dcm) or folders of them, paired
by case name (suffixes such as -msk, _seg, _label, _pred, _0000 are ignored). Label maps default to
lungseg's convention 1 right lung, 2 left lung, 3 nodule; other references need --ref-map, e.g.
  --ref-map binary   any non-zero voxel is lung (both lungs only: CIP wholeLung-64)
  --ref-map imlab    soft 0..255 masks, lung = value > 127.5 (imlab3d)
  --ref-map nodule   nodule-only masks (LIDC slices)
  --ref-map cip      CIP ChestConventions codes (right/left from the region bits)
  --ref-map '255:both' or '1:right,2:left,3-9:nodule' for anything else.
A DICOM-SEG becomes a label map by its segments' codes when each is a right lung, left lung or
nodule/neoplasm (SNOMED CT Lung 39607008 with modifier Right 24028007 / Left 7771000, Right lung
3341006, Left lung 44029006; Nodule 27925004, Neoplasm 108369006, Mass 4147007, Lesion 52988006 and
the like): lungseg's own SEGs (`lungseg segment ... -o mask.dcm`) and IDC's lung SEGs read as 1/2/3.
Any other SEG reads as label = segment number (map those with --ref-map/--pred-map). Where segments
overlap the higher label wins (a nodule inside a lung segment stays a nodule). A SEG stores frames
only where a segment is present: it is placed on its partner's grid (same spacing and orientation,
slices matched by position), zeros elsewhere.
Outputs in DIR: per_case.csv/json, summary.csv/json (mean and patient-bootstrap 95% CI),
lesions.csv, PNG plots, overlays/ and report.html.

--detection scores whole-scan nodule lists with the LUNA16 rules (FROC: sensitivity at 1/8 ... 8
false positives per scan, CPM, bootstrap CIs over patients; all nodules and >= 10 mm). PRED:
`lungseg segment --report` JSON files (nodule centres and detection scores) or label maps;
REF: LIDC case folders (a DICOM series plus its LIDC XML; nodules of >= --min-readers readers
are references, everything else the readers marked is ignored) or label maps (label 3).
Writes froc.json, froc.png and per_case.csv in DIR.
"""


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="score predictions against reference label maps",
                              description="Score predicted label maps against references: Dice, IoU, precision, "
                                          "recall, specificity, accuracy, F1, HD95, ASSD, surface Dice, volumes, "
                                          "nodule detection; bootstrap CIs; plots and an HTML report.",
                              epilog=EPILOG, formatter_class=_formatter())
    p.add_argument("pred", help="prediction label file or folder")
    p.add_argument("ref", help="reference label file or folder")
    p.add_argument("-o", "--out", default="evaluation", help="output folder (default: ./evaluation)")
    p.add_argument("--images", metavar="DIR", help="CT images (file or folder) shown under the overlays")
    p.add_argument("--ref-map", default="labels", metavar="SPEC", help="reference label convention (default: labels)")
    p.add_argument("--pred-map", default="labels", metavar="SPEC", help="prediction label convention (default: labels)")
    p.add_argument("--classes", metavar="LIST", help="comma list among right_lung,left_lung,both_lungs,nodule "
                                                     "(default: all the maps provide)")
    p.add_argument("--tolerance", type=float, default=2.0, metavar="MM", help="surface Dice tolerance (default 2 mm)")
    p.add_argument("--min-iou", type=float, default=0.1, help="IoU for a nodule to count as detected (default 0.1)")
    p.add_argument("--patient-regex", metavar="RE", help="regex giving the patient from a case name (first group or "
                                                          "whole match), e.g. 'LIDC-IDRI-\\d+'; bootstrap resamples "
                                                          "patients (default: every case is a patient)")
    p.add_argument("--spacing", metavar="SX,SY,SZ",
                   help="voxel spacing in mm overriding the files' (PNG/NPY have none)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000; 0 = no CIs)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--allow-missing", action="store_true", help="score references without a prediction as empty "
                                                                 "predictions instead of stopping")
    p.add_argument("--robustness", metavar="MODEL", help="also measure MODEL's Dice under intensity shift, scaling "
                                                          "and noise of the CTs in --images (classical, default or "
                                                          "a checkpoint)")
    p.add_argument("--robustness-cases", type=int, default=3, metavar="N",
                   help="cases used for --robustness (default 3; each is segmented 15 times)")
    p.add_argument("--detection", action="store_true", help="whole-scan nodule detection: FROC and CPM (LUNA16 "
                                                              "rules) instead of voxel metrics")
    p.add_argument("--min-readers", type=int, default=2, metavar="N",
                   help="--detection with LIDC references: readers who must mark a nodule (default 2 of 4)")
    p.add_argument("--no-plots", action="store_true", help="skip PNG plots and overlays")
    p.add_argument("--no-html", action="store_true", help="skip report.html")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=run)
    return p


def _formatter():
    import argparse

    return argparse.RawDescriptionHelpFormatter


def run(args) -> int:
    from ..evaluation.folders import evaluate_folders

    spacing = _spacing(args.spacing)
    if args.n_boot < 0:
        raise LungsegError("--n-boot must be >= 0")
    if args.detection:
        return _run_detection(args)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    summary = evaluate_folders(
        args.pred, args.ref, args.out, args.ref_map, pred_map=args.pred_map, images_dir=args.images,
        classes=args.classes.split(",") if args.classes else None, tolerance_mm=args.tolerance,
        min_iou=args.min_iou, n_boot=args.n_boot, seed=args.seed, patient_regex=args.patient_regex,
        spacing=spacing, allow_missing=args.allow_missing, figures=not args.no_plots, html=not args.no_html,
        robustness=_segment_fn(args.robustness) if args.robustness else None,
        robustness_cases=args.robustness_cases, log=log)
    print(format_summary(summary))
    return 0


def _run_detection(args) -> int:
    from ..evaluation.detection_run import evaluate_detection

    if args.min_readers < 1:
        raise LungsegError("--min-readers must be >= 1")
    result = evaluate_detection(args.pred, args.ref, args.out, min_readers=args.min_readers, n_boot=args.n_boot,
                                seed=args.seed, allow_missing=args.allow_missing, patient_regex=args.patient_regex,
                                figures=not args.no_plots)
    print(result["table"])
    if not args.quiet:
        print(f"wrote froc.json, per_case.csv{', froc.png' if not args.no_plots else ''} in {args.out}",
              file=sys.stderr)
    return 0


def _segment_fn(model: str):
    """CTImage -> labels through the same segmenters `lungseg segment` uses."""
    from ..inference import check_intensity, resolve_segmenter

    segmenter = resolve_segmenter(model)

    def segment(ct):
        check_intensity(segmenter, ct)
        return segmenter(ct).labels

    return segment


def _spacing(text):
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (2, 3) or min(values) <= 0:
        raise LungsegError(f"--spacing expects SX,SY[,SZ] in mm, got '{text}'")
    return values if len(values) == 3 else [*values, 1.0]


def format_summary(summary: dict) -> str:
    """A short plain-text table: mean [95% CI] of the headline metrics per class."""
    cell = {(r["class"], r["metric"]): r for r in summary["summary"]}
    metrics = (("dice", "Dice", 3), ("hd95_mm", "HD95 mm", 2), ("surface_dice", "NSD", 3),
               ("vol_diff_ml", "dVol mL", 1))
    lines = [f"{summary['n_cases']} case(s), {summary['n_patients']} patient(s); mean [95% CI]"]
    lines.append(f"{'class':<12}" + "".join(f"{t:>24}" for _, t, _ in metrics))
    for cls in summary["settings"]["classes"]:
        txt = []
        for m, _, d in metrics:
            r = cell.get((cls, m), {})
            mean, lo, hi = (r.get(k, float("nan")) for k in ("mean", "ci_low", "ci_high"))
            txt.append(f"{mean:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]".rjust(24))
        lines.append(f"{cls:<12}" + "".join(txt))
    for r in summary.get("lesions", []):
        if r["quantity"] in ("lesion_recall", "fp_per_case"):
            lines.append(f"{r['quantity']}: {r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                         f"({r['numerator']}/{r['denominator']})")
    rob = summary.get("robustness")
    if rob:
        for cls, o in rob["overall"].items():
            lines.append(f"robustness {cls}: Dice {rob['baseline'][cls]:.3f} unperturbed, {o['mean']:.3f} ± "
                         f"{o['std']:.3f} under {sum(len(v) for v in rob['perturbations'].values())} perturbations "
                         f"(min {o['min']:.3f})")
    lines += [f"note: {n}" for n in summary.get("notes", [])]
    return "\n".join(lines)
