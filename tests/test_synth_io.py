"""Phantom writers: NIfTI + JSON, DICOM series, nnU-Net dataset, and the `lungseg synth` command."""
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from lungseg.cli import main
from lungseg.io import read_ct
from lungseg.synth import generate_case, write_case, write_nnunet_dataset
from lungseg.synth.dicom_writer import write_dicom_series

SMALL = (24, 64, 64)


@pytest.fixture(scope="module")
def case():
    return generate_case(5, shape=SMALL, n_nodules=1, padding=-3024)


def _same_geometry(a, b, tol=1e-3):
    assert a.shape == b.shape
    np.testing.assert_allclose(a.origin, b.origin, atol=tol)
    np.testing.assert_allclose(a.spacing, b.spacing, atol=tol)
    np.testing.assert_allclose(a.direction, b.direction, atol=1e-6)


def test_nifti_case_reads_back_identical(tmp_path, case):
    paths = write_case(case, tmp_path, "c5")
    ct = read_ct(paths["image"])
    assert ct.is_hu
    np.testing.assert_array_equal(ct.array, case.ct.array)
    _same_geometry(ct, case.ct)
    np.testing.assert_array_equal(read_ct(paths["labels"], intensity="image").array.astype(np.uint8), case.labels)
    np.testing.assert_array_equal(read_ct(paths["tissue"], intensity="image").array.astype(np.uint8), case.tissue)
    meta = json.loads(paths["json"].read_text())
    assert meta["labels"] == {"background": 0, "right_lung": 1, "left_lung": 2, "nodule": 3}
    assert meta["params"]["seed"] == 5 and len(meta["nodules"]) == 1
    assert meta["tissue_labels"]["20"] == "nodule"


def test_dicom_series_reads_back_through_lungseg_and_simpleitk(tmp_path, case):
    out = write_dicom_series(case.ct, tmp_path / "series", patient_id="C5")
    files = sorted(out.glob("*.dcm"))
    assert len(files) == SMALL[0]
    ds = pydicom.dcmread(files[0])
    assert ds.Modality == "CT" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024
    assert len({pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in files}) == 1

    ct = read_ct(out)
    assert ct.format == "dicom" and ct.is_hu
    np.testing.assert_array_equal(ct.array, case.ct.array)  # padding -3024 included
    _same_geometry(ct, case.ct)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(out)))
    img = reader.Execute()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img).astype(np.float32), case.ct.array)
    np.testing.assert_allclose(img.GetOrigin(), case.ct.origin, atol=1e-3)
    np.testing.assert_allclose(img.GetSpacing(), case.ct.spacing, atol=1e-3)


def test_nnunet_dataset_layout(tmp_path):
    root = write_nnunet_dataset(tmp_path / "Dataset900_Synth", 2, seed=3, shape=SMALL)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"} and meta["file_ending"] == ".nii.gz"
    assert meta["labels"]["left_lung"] == 2 and meta["numTraining"] == 2
    for name in ("synth_0003", "synth_0004"):
        img = read_ct(root / "imagesTr" / f"{name}_0000.nii.gz")
        lab = read_ct(root / "labelsTr" / f"{name}.nii.gz", intensity="image")
        _same_geometry(img, lab)
        assert set(np.unique(lab.array).astype(int)) <= {0, 1, 2, 3}
    again = generate_case(4, shape=SMALL)
    np.testing.assert_array_equal(read_ct(root / "imagesTr" / "synth_0004_0000.nii.gz").array, again.ct.array)


def test_cli_writes_volumes_labels_and_montage(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "--n", "2", "--out", str(out), "--seed", "0", "--size", "64", "64", "24", "-q"]) == 0
    for name in ("synth_0000", "synth_0001"):
        assert (out / f"{name}.nii.gz").exists() and (out / f"{name}_labels.nii.gz").exists()
    png = out / "montage.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "montage:" in capsys.readouterr().out


def test_cli_rejects_a_bad_size(tmp_path, capsys):
    assert main(["synth", "--n", "1", "--out", str(tmp_path), "--size", "64", "64"]) == 2
    assert "--size" in capsys.readouterr().err
