"""Upload format detection by content; also the scan builders the other web tests import.

Every accepted format is made here from the bundled sample CT, so the tests need no shared data.
"""
from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from lungseg.samples import SAMPLE_CT

pytest.importorskip("fastapi")

from lungseg.web.security import UploadRejected, detect_format, safe_filename  # noqa: E402


# ---- builders (imported by test_web_api, test_web_uploads, test_web_concurrency) --------------
def sample_image() -> sitk.Image:
    return sitk.ReadImage(str(SAMPLE_CT))


def write_volume(path: Path, image: sitk.Image | None = None) -> Path:
    sitk.WriteImage(image if image is not None else sample_image(), str(path), True)
    return path


def write_dicom_zip(path: Path, image: sitk.Image | None = None) -> Path:
    """A CT series (one file per slice, int16 + rescale tags) zipped inside a folder."""
    image = sitk.Cast(image if image is not None else sample_image(), sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.12345"
    direction = image.GetDirection()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for k in range(image.GetDepth()):
            sl = image[:, :, k]
            tags = {
                "0008|0060": "CT", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
                "0020|000d": "1.2.826.0.1.3680043.2.1125.1.1", "0020|000e": series_uid,
                "0020|0052": "1.2.826.0.1.3680043.2.1125.1.2",  # FrameOfReferenceUID: a DICOM-SEG needs it
                "0008|0018": f"{series_uid}.{k + 1}", "0020|0013": str(k + 1),
                "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
                "0020|0037": "\\".join(f"{v:.6f}" for v in (*direction[0:7:3], *direction[1:8:3])),
                "0018|0050": f"{image.GetSpacing()[2]:.6f}",
                "0028|1052": "0", "0028|1053": "1", "0010|0020": "TEST",
            }
            for key, value in tags.items():
                sl.SetMetaData(key, value)
            buf = path.parent / f".slice{k:03d}.dcm"
            writer.SetFileName(str(buf))
            writer.Execute(sl)
            zf.write(buf, f"series/IM{k + 1:04d}.dcm")
            buf.unlink()
    return path


def write_picture(path: Path, fmt: str = "PNG") -> Path:
    """A greyscale 8-bit slice through the lungs (what a user exports from a viewer)."""
    arr = sitk.GetArrayFromImage(sample_image())[40].astype(np.float32)
    grey = np.clip((arr + 1350) / 1500 * 255, 0, 255).astype(np.uint8)
    Image.fromarray(grey, "L").save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


def write_rgb_photo(path: Path) -> Path:
    rng = np.random.default_rng(1)
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 128)[None]
    rgb[..., 1] = np.linspace(255, 0, 96)[:, None]
    rgb[..., 2] = rng.integers(0, 255, (96, 128))
    Image.fromarray(rgb, "RGB").save(path, format="JPEG")
    return path


HAPPY_FORMATS = {  # name -> (builder, file name the browser sends)
    "nifti-gz": (lambda d: write_volume(d / "scan.nii.gz"), "scan.nii.gz"),
    "nifti": (lambda d: write_volume(d / "scan.nii"), "scan.nii"),
    "nrrd": (lambda d: Path(SAMPLE_CT), "scan.nrrd"),
    "mha": (lambda d: write_volume(d / "scan.mha"), "scan.mha"),
    "dicom-zip": (lambda d: write_dicom_zip(d / "series.zip"), "series.zip"),
    "png": (lambda d: write_picture(d / "slice.png"), "slice.png"),
    "jpeg": (lambda d: write_picture(d / "slice.jpg", "JPEG"), "slice.jpg"),
}


# ---- tests -----------------------------------------------------------------------------------
EXPECTED_SUFFIX = {"nifti-gz": ".nii.gz", "nifti": ".nii", "nrrd": ".nrrd", "mha": ".mha",
                   "dicom-zip": ".zip", "png": ".png", "jpeg": ".jpg"}


@pytest.mark.parametrize("fmt", sorted(HAPPY_FORMATS))
def test_each_accepted_format_is_recognised_by_content(fmt, tmp_path):
    built = HAPPY_FORMATS[fmt][0](tmp_path)
    anonymous = tmp_path / "upload.part"  # the name carries no hint
    anonymous.write_bytes(built.read_bytes())
    assert detect_format(anonymous) == EXPECTED_SUFFIX[fmt]


def _rejected(tmp_path, data: bytes, status: int, match: str):
    f = tmp_path / "upload.part"
    f.write_bytes(data)
    with pytest.raises(UploadRejected, match=match) as info:
        detect_format(f)
    assert info.value.status == status


def test_unknown_content_and_empty_files_are_refused(tmp_path):
    _rejected(tmp_path, b"<html><body>not a scan</body></html>", 415, "unsupported or unrecognised")
    _rejected(tmp_path, b"\x7fELF\x02\x01\x01" + bytes(200), 415, "unsupported")
    _rejected(tmp_path, gzip.compress(b"just some text " * 50), 415, "gzip file that does not hold a NIfTI")
    _rejected(tmp_path, b"", 400, "empty")
    _rejected(tmp_path, bytes(128) + b"DICM" + bytes(64), 415, "zip the whole series")


def test_headers_that_point_at_other_files_are_refused(tmp_path):
    """A detached NRRD/MetaImage header could make the reader open any file on the server."""
    _rejected(tmp_path, b"NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                        b"data file: /etc/passwd\n\n", 415, "separate data file")
    _rejected(tmp_path, b"ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_SHORT\n"
                        b"ElementDataFile = /etc/shadow\n", 415, "separate data file")


def test_nifti_detection_reads_the_header_not_the_name(tmp_path):
    header = bytearray(352)
    header[:4] = struct.pack("<i", 348)
    header[344:348] = b"n+1\0"
    f = tmp_path / "anything.png"
    f.write_bytes(bytes(header))
    assert detect_format(f) == ".nii"
    f.write_bytes(gzip.compress(bytes(header)))
    assert detect_format(f) == ".nii.gz"


def test_zip_without_dicom_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello " * 100)
    _rejected(tmp_path, buf.getvalue(), 415, "no DICOM files")


def test_browser_file_names_are_cleaned_for_display():
    assert safe_filename("C:\\Users\\me\\scan 1.nii.gz") == "scan 1.nii.gz"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("<script>x.nrrd") == "_script_x.nrrd"
    assert safe_filename("") == "scan"
