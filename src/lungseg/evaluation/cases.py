"""Find prediction/reference/image files, pair them by case name and read label maps.

Case name = file name without its suffix and without a trailing role tag (_0000, -msk, _mask,
_seg, _label(s), _pred, _gt), so id001-128x128x64-msk.nii.gz (reference), id001-128x128x64.nii.gz
(prediction) and id001-128x128x64_0000.nii.gz (image, nnU-Net style) are one case.
Label files are read with lungseg.io.read_labels (canonical LPS grid, like read_ct, but an
all-zero mask is legal here: an empty prediction). A DICOM-SEG (.dcm) holds frames only where a
segment is present, so its grid spans part of its source series: align_pair puts it into its
partner's grid (see lungseg.io.dicom_seg for how segments become labels 1/2/3).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from ..io.readers import SLICE_SUFFIXES, VOLUME_SUFFIXES, suffix_of

LABEL_SUFFIXES = set(VOLUME_SUFFIXES) | {".png", ".npy", ".npz", ".tif", ".tiff", ".dcm"}  # .dcm: DICOM-SEG
_ROLE_TAG = re.compile(r"([_.-](0000|msk|mask|masks|seg|label|labels|pred|prediction|gt|ref))+$", re.IGNORECASE)


@dataclass
class LabelImage:
    array: np.ndarray  # raw values (z, y, x), canonical orientation
    spacing_zyx: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    has_geometry: bool  # False for PNG/NPY: spacing 1 mm is an assumption
    path: Path
    partial: bool = False  # a DICOM-SEG: its grid covers only the slices that hold frames


def case_name(path: Path) -> str:
    stem = _stem(path)
    return _ROLE_TAG.sub("", stem) or stem


def patient_of(case: str, pattern: "re.Pattern | None") -> str:
    """The patient a case belongs to: the regex's first group (or whole match), else the case."""
    m = pattern.search(case) if pattern is not None else None
    if not m:
        return case
    return m.group(1) if m.groups() else m.group(0)


def list_cases(path: Path, what: str) -> dict[str, Path]:
    """{case name: file} for a file or the supported files directly inside a folder."""
    path = Path(path)
    if not path.exists():
        raise LungsegError(f"{what} not found: {path}")
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and suffix_of(p) in LABEL_SUFFIXES
        and (suffix_of(p) != ".dcm" or _is_seg(p)))  # a folder's CT slices are not label files
    if not files:
        raise LungsegError(f"no label files (NIfTI, NRRD, MHA, PNG, NPY, DICOM-SEG) in {what} folder {path}")
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


def _is_seg(path: Path) -> bool:
    from ..io.dicom_seg import is_dicom_seg

    return is_dicom_seg(path)


def read_label_image(path: Path) -> LabelImage:
    """Raw label values on the canonical grid; never rejects an empty mask."""
    from ..io import read_labels

    path = Path(path)
    suffix = suffix_of(path)
    if suffix not in LABEL_SUFFIXES:
        raise LungsegError(f"unsupported label file type '{suffix}': {path}")
    if suffix == ".dcm" and not _is_seg(path):
        raise LungsegError(f"{path} is not a DICOM-SEG (a .dcm label file must be a Segmentation)")
    lab = read_labels(path)
    has_geometry = suffix not in SLICE_SUFFIXES
    arr = lab.array.astype(np.int64) if lab.array.max() > 255 or lab.array.min() < 0 else lab.array.astype(np.uint8)
    return LabelImage(arr, lab.spacing_zyx, lab.origin, lab.direction, has_geometry, path,
                      partial=bool(lab.meta.get("partial_extent")))


def read_pair(case: str, pred_path: Path | None, ref_path: Path) -> tuple[LabelImage | None, LabelImage]:
    """Prediction (None when missing) and reference on one grid, or one LungsegError saying why not."""
    ref = read_label_image(ref_path)
    pred = read_label_image(pred_path) if pred_path else None
    if pred is not None:
        pred, ref = align_pair(pred, ref)
        check_same_grid(case, pred, ref)
    return pred, ref


def align_pair(pred: LabelImage, ref: LabelImage) -> tuple[LabelImage, LabelImage]:
    """Put a DICOM-SEG into its partner's grid (both SEGs: into the union of their grids). Grids
    that differ in more than extent are returned as they are, for check_same_grid to report."""
    if not (pred.partial or ref.partial):
        return pred, ref
    if pred.partial and ref.partial:
        offset = _offset(pred, ref)
        if offset is None:
            return pred, ref
        start = np.minimum(offset, 0)
        shape = tuple(int(v) for v in np.maximum(offset + pred.array.shape, ref.array.shape) - start)
        union = embed(ref, shape, _corner(ref, start))
        return embed(pred, shape, _corner(ref, start)), union
    return align_to(pred, ref), align_to(ref, pred)


def align_to(img: LabelImage, like) -> LabelImage:
    """A DICOM-SEG's labels on the grid of `like` (a LabelImage or CTImage); other files as they are."""
    if not img.partial or getattr(like, "partial", False):
        return img
    return embed(img, like.array.shape, like.origin, like.spacing_zyx, like.direction)


def embed(img: LabelImage, shape, origin, spacing_zyx=None, direction=None) -> LabelImage:
    """img's labels on a larger grid of the same spacing and direction (zeros elsewhere)."""
    spacing_zyx = img.spacing_zyx if spacing_zyx is None else spacing_zyx
    direction = img.direction if direction is None else direction
    target = LabelImage(np.zeros(tuple(shape), dtype=img.array.dtype), tuple(spacing_zyx), tuple(origin),
                        tuple(direction), True, img.path)
    offset = _offset(img, target)
    if offset is None:
        return img
    lo, hi = np.maximum(offset, 0), np.minimum(offset + img.array.shape, target.array.shape)
    inside = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, offset, strict=True))
    kept = img.array[inside]
    if int(np.count_nonzero(kept)) != int(np.count_nonzero(img.array)):
        raise LungsegError(f"{img.path.name}: the DICOM-SEG's labels lie outside the grid it is compared on "
                           "(is the other file from another series?)")
    target.array[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))] = kept
    return target


def _offset(img: LabelImage, grid: LabelImage) -> np.ndarray | None:
    """Integer (z, y, x) index of img's first voxel in grid, or None when the grids do not share
    spacing, direction and voxel positions."""
    if not (np.allclose(img.spacing_zyx, grid.spacing_zyx, rtol=1e-3, atol=1e-4)
            and np.allclose(img.direction, grid.direction, atol=1e-3)):
        return None
    d = np.asarray(grid.direction, dtype=float).reshape(3, 3)
    index_xyz = np.linalg.solve(d, np.subtract(img.origin, grid.origin)) / np.asarray(grid.spacing_zyx[::-1])
    index = index_xyz[::-1]
    if not np.allclose(index, np.rint(index), atol=0.1):
        return None
    return np.rint(index).astype(int)


def _corner(img: LabelImage, start_zyx) -> tuple[float, float, float]:
    """LPS position of the voxel at (possibly negative) index start_zyx of img's grid."""
    d = np.asarray(img.direction, dtype=float).reshape(3, 3)
    return tuple(np.asarray(img.origin) + d @ (np.asarray(start_zyx[::-1], dtype=float) * img.spacing_zyx[::-1]))


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
