"""Write phantoms to disk: NIfTI volume + labels (+ tissue map, JSON parameters), optionally a
DICOM series, or a whole nnU-Net v2 raw dataset folder (imagesTr/labelsTr/dataset.json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import atomic_path, write_image, write_labels
from .generate import SynthCase, generate_case
from .tissue import names as tissue_names

LABELS = {"background": 0, "right_lung": 1, "left_lung": 2, "nodule": 3}


def case_name(seed: int) -> str:
    return f"synth_{seed:04d}"


def write_json(obj, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    return path


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_case(case: SynthCase, out_dir, name: str, dicom: bool = False, tissue: bool = True) -> dict[str, Path]:
    """Write NAME.nii.gz (HU, int16), NAME_labels.nii.gz, NAME.json (parameters, nodules, volumes),
    tissue/NAME.nii.gz (internal tissue map) and, with dicom=True, a series in dicom/NAME/.
    Returns the paths by role (image, labels, json, tissue, dicom)."""
    out_dir = Path(out_dir)
    paths = {"image": write_image(case.ct, out_dir / f"{name}.nii.gz"),
             "labels": write_labels(case.labels, case.ct, out_dir / f"{name}_labels.nii.gz")}
    if tissue:
        paths["tissue"] = write_labels(case.tissue, case.ct, out_dir / "tissue" / f"{name}.nii.gz")
    meta = {"name": name, "labels": LABELS, "tissue_labels": tissue_names(), "shape_zyx": list(case.ct.shape),
            "spacing_xyz": list(case.ct.spacing), "origin_xyz": list(case.ct.origin),
            "lung_volume_ml": {"right": case.lung_volume_ml(1), "left": case.lung_volume_ml(2)},
            "nodules": case.nodules, "params": case.params}
    paths["json"] = write_json(meta, out_dir / f"{name}.json")
    if dicom:
        from .dicom_writer import write_dicom_series

        paths["dicom"] = write_dicom_series(case.ct, out_dir / "dicom" / name, patient_id=name,
                                            uid_seed=f"lungseg-synth-{name}-{case.params['seed']}")
    return paths


def write_nnunet_dataset(out_dir, n: int, seed: int = 0, progress: Callable[[int], None] | None = None,
                         dataset_name: str = "LungsegSynth", cases: list[SynthCase] | None = None,
                         **overrides) -> Path:
    """An nnU-Net v2 raw dataset: imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz, dataset.json.

    Case i uses seed + i; per-case parameters go to params/CASE.json (ignored by nnU-Net).
    `cases`, if given, are written instead of generating new ones."""
    out_dir = Path(out_dir)
    for sub in ("imagesTr", "labelsTr", "params"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        case = cases[i] if cases is not None else generate_case(seed + i, progress=progress, **overrides)
        name = case_name(case.params["seed"])
        write_image(case.ct, out_dir / "imagesTr" / f"{name}_0000.nii.gz")
        write_labels(case.labels, case.ct, out_dir / "labelsTr" / f"{name}.nii.gz")
        write_json({"nodules": case.nodules, "params": case.params}, out_dir / "params" / f"{name}.json")
        names.append(name)
    write_json({
        "name": dataset_name,
        "description": "lungseg synthetic chest CT phantoms (procedural anatomy, exact labels)",
        "reference": "lungseg synth", "licence": "Apache-2.0 (generated data)",
        "channel_names": {"0": "CT"},
        "labels": LABELS,
        "numTraining": len(names),
        "file_ending": ".nii.gz",
        "training_cases": names,
    }, out_dir / "dataset.json")
    return out_dir
