"""Readers and writers: every format, geometry round trips, orientation, DICOM equivalence."""
import zipfile

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_path

from lungseg.errors import LungsegError
from lungseg.io import CTImage, read_ct, write_image, write_labels
from lungseg.samples import SAMPLE_CT


def _geometry(img: sitk.Image):
    return img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection()


def _assert_same_geometry(a: sitk.Image, b: sitk.Image, tol=1e-6):
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tol)


def test_nrrd_reader_keeps_hu_and_geometry(sample_ct):
    ref = sitk.ReadImage(str(SAMPLE_CT))
    assert sample_ct.is_hu and sample_ct.format == "nrrd"
    assert sample_ct.shape == (79, 64, 64)
    np.testing.assert_array_equal(sample_ct.array, sitk.GetArrayFromImage(ref).astype(np.float32))
    _assert_same_geometry(sample_ct.to_original_grid(sample_ct.array), ref)


@pytest.mark.shared
def test_dicom_series_equals_nrrd(sample_ct):
    dcm = read_ct(shared_path("lungs/cip_copdgene/ct-64Dicom"))
    assert dcm.format == "dicom" and dcm.is_hu and dcm.meta["n_files"] == 79
    np.testing.assert_array_equal(dcm.array, sample_ct.array)
    np.testing.assert_allclose(dcm.spacing, sample_ct.spacing, atol=1e-3)
    np.testing.assert_allclose(dcm.origin, sample_ct.origin, atol=1e-3)
    np.testing.assert_allclose(dcm.direction, sample_ct.direction, atol=1e-6)


@pytest.mark.shared
def test_dicom_zip_equals_folder(tmp_path):
    folder = shared_path("lungs/cip_copdgene/ct-64Dicom")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"patient/series/{f.name}")
    a, b = read_ct(archive), read_ct(folder)
    np.testing.assert_array_equal(a.array, b.array)
    assert a.format == "dicom-zip"


def test_zip_path_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.dcm", b"x" * 200)
    with pytest.raises(LungsegError, match="outside the archive"):
        read_ct(archive)


@pytest.mark.shared
def test_dicom_without_modality_tag_and_single_file():
    two = read_ct(shared_path("dicom/lungmask_slices"))
    assert two.shape == (2, 512, 512) and two.is_hu
    assert two.meta["modality"].startswith("unknown")
    one = read_ct(shared_path("dicom/pydicom_ct_small/CT_small.dcm"))
    assert one.shape == (1, 128, 128) and one.is_2d and one.array.min() == -896


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_label_writer_restores_original_grid(tmp_path, suffix):
    """A RAS-oriented NIfTI-style volume: the mask lands on exactly the file's grid."""
    arr = np.random.default_rng(0).integers(-1000, 400, size=(12, 20, 24)).astype(np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((10.0, -20.0, 30.0))
    img.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # RAS, as most NIfTI files
    src = tmp_path / f"scan{suffix}"
    sitk.WriteImage(img, str(src))
    ct = read_ct(src)
    assert ct.original.orientation == "RAS"
    assert ct.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # canonical LPS
    labels = (ct.array > 0).astype(np.uint8)
    out = write_labels(labels, ct, tmp_path / f"mask{suffix}")
    back = sitk.ReadImage(str(out))
    _assert_same_geometry(back, img)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), (arr > 0).astype(np.uint8))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left over


def test_image_writer_round_trip(tmp_path, sample_ct):
    out = write_image(sample_ct, tmp_path / "ct.nii.gz")
    again = read_ct(out)
    np.testing.assert_array_equal(again.array, sample_ct.array)
    np.testing.assert_allclose(again.origin, sample_ct.origin, atol=1e-4)


def test_png_slice_is_image_mode_and_mask_png_round_trip(tmp_path):
    from PIL import Image

    pic = np.zeros((64, 80), np.uint8)
    pic[10:50, 5:30] = 200
    Image.fromarray(pic).save(tmp_path / "slice.png")
    ct = read_ct(tmp_path / "slice.png")
    assert ct.shape == (1, 64, 80) and ct.is_2d and not ct.is_hu and ct.format == "png"
    out = write_labels((ct.array > 100).astype(np.uint8), ct, tmp_path / "mask.png")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), (pic > 100).astype(np.uint8))


@pytest.mark.parametrize("fmt", ["jpg", "tiff"])
def test_jpg_and_tiff_read_as_greyscale(tmp_path, fmt):
    from PIL import Image

    pic = np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (40, 1))
    Image.fromarray(pic).convert("RGB").save(tmp_path / f"s.{fmt}")  # grey stored as RGB
    ct = read_ct(tmp_path / f"s.{fmt}")
    assert ct.shape == (1, 40, 48) and not ct.is_hu
    assert abs(float(ct.array[0, 0, -1]) - 255) < 8


def test_npy_and_npz_detect_hu(tmp_path):
    hu = np.full((3, 32, 32), -1000, np.int16)
    hu[:, 8:24, 8:24] = 40
    np.save(tmp_path / "vol.npy", hu)
    np.savez(tmp_path / "vol.npz", image=hu.astype(np.float32) / 3000 + 0.5)
    assert read_ct(tmp_path / "vol.npy").is_hu
    normalised = read_ct(tmp_path / "vol.npz")
    assert not normalised.is_hu and normalised.shape == (3, 32, 32)
    assert read_ct(tmp_path / "vol.npz", intensity="hu").is_hu  # the user can override


def test_left_coordinate_follows_direction():
    """Patient left is +x in LPS whatever the array order: a flipped x axis reverses it."""
    ct = CTImage.from_array(np.zeros((1, 16, 16)), spacing=(2, 2, 2))
    assert ct.left_coordinate(np.array([[0, 0, 15]]))[0] > ct.left_coordinate(np.array([[0, 0, 0]]))[0]
    flipped = CTImage.from_array(np.zeros((1, 16, 16)), spacing=(2, 2, 2), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert flipped.left_coordinate(np.array([[0, 0, 15]]))[0] < flipped.left_coordinate(np.array([[0, 0, 0]]))[0]


def test_fast_reorientation_equals_itk_dicomorient():
    """The numpy re-orientation used on read gives exactly ITK's DICOMOrient result (pixels,
    spacing, origin, direction) for all 48 axis permutations/flips, tilted or not."""
    import itertools

    import SimpleITK as sitk

    from lungseg.io.ctimage import CANONICAL_ORIENTATION, _canonical_view

    rng = np.random.default_rng(0)
    for perm, signs, tilt in itertools.product(itertools.permutations(range(3)), itertools.product([1, -1], repeat=3),
                                               (0.0, 0.05)):
        d = np.zeros((3, 3))
        for i, p in enumerate(perm):
            d[p, i] = signs[i]
        c, s = np.cos(tilt), np.sin(tilt)
        d = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ d
        img = sitk.GetImageFromArray(rng.integers(-1000, 1000, (5, 6, 7)).astype(np.int16))
        img.SetSpacing((0.7, 0.8, 2.5))
        img.SetOrigin((10.0, -20.0, 30.0))
        img.SetDirection(d.ravel().tolist())
        ref = sitk.DICOMOrient(img, CANONICAL_ORIENTATION)
        view, (spacing, origin, direction) = _canonical_view(img)
        np.testing.assert_array_equal(view, sitk.GetArrayFromImage(ref))
        np.testing.assert_allclose(spacing, ref.GetSpacing())
        np.testing.assert_allclose(origin, ref.GetOrigin(), atol=1e-6)
        np.testing.assert_allclose(direction, ref.GetDirection(), atol=1e-9)


def _nifti_bytes(path) -> bytes:
    import gzip

    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def _write_nifti_bytes(path, raw: bytes) -> None:
    import gzip

    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_nifti_with_a_corrupt_header_size_is_refused(tmp_path, suffix, endian):
    """ITK (and nibabel, with a warning) would read a NIfTI whose sizeof_hdr is wrong; refuse it."""
    import nibabel as nib

    path = tmp_path / f"scan{suffix}"
    arr = np.random.default_rng(0).integers(-1000, 400, (20, 20, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(arr, np.diag([0.8, 0.8, 2.5, 1]), nib.Nifti1Header(endianness=endian)), path)
    assert read_ct(path).shape == (4, 20, 20)  # valid in either byte order
    raw = _nifti_bytes(path)
    assert int.from_bytes(raw[:4], "little" if endian == "<" else "big") == 348
    _write_nifti_bytes(path, (999).to_bytes(4, "little" if endian == "<" else "big") + raw[4:])
    with pytest.raises(LungsegError, match=r"not a valid NIfTI header \(sizeof_hdr = 999, expected 348 or 540\)"):
        read_ct(path)


@pytest.mark.parametrize("kind", ["nifti1-little", "nifti1-big", "nifti2"])
def test_nifti_header_gives_the_data_size_nibabel_gives_and_a_cut_file_is_refused(tmp_path, kind):
    import nibabel as nib

    from lungseg.io.readers import _nifti_data_bytes

    arr = np.random.default_rng(0).integers(-1000, 400, (21, 20, 5)).astype(np.int16)
    affine = np.diag([0.8, 0.8, 2.5, 1])
    img = nib.Nifti2Image(arr, affine) if kind == "nifti2" else \
        nib.Nifti1Image(arr, affine, nib.Nifti1Header(endianness="<" if kind.endswith("little") else ">"))
    path = tmp_path / "scan.nii"
    nib.save(img, path)
    raw = path.read_bytes()
    header = nib.load(path).header
    assert _nifti_data_bytes(raw[:540], path) == 21 * 20 * 5 * header.get_data_dtype().itemsize
    if kind != "nifti2":  # this SimpleITK's ITK reads NIfTI-1 only
        assert read_ct(path).shape == (5, 20, 21)
    path.write_bytes(raw[:-300])
    with pytest.raises(LungsegError, match="file is truncated"):
        read_ct(path)


def test_nii_gz_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"\x5c\x01\x00\x00" + bytes(400))
    with pytest.raises(LungsegError, match="must be gzip-compressed"):
        read_ct(path)


def test_zip_past_the_size_limit_says_so(tmp_path, monkeypatch, capsys, sample_ct):
    """The limit is named with the numbers, not reported as 'no DICOM series found'."""
    from lungseg.cli import main
    from lungseg.io import readers

    dcm = tmp_path / "slice.dcm"
    img = sitk.Cast(sitk.GetImageFromArray(sample_ct.array[40].astype(np.int16)), sitk.sitkInt16)
    img.SetMetaData("0008|0060", "CT")
    sitk.WriteImage(img, str(dcm))
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(dcm, "patient/series/slice.dcm")
    assert read_ct(archive).shape == (1, 64, 64)  # a valid archive under the usual limit

    monkeypatch.setattr(readers, "ZIP_MAX_BYTES", 1000)
    out = tmp_path / "out" / "mask.nii.gz"
    assert main(["segment", str(archive), "-o", str(out), "--model", "classical"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "expands to" in err[0], err
    assert "KiB, more than the 1000 bytes limit" in err[0]
    assert not out.exists() and not list(tmp_path.glob("out/.*"))


def test_zip_with_too_many_files_names_the_limit(tmp_path, monkeypatch):
    from lungseg.io import readers

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.dcm", b"x" * 10)
    monkeypatch.setattr(readers, "ZIP_MAX_FILES", 2)
    with pytest.raises(LungsegError, match="holds 3 files, more than the 2 limit"):
        read_ct(archive)
