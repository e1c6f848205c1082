"""Source registry: a config entry {type: ..., options...} -> list[Case]."""
from __future__ import annotations

from ..errors import LungsegError
from . import folders, lidc, shared_sets, synthetic

SOURCES = {
    "synthetic": synthetic.synthetic_cases,
    "synthetic_nodule_crops": synthetic.synthetic_nodule_crops,
    "nnunet": folders.nnunet_folder,
    "folder2d": folders.paired_2d_folder,
    "cip_copdgene": shared_sets.cip_copdgene,
    "imlab3d": shared_sets.imlab3d,
    "kaggle_lungs_64px": shared_sets.kaggle_lungs_64px,
    "lidc": lidc.lidc_scans,
    "lidc_crops": shared_sets.lidc_crops,
    "lidc_slices": shared_sets.lidc_slices,
    "msd_patches": shared_sets.msd_patches,
    "inserted_real": shared_sets.inserted_real,
}
# keys of a source entry that the dataset builder uses itself (not passed to the adapter)
ENTRY_KEYS = ("type", "role", "label_map", "patients_limit")


def load_source(entry: dict):
    entry = dict(entry)
    kind = entry.get("type")
    if kind not in SOURCES:
        raise LungsegError(f"unknown data source type '{kind}' (available: {', '.join(SOURCES)})")
    options = {k: v for k, v in entry.items() if k not in ENTRY_KEYS}
    try:
        cases = SOURCES[kind](**options)
    except TypeError as e:
        raise LungsegError(f"data source '{kind}': {e}") from None
    if entry.get("patients_limit"):  # the first N patients (sorted ids), all their cases
        keep = sorted({c.patient_id for c in cases})[: int(entry["patients_limit"])]
        cases = [c for c in cases if c.patient_id in set(keep)]
    return cases
