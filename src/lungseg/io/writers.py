"""Writers: label maps and CT volumes back on exactly the input grid, atomically."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import LungsegError
from .ctimage import CTImage
from .readers import suffix_of

ITK_SUFFIXES = {".nii", ".nii.gz", ".nrrd", ".mha"}
MASK_SUFFIXES = ITK_SUFFIXES | {".mhd", ".png", ".npy", ".dcm"}  # .dcm: DICOM-SEG (dicom_seg.py)
MASK_FORMATS = ("dicom-seg",)  # formats that may be forced whatever the suffix


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffix); rename it over `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix_of(path) or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_itk(img: sitk.Image, path: Path) -> None:
    suffix = suffix_of(path)
    if suffix == ".mhd":  # header + raw pair: write both in a scratch folder, move raw first
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".lungseg-") as tmp:
            sitk.WriteImage(img, str(Path(tmp) / path.name), True)
            for f in sorted(Path(tmp).iterdir(), key=lambda p: p.suffix == ".mhd"):
                os.replace(f, path.parent / f.name)
        return
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), True)


def write_labels(labels: np.ndarray, ref: CTImage, path, format: str | None = None, model: str | None = None) -> Path:
    """Write a canonical-grid label map on the reference's original grid; format from the suffix
    unless `format` ('dicom-seg') forces one. `model` names the algorithm in a DICOM-SEG."""
    path = Path(path)
    suffix = suffix_of(path)
    if format is not None and format not in MASK_FORMATS:
        raise LungsegError(f"unknown mask format '{format}' (use one of: {', '.join(MASK_FORMATS)})")
    if suffix not in MASK_SUFFIXES and format is None:
        raise LungsegError(f"cannot write mask as '{suffix or path.name}' (use one of: "
                           f"{', '.join(sorted(MASK_SUFFIXES))})")
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.shape != ref.shape:
        raise ValueError(f"label map shape {labels.shape} differs from image {ref.shape}")
    if format == "dicom-seg" or suffix == ".dcm":
        from .dicom_seg import write_dicom_seg

        return write_dicom_seg(labels, ref, path, model=model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".png", ".npy"):
        if labels.shape[0] != 1 and suffix == ".png":
            raise LungsegError(f"PNG output needs a 2D input; this scan has {labels.shape[0]} slices "
                               "(use .nii.gz, .nrrd or .mha)")
        grid = sitk.GetArrayFromImage(ref.to_original_grid(labels))  # file's own axis order
        with atomic_path(path) as tmp:
            if suffix == ".png":
                from PIL import Image
                Image.fromarray(grid[0]).save(tmp, format="PNG")
            else:
                with open(tmp, "wb") as f:
                    np.save(f, grid[0] if ref.is_2d else grid)
        return path
    _write_itk(ref.to_original_grid(labels), path)
    return path


def write_image(ct: CTImage, path, dtype=np.int16) -> Path:
    """Write a CT volume (HU rounded to `dtype`) on its original grid."""
    path = Path(path)
    if suffix_of(path) not in ITK_SUFFIXES | {".mhd"}:
        raise LungsegError(f"cannot write a CT volume as '{suffix_of(path)}'")
    arr = np.round(ct.array).astype(dtype) if np.dtype(dtype).kind in "iu" else ct.array.astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_itk(ct.to_original_grid(arr), path)
    return path


def copy_atomic(src, dst) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
