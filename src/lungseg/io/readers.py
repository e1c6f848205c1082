"""Readers: any supported file or folder -> CTImage. Every failure is one clear LungsegError."""
from __future__ import annotations

import gzip
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import LungsegError
from .ctimage import CTImage

VOLUME_SUFFIXES = {".nii": "nifti", ".nii.gz": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "mha", ".mhd": "mhd"}
SLICE_SUFFIXES = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tiff", ".tiff": "tiff",
                  ".npy": "npy", ".npz": "npz"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".ima", ""}
MIN_INPLANE = 16  # pixels; smaller "slices" cannot hold a chest
ZIP_MAX_FILES = 20000
ZIP_MAX_BYTES = 4 * 1024**3  # uncompressed; guards against zip bombs
NIFTI_HEADER_SIZES = (348, 540)  # sizeof_hdr, a NIfTI header's first field: NIfTI-1, NIfTI-2


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def is_supported_file(path: Path) -> bool:
    s = suffix_of(path)
    return s in VOLUME_SUFFIXES or s in SLICE_SUFFIXES or s == ".zip" or (s in DICOM_SUFFIXES and _is_dicom(path))


def looks_like_hu(array: np.ndarray) -> bool:
    """Heuristic: chest CT in HU has air near -1000 and tissue/bone above -300."""
    sample = np.asarray(array[:: max(1, array.shape[0] // 16)].ravel()[::7], dtype=np.float32)
    if sample.size == 0:
        return False
    p1, p99 = np.percentile(sample, [1, 99])
    return bool(p1 < -400 and p99 > -300 and sample.min() > -10000 and sample.max() < 20000)


def read_ct(path, intensity: str = "auto", validate: bool = True) -> CTImage:
    """Read a CT scan or slice. intensity: 'auto' (detect HU), 'hu' or 'image' (force).
    validate=False skips the checks meant for scans (size, NaN, blank), e.g. for label maps."""
    path = Path(path)
    if not path.exists():
        raise LungsegError(f"input not found: {path}")
    if path.is_dir():
        ct = _read_dicom_dir(path)
    else:
        suffix = suffix_of(path)
        if suffix == ".zip":
            ct = _read_dicom_zip(path)
        elif suffix in VOLUME_SUFFIXES:
            ct = _read_itk(path, VOLUME_SUFFIXES[suffix])
        elif suffix in SLICE_SUFFIXES:
            ct = _read_slice(path, SLICE_SUFFIXES[suffix])
        elif _is_dicom(path):
            ct = _read_dicom_files([str(path)], path)
        else:
            raise LungsegError(f"unsupported file type '{suffix or path.name}': {path} "
                               "(expected DICOM, NIfTI, NRRD, MHA/MHD, PNG, JPG, TIFF, NPY or a .zip of DICOM)")
    if validate:
        _validate(ct)
    if intensity == "hu":
        ct.is_hu = True
    elif intensity == "image":
        ct.is_hu = False
    elif intensity != "auto":
        raise LungsegError(f"unknown intensity mode '{intensity}' (use auto, hu or image)")
    return ct


def read_labels(path) -> CTImage:
    """A label map (mask) on the canonical grid; an all-zero mask is legal. Values are rounded.
    A DICOM-SEG gives lungseg labels on the grid of its frames only (meta['partial_extent'])."""
    from .dicom_seg import is_dicom_seg, read_dicom_seg

    if Path(path).is_file() and suffix_of(Path(path)) in DICOM_SUFFIXES and is_dicom_seg(path):
        return read_dicom_seg(path)
    ct = read_ct(path, intensity="image", validate=False)
    ct.array = np.rint(ct.array).astype(np.float32)
    return ct


# ---- validation ------------------------------------------------------------------------------
def _validate(ct: CTImage) -> None:
    z, y, x = ct.shape
    if min(y, x) < MIN_INPLANE:
        raise LungsegError(f"image is only {x}x{y} pixels in-plane; a chest CT slice needs at least "
                           f"{MIN_INPLANE}x{MIN_INPLANE}: {ct.source}")
    lo, hi = float(ct.array.min()), float(ct.array.max())  # NaN and inf show in these two (no full mask)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise LungsegError(f"image contains {int((~np.isfinite(ct.array)).sum())} NaN or infinite values: "
                           f"{ct.source}")
    if hi == lo:
        raise LungsegError(f"image is blank (every voxel is {float(ct.array.min()):g}): {ct.source}")


# ---- ITK volumes -----------------------------------------------------------------------------
def _itk_read(fn):
    try:
        return fn()
    except RuntimeError as e:  # SimpleITK reports every I/O problem as RuntimeError
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = next((ln for ln in reversed(lines) if "Exception" not in ln), lines[-1] if lines else "")
        raise LungsegError(f"cannot read image (truncated or not a valid file): {detail[:200]}") from None


def _check_nifti(path: Path) -> None:
    """Refuse a NIfTI file whose header is broken or whose voxel data is cut short, before ITK
    reads it: ITK (and nibabel, with a warning) read a header whose first field (sizeof_hdr) is
    not 348 or 540 in either byte order as if it were fine, and ITK pads a truncated file with
    zeros. Reads the header only (a .nii.gz: one small decompression); for .nii.gz the gzip
    trailer's size field (uncompressed size mod 2**32) is compared with the header's."""
    try:
        with (gzip.open(path, "rb") if suffix_of(path) == ".nii.gz" else open(path, "rb")) as f:
            head = f.read(540)
    except gzip.BadGzipFile:
        raise LungsegError(f"cannot read image {path}: not a valid NIfTI file (a .nii.gz must be "
                           "gzip-compressed; this one is not)") from None
    except (OSError, EOFError) as e:
        raise LungsegError(f"cannot read image {path}: not a valid NIfTI file ({str(e)[:160]})") from None
    if len(head) < 4:
        raise LungsegError(f"cannot read image {path}: file is too short for a NIfTI header")
    values = [int.from_bytes(head[:4], order) for order in ("little", "big")]
    if not any(v in NIFTI_HEADER_SIZES for v in values):  # the smaller is the likelier byte order to show
        raise LungsegError(f"cannot read image {path}: not a valid NIfTI header "
                           f"(sizeof_hdr = {min(values)}, expected 348 or 540)")
    data_bytes = _nifti_data_bytes(head, path)
    if suffix_of(path) == ".nii.gz":
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            size = int.from_bytes(f.read(4), "little")
        complete = (size - data_bytes) % 2**32 < 1 << 20  # the rest is a header (+ extensions)
    else:
        complete = path.stat().st_size >= data_bytes + 348
    if not complete:
        raise LungsegError(f"cannot read image {path}: file is truncated")


def _nifti_data_bytes(head: bytes, path: Path) -> int:
    """The voxel data's size from a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header: dim[] and
    bitpix at their places in the standard layout (what nibabel reads; importing it cost ~0.4 s
    of a ~7 s run)."""
    order = "<" if int.from_bytes(head[:4], "little") in NIFTI_HEADER_SIZES else ">"
    header_size = int(np.frombuffer(head, order + "i4", 1, 0)[0])  # 348 (NIfTI-1) or 540 (NIfTI-2)
    nifti1 = header_size == 348
    if len(head) < header_size:
        raise LungsegError(f"cannot read image {path}: file is too short for a NIfTI header")
    if nifti1:  # dim: int16[8] at 40, bitpix: int16 at 72
        dim, bitpix = np.frombuffer(head, order + "i2", 8, 40), int(np.frombuffer(head, order + "i2", 1, 72)[0])
    else:  # bitpix: int16 at 14, dim: int64[8] at 16
        bitpix, dim = int(np.frombuffer(head, order + "i2", 1, 14)[0]), np.frombuffer(head, order + "i8", 8, 16)
    ndim = int(dim[0])
    if not 1 <= ndim <= 7 or (dim[1:ndim + 1] < 1).any() or bitpix < 1:
        raise LungsegError(f"cannot read image {path}: not a valid NIfTI header (dim = {dim.tolist()}, "
                           f"bitpix = {bitpix})")
    return int(np.prod(dim[1:ndim + 1].astype(object))) * bitpix // 8


def _read_itk(path: Path, fmt: str) -> CTImage:
    if fmt == "nifti":
        _check_nifti(path)
    img = _itk_read(lambda: sitk.ReadImage(str(path)))
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise LungsegError(f"{path} has {img.GetNumberOfComponentsPerPixel()} components per voxel; "
                           "expected a greyscale CT")
    if img.GetDimension() not in (2, 3):
        raise LungsegError(f"{path} is {img.GetDimension()}D; expected a 2D slice or 3D volume")
    arr = sitk.GetArrayViewFromImage(img)
    ct = CTImage.from_sitk(img, is_hu=looks_like_hu(arr),
                           source=str(path), format=fmt)
    ct.is_2d = img.GetDimension() == 2
    return ct


# ---- DICOM -----------------------------------------------------------------------------------
def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def _dicom_header(filename: str):
    import pydicom

    try:
        return pydicom.dcmread(filename, stop_before_pixels=True, force=True)
    except Exception as e:  # pydicom raises many types for broken files
        raise LungsegError(f"cannot read DICOM header of {filename}: {e}") from None


def _read_dicom_files(files: list[str], source: Path) -> CTImage:
    # every header now (~0.5 ms a file), while the files exist: a zip's scratch folder is gone
    # before a DICOM-SEG writer needs the series' UIDs and slice positions
    headers = [_dicom_header(f) for f in files]
    ds = headers[0]
    modality = str(getattr(ds, "Modality", "") or "")
    if modality and modality.upper() != "CT":
        raise LungsegError(f"DICOM modality is {modality}, not CT: {source} (lungseg segments CT only)")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    img = _itk_read(reader.Execute)
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise LungsegError(f"DICOM image in {source} is colour; expected a greyscale CT")
    ct = CTImage.from_sitk(img, is_hu=True, source=str(source), format="dicom")
    ct.is_2d = len(files) == 1
    ct.meta.update(modality=modality or "unknown (tag missing)", n_files=len(files),
                   series_uid=str(getattr(ds, "SeriesInstanceUID", "")),
                   patient_id=str(getattr(ds, "PatientID", "")),
                   dicom_headers=headers)  # pydicom Datasets without pixel data, in `files` order
    # Pixel values after RescaleSlope/Intercept are HU for CT; an image without rescale tags
    # whose values do not look like HU (e.g. secondary captures) falls back to image mode.
    if not hasattr(ds, "RescaleIntercept") and not looks_like_hu(ct.array):
        ct.is_hu = False
    return ct


def _largest_series(root: Path) -> tuple[list[str], int] | None:
    """Files of the largest CT series anywhere under root (GDCM sorts them by position).

    A series with a missing Modality tag counts as CT; a non-CT series is returned only when
    there is nothing else, so the caller can name its modality in the error."""
    candidates = []
    for dirpath, _, filenames in os.walk(root):
        if not filenames:
            continue
        for sid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(dirpath):
            files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(dirpath, sid))
            modality = str(getattr(_dicom_header(files[0]), "Modality", "") or "CT").upper()
            candidates.append((modality == "CT", len(files), files))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[:2])[2], len(candidates)


def _read_dicom_dir(path: Path) -> CTImage:
    if not any(path.iterdir()):
        raise LungsegError(f"folder is empty: {path}")
    found = _largest_series(path)
    if found is None:
        raise LungsegError(f"no DICOM series found in folder {path}")
    files, n_series = found
    ct = _read_dicom_files(files, path)
    ct.meta["series_in_folder"] = n_series
    return ct


def _read_dicom_zip(path: Path) -> CTImage:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise LungsegError(f"cannot open zip archive {path}: {e}") from None
    with zf, tempfile.TemporaryDirectory(prefix="lungseg-zip-") as tmp:
        try:
            safe_extract(zf, Path(tmp))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            raise LungsegError(f"zip archive is damaged: {e}") from None
        except OSError as e:  # e.g. the temporary folder's disk is full: not the archive's fault
            raise LungsegError(f"cannot unpack zip archive {path.name}: {e}") from None
        ct = _read_dicom_dir(Path(tmp))
    ct.source, ct.format = str(path), "dicom-zip"
    return ct


def safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract refusing path traversal, links and zip bombs."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > ZIP_MAX_FILES:
        raise LungsegError(f"zip archive holds {len(infos)} files, more than the {ZIP_MAX_FILES} limit; refused")
    total = sum(i.file_size for i in infos)  # as the archive declares; checked again while unpacking
    if total > ZIP_MAX_BYTES:
        raise LungsegError(f"zip archive expands to {_size_text(total)}, more than the "
                           f"{_size_text(ZIP_MAX_BYTES)} limit; refused")
    root = dest.resolve()
    for i, info in enumerate(infos):
        target = (root / info.filename).resolve()
        if root not in target.parents:
            raise LungsegError(f"zip member '{info.filename}' points outside the archive; refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise LungsegError(f"zip member '{info.filename}' is a symbolic link; refused")
        # flatten names so GDCM sees one folder per series regardless of archive layout
        out = root / f"{i:06d}_{Path(info.filename).name}"
        with zf.open(info) as src, open(out, "wb") as dst:
            written = 0
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > info.file_size + 1024:
                    raise LungsegError(f"zip member '{info.filename}' expands past the {_size_text(info.file_size)} "
                                       "its header declares; refused")
                dst.write(chunk)


def _size_text(n: int) -> str:
    """Bytes for people: '4 GiB', '1.3 MiB'."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


# ---- 2D slices -------------------------------------------------------------------------------
def _read_slice(path: Path, fmt: str) -> CTImage:
    if fmt in ("npy", "npz"):
        arr = _load_numpy(path)
        is_hu = looks_like_hu(arr)
    else:
        arr = _load_picture(path)
        is_hu = fmt == "tiff" and arr.dtype.kind in "iu" and arr.dtype.itemsize >= 2 and looks_like_hu(arr)
    arr = np.asarray(arr, dtype=np.float32)
    ct = CTImage.from_array(arr, is_hu=is_hu, source=str(path), format=fmt)
    ct.is_2d = arr.ndim == 2
    return ct


def _load_numpy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:
        raise LungsegError(f"cannot read {path}: {e}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        keys = list(data.keys())
        if not keys:
            raise LungsegError(f"{path} holds no arrays")
        key = next((k for k in ("image", "ct", "arr_0", "x") if k in keys), keys[0])
        data = data[key]
    arr = np.squeeze(np.asarray(data))
    if arr.dtype.kind not in "iufb":
        raise LungsegError(f"{path} holds {arr.dtype} values; expected numbers")
    if arr.ndim not in (2, 3):
        raise LungsegError(f"{path} holds an array of shape {data.shape}; expected (y, x) or (z, y, x)")
    return arr


def _load_picture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            frames = []
            for k in range(getattr(im, "n_frames", 1)):
                im.seek(k)
                frames.append(_greyscale(im, path))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise LungsegError(f"cannot read image {path}: {e}") from None
    return frames[0] if len(frames) == 1 else np.stack(frames)


def _greyscale(im, path: Path) -> np.ndarray:
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    if im.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LA"):
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
        if np.abs(rgb[..., 0] - rgb[..., 1]).max() > 2 or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 2:
            raise LungsegError(f"{path} is a colour (RGB) picture, not a greyscale CT slice")
        return rgb[..., 0].astype(np.float32)
    return np.asarray(im).astype(np.float32)
