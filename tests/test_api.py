"""The Python API mirrors the CLI; report numbers follow from the mask."""
import numpy as np
import pytest
import SimpleITK as sitk

import lungseg
from lungseg.errors import NotHUError
from lungseg.io import CTImage
from lungseg.samples import SAMPLE_CT
from lungseg.inference import SegmenterOutput
from lungseg.volumetry import lung_statistics, nodule_statistics


def test_segment_path_returns_labels_report_and_saves(tmp_path):
    result = lungseg.segment(SAMPLE_CT, model="classical")
    assert result.labels.shape == (79, 64, 64) and result.probabilities is None
    n_right = int((result.labels == 1).sum())
    assert result.report["lungs"]["right"]["voxels"] == n_right
    voxel_ml = np.prod(sitk.ReadImage(str(SAMPLE_CT)).GetSpacing()) / 1000
    assert result.report["lungs"]["right"]["volume_ml"] == pytest.approx(n_right * voxel_ml, abs=0.01)
    out = result.save(tmp_path / "m.mha")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), result.labels_in_file_order)
    assert result.save_preview(tmp_path / "p.png").stat().st_size > 10_000


class _HUOnly:
    name = "hu-only-test-model"
    requires_hu = True

    def __call__(self, ct, postprocess=True):
        return SegmenterOutput(np.zeros(ct.shape, np.uint8))


def test_hu_only_model_refuses_image_mode_input():
    pic = CTImage.from_array(np.random.default_rng(0).random((64, 64)), is_hu=False)
    with pytest.raises(NotHUError, match="not Hounsfield units.*--model classical"):
        lungseg.segment(pic, model=_HUOnly())


def test_emphysema_index_and_volumes_on_crafted_volume():
    arr = np.full((4, 20, 20), -1000.0, np.float32)
    labels = np.zeros(arr.shape, np.uint8)
    labels[:, 2:10, 2:18] = 1  # 512 voxels
    labels[:, 12:18, 2:18] = 2  # 384 voxels
    arr[labels == 1] = -900
    arr[:2, 2:10, 2:18] = -970  # half of the right lung below -950
    ct = CTImage.from_array(arr, spacing=(2.0, 2.0, 2.5))
    stats = lung_statistics(ct, labels)
    assert stats["right"]["volume_ml"] == pytest.approx(512 * 0.01)
    assert stats["right"]["emphysema_index_pct"] == pytest.approx(50.0)
    assert stats["left"]["emphysema_index_pct"] == pytest.approx(100.0)
    assert stats["total"]["voxels"] == 896


def test_nodule_size_side_and_slices():
    z, y, x = np.mgrid[0:40, 0:64, 0:64]
    labels = np.zeros((40, 64, 64), np.uint8)
    labels[:, :, 32:] = 2  # patient left half (larger x)
    labels[:, :, :32] = 1
    sphere = (z - 20) ** 2 + (y - 30) ** 2 + (x - 45) ** 2 <= 8**2
    labels[sphere] = 3
    ct = CTImage.from_array(np.zeros(labels.shape), spacing=(1.0, 1.0, 1.0))
    (nod,) = nodule_statistics(ct, labels)
    assert nod["side"] == "left"
    assert nod["diameter_mm"] == pytest.approx(16.0, abs=0.3)  # sphere of radius 8 voxels
    assert nod["max_axial_diameter_mm"] == pytest.approx(17.0, abs=1.1)
    assert nod["slice_range"] == [12, 28]
