"""User data on disk: an nnU-Net raw dataset folder and a folder of paired 2D images/masks."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import LungsegError
from ..io import CTImage, read_ct
from ..io.readers import suffix_of
from .cases import Case, canonical_name


def read_label_volume(path: Path) -> np.ndarray:
    """A label file on the canonical (LPS, z-y-x) grid, like read_ct does for images."""
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise LungsegError(f"cannot read label file {path}: {str(e).splitlines()[-1][:200]}") from None
    return CTImage.from_sitk(img, is_hu=False).array.round().astype(np.uint8)


def _patient_of(case_id: str, patient_regex: str | None) -> str:
    if not patient_regex:
        return case_id
    m = re.search(patient_regex, case_id)
    return (m.group(1) if m.groups() else m.group(0)) if m else case_id


def nnunet_folder(path, patient_regex: str | None = None, channel: int = 0, cache: bool = True) -> list[Case]:
    """nnU-Net v1/v2 raw folder: dataset.json + imagesTr/CASE_0000.ext + labelsTr/CASE.ext.

    Label names come from dataset.json and are mapped to canonical names (lung, right_lung, ...).
    One case per patient unless `patient_regex` (first group = patient id) groups cases."""
    root = Path(path)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise LungsegError(f"{root} is not an nnU-Net dataset folder (no dataset.json)")
    meta = json.loads(meta_path.read_text())
    labels = meta.get("labels", {})
    # v2: {"background": 0, "lung": 1}; v1: {"0": "background", "1": "lung"}
    if labels and all(str(k).lstrip("-").isdigit() for k in labels):
        names = {int(k): canonical_name(v) for k, v in labels.items()}
    else:
        names = {int(v if not isinstance(v, list) else v[0]): canonical_name(k) for k, v in labels.items()}
    ending = meta.get("file_ending", ".nii.gz")
    label_dir = root / "labelsTr"
    cases = []
    for label_file in sorted(label_dir.glob(f"*{ending}")):
        cid = label_file.name[: -len(ending)]
        image_file = root / "imagesTr" / f"{cid}_{channel:04d}{ending}"
        if not image_file.is_file():
            raise LungsegError(f"nnU-Net case {cid}: image {image_file.name} missing in imagesTr")

        def loader(img=image_file, lab=label_file):
            ct = read_ct(img)
            return ct.array, read_label_volume(lab)

        ct_hint = sitk.ImageFileReader()
        ct_hint.SetFileName(str(image_file))
        ct_hint.ReadImageInformation()
        spacing = tuple(ct_hint.GetSpacing())[:3]
        cases.append(Case(cid, _patient_of(cid, patient_regex), loader, names, is_hu=True, spacing=spacing,
                          source=f"nnunet:{root.name}", cache=cache))
    if not cases:
        raise LungsegError(f"no labelled cases in {label_dir} (expected CASE{ending} files)")
    return cases


def paired_2d_folder(path, image_dir: str = "images", mask_dir: str = "masks", label_names: dict | None = None,
                     patient_regex: str | None = None, threshold: float | None = None, is_hu: bool | None = None,
                     cache: bool = True) -> list[Case]:
    """A folder with images/NAME.ext and masks/NAME.ext (PNG/JPG/TIFF/NPY), paired by file stem.

    Masks holding 0/255 (or any values > number of classes) are thresholded at half their
    maximum unless `threshold` is given; `label_names` maps mask values to class names
    (default {1: "lung"})."""
    root = Path(path)
    idir, mdir = root / image_dir, root / mask_dir
    if not idir.is_dir() or not mdir.is_dir():
        raise LungsegError(f"expected folders {idir} and {mdir}")
    names = {int(k): canonical_name(v) for k, v in (label_names or {1: "lung"}).items()}
    masks = {_stem(p): p for p in mdir.iterdir() if p.is_file() and not p.name.startswith(".")}
    cases = []
    for img in sorted(p for p in idir.iterdir() if p.is_file() and not p.name.startswith(".")):
        stem = _stem(img)
        if stem not in masks:
            raise LungsegError(f"image {img.name} has no mask in {mdir}")
        ct = read_ct(img)  # cheap for 2D; tells HU vs image mode

        def loader(img=img, msk=masks[stem], ct=ct):
            mask = _read_mask(msk)
            if threshold is not None:
                mask = mask > threshold
            elif mask.max() > max(names):
                mask = mask > mask.max() / 2.0
            mask = mask.astype(np.uint8)
            return ct.array, mask.reshape(ct.array.shape) if mask.size == ct.array.size else mask

        cases.append(Case(stem, _patient_of(stem, patient_regex), loader, names,
                          is_hu=ct.is_hu if is_hu is None else is_hu, source=f"folder2d:{root.name}", cache=cache))
    if not cases:
        raise LungsegError(f"no images in {idir}")
    return cases


def _stem(p: Path) -> str:
    return p.name[: -len(suffix_of(p))] if suffix_of(p) else p.name


def _read_mask(path: Path) -> np.ndarray:
    if suffix_of(path) in (".npy",):
        return np.squeeze(np.load(path)).astype(np.float32)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L") if im.mode not in ("L", "I", "I;16", "F") else im).astype(np.float32)
