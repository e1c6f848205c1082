"""`lungseg evaluate` end to end: pair files, score every case, summarise, write tables/plots/HTML.

The in-memory half (evaluate_arrays, summarise_all) is what `lungseg compare` and the training
loop reuse; evaluate_folders only adds reading files and writing the outputs.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from .classes import ALL_CLASSES, check_classes
from .lesions import DEFAULT_MIN_IOU
from .metrics import DEFAULT_TOLERANCE_MM

CONVENTIONS = {
    "classes": "right_lung = label 1, left_lung = 2, nodule = 3, both_lungs = {1, 2, 3} (nodules count as "
               "lung) or the side-unknown lung of a binary reference; background is never averaged",
    "empty_masks": "both empty: Dice/IoU/F1/precision/recall/surface Dice 1, HD95/ASSD 0; one empty: Dice/IoU/"
                   "F1/surface Dice 0, HD95/ASSD undefined (NaN, counted in n_undefined, left out of means); "
                   "precision undefined when the prediction is empty, recall undefined when the reference is",
    "hd95": "MONAI percentile Hausdorff: max of the two directed 95th percentiles of boundary distances (mm)",
    "assd": "mean of boundary-voxel distances in both directions (mm)",
    "surface_dice": "fraction of both boundaries within tolerance_mm of the other (MONAI compute_surface_dice)",
    "volumes": "mL from voxel counts and spacing; vol_diff = predicted - reference",
    "lesions": "26-connected (8 in 2D) components; a reference lesion is hit when a predicted component "
               "reaches IoU >= min_iou; unmatched predicted components are false positives; size = "
               "equivalent sphere diameter (circle for single slices)",
    "confidence_intervals": "95% percentile bootstrap resampling patients (cases when no patient is given)",
}
OVERLAY_PICKS = ("best", "median", "worst")


# ---- in-memory API -----------------------------------------------------------------------------
def evaluate_arrays(cases, classes=ALL_CLASSES, tolerance_mm=DEFAULT_TOLERANCE_MM, min_iou=DEFAULT_MIN_IOU,
                    log=None) -> tuple[list[dict], list[dict]]:
    """Score in-memory cases: iterable of dicts {case, pred, ref, spacing_zyx[, patient]}.

    Returns (rows, lesion_rows): one row per case and class ({case, patient, class, metrics...})
    and one per lesion/predicted component of the nodule class.
    """
    from .metrics import evaluate_case

    classes = check_classes(classes)
    rows, lesion_rows = [], []
    for c in cases:
        patient = c.get("patient") or c["case"]
        metrics, lesions = evaluate_case(c["pred"], c["ref"], c.get("spacing_zyx", (1.0, 1.0, 1.0)), classes,
                                         tolerance_mm, min_iou, return_lesions=True)
        for cls, m in metrics.items():
            rows.append({"case": c["case"], "patient": patient, "class": cls, **m})
        lesion_rows += [{"case": c["case"], "patient": patient, **r} for r in lesions]
        if log:
            log(f"{c['case']}: " + ", ".join(f"{k} Dice {v['dice']:.3f}" for k, v in metrics.items()))
    return rows, lesion_rows


def summarise_all(rows, n_boot: int = 1000, seed: int = 0) -> dict:
    """Metric summaries, lesion detection and volume agreement of per-case rows."""
    from .bootstrap import summarise, summarise_lesions, volume_agreement

    return {"summary": summarise(rows, n_boot, seed), "lesions": summarise_lesions(rows, n_boot, seed),
            "volume_agreement": volume_agreement(rows)}


def case_scores(rows) -> dict[str, float]:
    """Mean Dice over the scored classes of each case (ranks best / median / worst)."""
    by_case: dict[str, list[float]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(float(r["dice"]))
    return {c: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for c, v in by_case.items()}


def pick_cases(scores: dict[str, float]) -> list[tuple[str, str]]:
    """[(pick, case)] for best, median and worst (each case shown once)."""
    ranked = sorted((s, c) for c, s in scores.items() if math.isfinite(s))
    if not ranked:
        return []
    picks = {"best": ranked[-1][1], "median": ranked[(len(ranked) - 1) // 2][1], "worst": ranked[0][1]}
    out, seen = [], set()
    for name in OVERLAY_PICKS:
        if picks[name] not in seen:
            seen.add(picks[name])
            out.append((name, picks[name]))
    return out


# ---- folders ------------------------------------------------------------------------------------
def evaluate_folders(pred_dir, ref_dir, out_dir, label_map=None, *, pred_map=None, images_dir=None, classes=None,
                     tolerance_mm=DEFAULT_TOLERANCE_MM, min_iou=DEFAULT_MIN_IOU, n_boot: int = 1000, seed: int = 0,
                     patient_regex: str | None = None, spacing=None, allow_missing: bool = False,
                     figures: bool = True, html: bool = True, robustness=None, robustness_cases: int = 3,
                     log=None) -> dict:
    """Evaluate prediction files against reference files (folders or single files) into out_dir.

    label_map / pred_map: label-map specs (labelmaps.py) for reference and prediction values.
    spacing: (sx, sy, sz) mm overriding the files' spacing (PNG/NPY carry none).
    robustness: optional segmenter (CTImage -> labels) run on the CTs of the first
    robustness_cases cases under intensity perturbations (needs images_dir); lung classes only.
    Writes per_case.csv/json, lesions.csv, summary.csv/json, PNG plots, overlays/ and report.html;
    returns the summary.json content.
    """
    from .cases import list_cases, pair_cases, patient_of, read_pair
    from .labelmaps import parse_label_map

    ref_map, p_map = parse_label_map(label_map), parse_label_map(pred_map)
    scored = _scored_classes(classes, ref_map, p_map)
    preds, refs = list_cases(Path(pred_dir), "prediction"), list_cases(Path(ref_dir), "reference")
    pairs, missing, unmatched = pair_cases(preds, refs)
    notes = []
    if missing and not allow_missing:
        raise LungsegError(f"{len(missing)} reference case(s) have no prediction: {_names(missing)} "
                           "(use --allow-missing to score them as empty predictions)")
    if unmatched:
        notes.append(f"{len(unmatched)} prediction(s) without a reference were ignored: {_names(unmatched)}")
    if not pairs and not missing:
        raise LungsegError(f"no prediction matches a reference by case name (predictions: {_names(list(preds))}; "
                           f"references: {_names(list(refs))})")
    if robustness is not None and not images_dir:
        raise LungsegError("--robustness needs the CT images: pass --images DIR")
    spacing_zyx_override = tuple(reversed([float(s) for s in spacing])) if spacing else None
    pattern = re.compile(patient_regex) if patient_regex else None
    meta, meta_unknown = {}, []  # filled while cases are read (one case in memory at a time)

    def cases():
        for name, pred_path, ref_path in pairs + [(m, None, refs[m]) for m in missing]:
            pred, ref = read_pair(name, pred_path, ref_path)
            spacing_zyx = spacing_zyx_override or ref.spacing_zyx
            if not ref.has_geometry and not spacing_zyx_override:
                meta_unknown.append(name)
            ref_codes = ref_map.apply(ref.array, "reference", name)
            pred_codes = (p_map.apply(pred.array, "prediction", name) if pred is not None
                          else np.zeros_like(ref_codes))
            meta[name] = {"pred": pred_path, "ref": ref_path, "shape_zyx": ref.array.shape,
                          "spacing_zyx": spacing_zyx, "missing_prediction": pred is None}
            yield {"case": name, "patient": patient_of(name, pattern), "pred": pred_codes, "ref": ref_codes,
                   "spacing_zyx": spacing_zyx}

    rows, lesion_rows = evaluate_arrays(cases(), scored, tolerance_mm, min_iou, log=log)
    if meta_unknown:
        notes.append(f"{len(meta_unknown)} case(s) have no spacing in their files (PNG/NPY): distances and volumes "
                     "assume 1 mm voxels; pass --spacing SX,SY,SZ to set it")
    if missing:
        notes.append(f"{len(missing)} reference case(s) had no prediction and were scored as empty: {_names(missing)}")
    result = summarise_all(rows, n_boot, seed)
    settings = {"predictions": str(pred_dir), "references": str(ref_dir), "images": str(images_dir or ""),
                "ref_map": ref_map.spec, "pred_map": p_map.spec, "classes": list(scored),
                "tolerance_mm": tolerance_mm, "min_iou": min_iou, "n_boot": n_boot, "seed": seed,
                "patient_regex": patient_regex or "", "spacing_override_xyz": list(spacing) if spacing else None}
    summary = {"settings": settings, "conventions": CONVENTIONS, "n_cases": len(meta),
               "n_patients": len({r["patient"] for r in rows}), "notes": notes, **result,
               "cases": [{"case": c, **m} for c, m in meta.items()]}
    if robustness is not None:
        summary["robustness"] = _robustness(robustness, pairs, refs, ref_map, images_dir, scored,
                                            robustness_cases, Path(out_dir), figures, log)
    from .report import write_outputs

    write_outputs(Path(out_dir), summary, rows, lesion_rows, meta, images_dir=images_dir, figures=figures,
                  html=html, log=log)
    return summary


def _robustness(segment_fn, pairs, refs, ref_map, images_dir, scored, n_cases, out_dir, figures, log) -> dict:
    """Dice of segment_fn under intensity shift/scale/noise on the first n_cases CTs."""
    from ..io import read_ct
    from .cases import align_to, case_name, list_cases, read_label_image
    from .robustness import default_classes, robustness_curve
    from .tables import write_json

    images = {case_name(p): p for p in list_cases(Path(images_dir), "image").values()}
    if len(images) == 1 and len(refs) == 1:
        images = {next(iter(refs)): next(iter(images.values()))}
    chosen = [c for c, _, _ in pairs if c in images][:max(n_cases, 0)]
    if not chosen:
        raise LungsegError(f"--robustness: no case has a CT image in {images_dir}")
    cts = [read_ct(images[c]) for c in chosen]
    refs_arr = [ref_map.apply(align_to(read_label_image(refs[c]), ct).array, "reference", c)
                for c, ct in zip(chosen, cts, strict=True)]
    classes = [c for c in default_classes(refs_arr[0]) if c in scored and c != "nodule"]
    if not classes:
        raise LungsegError("--robustness scores lung classes; the references have none")
    result = robustness_curve(segment_fn, cts, refs_arr, classes=classes, log=log)
    result["cases"] = chosen
    write_json(result, out_dir / "robustness.json")
    if figures:
        from .plots import robustness_plot

        robustness_plot(result, out_dir / "robustness.png")
    return {k: result[k] for k in ("baseline", "summary", "overall", "units", "perturbations", "cases")}


def _scored_classes(requested, ref_map, pred_map) -> tuple[str, ...]:
    wanted = check_classes(requested or ALL_CLASSES)
    ok = [c for c in wanted if c in ref_map.provides and c in pred_map.provides]
    if not ok:
        raise LungsegError(f"nothing to score: the reference map '{ref_map.spec}' provides "
                           f"{sorted(ref_map.provides) or 'no class'}, the prediction map '{pred_map.spec}' provides "
                           f"{sorted(pred_map.provides) or 'no class'}, requested {list(wanted)}")
    return tuple(ok)


def _names(names, n: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


__all__ = ["CONVENTIONS", "case_scores", "evaluate_arrays", "evaluate_folders", "pick_cases",
           "summarise_all"]
