"""Whole-scan detection cases from files: predictions (lungseg reports or label maps) and
references (LIDC case folders with their XML reads, or label maps), paired by case name.

Predictions: a `lungseg segment --report` JSON (each nodule's `centroid_mm_lps` and
`detection_score`; a report without scores counts every nodule as score 1) or a label map
(each connected label-3 region is a finding with score 1). References: an LIDC case (a folder
holding a DICOM series and its LIDC XML, or a folder of such folders): nodules marked by
>= min_readers readers are references, everything else the readers marked is ignored (LUNA16);
or a label map whose connected label-3 regions are the references (diameter of the
equal-volume sphere).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from .cases import case_name, list_cases, patient_of
from .detection import DetectionCase, Finding, Prediction

REPORT_SUFFIX = re.compile(r"(\.report)?\.json$", re.IGNORECASE)


def prediction_files(path: Path) -> dict[str, Path]:
    """{case: report JSON or label file} for a file or a folder of them."""
    path = Path(path)
    if not path.exists():
        raise LungsegError(f"prediction not found: {path}")
    if path.is_file() and path.suffix.lower() == ".json":
        return {REPORT_SUFFIX.sub("", path.name): path}
    reports = sorted(path.glob("*.json")) if path.is_dir() else []
    if reports:
        return {REPORT_SUFFIX.sub("", p.name): p for p in reports}
    return list_cases(path, "prediction")


def read_predictions(path: Path) -> list[Prediction]:
    if path.suffix.lower() == ".json":
        try:
            nodules = json.loads(path.read_text())["nodules"]
            return [Prediction(tuple(map(float, n["centroid_mm_lps"])), float(n.get("detection_score", 1.0)))
                    for n in nodules]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LungsegError(f"{path}: not a lungseg report with nodules ({type(e).__name__}: {e})") from None
    return [Prediction(centre, 1.0) for centre, _ in label_findings(path)]


def label_findings(path: Path) -> list[tuple[tuple[float, float, float], float]]:
    """(LPS centre mm, equal-volume sphere diameter mm) of each connected label-3 region."""
    from ..io import read_labels
    from ..postprocess import component_voxels

    img = read_labels(path)
    out = []
    for pts in component_voxels(img.array == 3):
        coords = np.stack(pts, axis=1)
        centre = img.physical_points(coords.mean(axis=0)[None])[0]
        volume = len(coords) * float(np.prod(img.spacing))
        out.append((tuple(float(c) for c in centre), float((6 * volume / np.pi) ** (1 / 3))))
    return out


def reference_cases(path: Path, min_readers: int = 2) -> dict[str, tuple[list[Finding], list[Finding]]]:
    """{case: (reference nodules, ignored findings)} from LIDC cases or label maps."""
    from ..data.lidc import lidc_cases, load_lidc_case

    path = Path(path)
    if not path.exists():
        raise LungsegError(f"reference not found: {path}")
    lidc = [path] if path.suffix.lower() == ".xml" else list(lidc_cases(path)) if path.is_dir() else []
    if lidc:
        out = {}
        for case_path in lidc:
            case = load_lidc_case(case_path)
            nodules, ignored = case.reference_findings(min_readers)
            out[case.name] = ([Finding(tuple(c), d) for c, d in nodules], [Finding(tuple(c), d) for c, d in ignored])
        return out
    return {name: ([Finding(c, d) for c, d in label_findings(f)], []) for name, f in list_cases(path, "reference").items()}


def detection_cases(pred: Path, ref: Path, min_readers: int = 2, allow_missing: bool = False,
                    patient_regex: str | None = None) -> list[DetectionCase]:
    refs = reference_cases(ref, min_readers)
    preds = prediction_files(pred)
    if len(preds) == 1 and len(refs) == 1:  # one file each: they pair whatever their names
        preds = {next(iter(refs)): next(iter(preds.values()))}
    preds = {case_name(Path(n)) if n not in refs else n: p for n, p in preds.items()}
    missing = [c for c in refs if c not in preds]
    if missing and not allow_missing:
        raise LungsegError(f"no prediction for reference case(s) {', '.join(missing[:5])} "
                           "(--allow-missing scores them as empty predictions)")
    if not set(refs) & set(preds):
        raise LungsegError(f"no prediction matches a reference case ({', '.join(list(refs)[:5])})")
    pattern = re.compile(patient_regex) if patient_regex else None
    cases = []
    for name, (nodules, ignored) in refs.items():
        found = read_predictions(preds[name]) if name in preds else []
        cases.append(DetectionCase(name, nodules, found, ignored, patient=patient_of(name, pattern)))
    return cases
