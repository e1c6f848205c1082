"""Find prediction/reference/image files, pair them by case name and read label maps.

Case name = file name without its suffix and without a trailing role tag (_0000, -msk, _mask,
_seg, _label(s), _pred, _gt), so id001-128x128x64-msk.nii.gz (reference), id001-128x128x64.nii.gz
(prediction) and id001-128x128x64_0000.nii.gz (image, nnU-Net style) are one case.
Label files are read with lungseg.io.read_labels (canonical LPS grid, like read_ct, but an
all-zero mask is legal here: an empty prediction).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from ..io.readers import SLICE_SUFFIXES, VOLUME_SUFFIXES, suffix_of

LABEL_SUFFIXES = set(VOLUME_SUFFIXES) | {".png", ".npy", ".npz", ".tif", ".tiff"}
_ROLE_TAG = re.compile(r"([_-](0000|msk|mask|masks|seg|label|labels|pred|prediction|gt|ref))+$", re.IGNORECASE)


@dataclass
class LabelImage:
    array: np.ndarray  # raw values (z, y, x), canonical orientation
    spacing_zyx: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    has_geometry: bool  # False for PNG/NPY: spacing 1 mm is an assumption
    path: Path


def case_name(path: Path) -> str:
    stem = _stem(path)
    return _ROLE_TAG.sub("", stem) or stem


def list_cases(path: Path, what: str) -> dict[str, Path]:
    """{case name: file} for a file or the supported files directly inside a folder."""
    path = Path(path)
    if not path.exists():
        raise LungsegError(f"{what} not found: {path}")
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and suffix_of(p) in LABEL_SUFFIXES)
    if not files:
        raise LungsegError(f"no label files (NIfTI, NRRD, MHA, PNG, NPY) in {what} folder {path}")
    cases: dict[str, Path] = {}
    for f in files:
        if suffix_of(f) not in LABEL_SUFFIXES:
            raise LungsegError(f"unsupported {what} file type '{suffix_of(f)}': {f}")
        name = case_name(f)
        if name in cases:
            keep = _resolve_clash(what, name, cases[name], f)
            if keep is None:
                raise LungsegError(f"two {what} files map to case '{name}': {cases[name].name} and {f.name}")
            cases[name] = keep
            continue
        cases[name] = f
    return cases


def _resolve_clash(what: str, name: str, a: Path, b: Path) -> Path | None:
    """A folder holding both a scan and its mask (imlab3d: idNNN.nii.gz, idNNN-msk.nii.gz) serves as
    image folder (the untagged file) and as reference folder (the tagged file)."""
    tagged = [p for p in (a, b) if _stem(p) != name]
    untagged = [p for p in (a, b) if _stem(p) == name]
    if len(tagged) != 1 or len(untagged) != 1:
        return None
    return {"image": untagged[0], "reference": tagged[0]}.get(what)


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(suffix_of(path))]


def pair_cases(preds: dict[str, Path], refs: dict[str, Path]):
    """([(case, prediction file, reference file)], references without prediction, predictions without reference).

    A single prediction file and a single reference file always pair, whatever their names.
    """
    if len(preds) == 1 and len(refs) == 1:
        ((_, pred),), ((name, ref),) = preds.items(), refs.items()
        return [(name, pred, ref)], [], []
    paired = [(c, preds[c], refs[c]) for c in refs if c in preds]
    return paired, [c for c in refs if c not in preds], [c for c in preds if c not in refs]


def read_label_image(path: Path) -> LabelImage:
    """Raw label values on the canonical grid; never rejects an empty mask."""
    from ..io import read_labels

    path = Path(path)
    suffix = suffix_of(path)
    if suffix not in LABEL_SUFFIXES:
        raise LungsegError(f"unsupported label file type '{suffix}': {path}")
    lab = read_labels(path)
    has_geometry = suffix not in SLICE_SUFFIXES
    arr = lab.array.astype(np.int64) if lab.array.max() > 255 or lab.array.min() < 0 else lab.array.astype(np.uint8)
    return LabelImage(arr, lab.spacing_zyx, lab.origin, lab.direction, has_geometry, path)


def check_same_grid(case: str, pred: LabelImage, ref: LabelImage) -> None:
    """A prediction must lie on exactly the reference's voxel grid; say which case if not."""
    if pred.array.shape != ref.array.shape:
        raise LungsegError(f"case '{case}': prediction grid {_shape(pred)} differs from reference grid "
                           f"{_shape(ref)} ({pred.path.name} vs {ref.path.name}); resample the prediction "
                           "onto the reference grid first")
    if pred.has_geometry and ref.has_geometry:
        if not np.allclose(pred.spacing_zyx, ref.spacing_zyx, rtol=1e-3, atol=1e-4):
            raise LungsegError(f"case '{case}': prediction spacing {_fmt(pred.spacing_zyx[::-1])} mm differs from "
                               f"reference spacing {_fmt(ref.spacing_zyx[::-1])} mm")
        if not np.allclose(pred.direction, ref.direction, atol=1e-3):
            raise LungsegError(f"case '{case}': prediction and reference have different orientations "
                               "(direction matrices differ)")
        tol = 0.5 * min(ref.spacing_zyx)
        if not np.allclose(pred.origin, ref.origin, atol=tol):
            raise LungsegError(f"case '{case}': prediction origin {_fmt(pred.origin)} differs from reference "
                               f"origin {_fmt(ref.origin)} (mm)")


def _shape(img: LabelImage) -> str:
    z, y, x = img.array.shape
    return f"{x}x{y}" if z == 1 else f"{x}x{y}x{z}"


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"
