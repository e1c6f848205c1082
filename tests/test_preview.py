"""The preview's planes go through the largest nodule when there is one; the bundled nodule sample
(`make demo`) holds both lungs and LIDC-IDRI-0003's large nodule at a resolution the nodule search uses."""
import numpy as np
import SimpleITK as sitk

from lungseg.io import CTImage, read_ct
from lungseg.preview import _centre, render_preview
from lungseg.samples import SAMPLE_NODULE_CT


def _lungs_and_nodules() -> np.ndarray:
    labels = np.zeros((40, 64, 64), np.uint8)
    labels[5:35, 10:54, 6:30] = 1
    labels[5:35, 10:54, 34:58] = 2
    labels[20, 4:60, 2:62] = 1  # slice 20 has the most lung
    labels[8:10, 30:32, 12:14] = 3  # small nodule
    labels[27:32, 40:47, 40:46] = 3  # the largest nodule, widest on slice 29
    labels[29, 39:48, 39:47] = 3
    return labels


def test_planes_go_through_the_largest_nodule():
    z, y, x = _centre(_lungs_and_nodules())
    assert z == 29
    assert 40 <= y <= 46 and 40 <= x <= 45


def test_without_nodules_the_axial_plane_has_the_most_lung():
    labels = _lungs_and_nodules()
    labels[labels == 3] = 0
    assert _centre(labels)[0] == 20


def test_preview_shows_the_nodule_in_the_axial_panel(tmp_path):
    """The axial panel (left third) holds the nodule's red; a preview through the most-lung slice
    (20) would show none."""
    labels = _lungs_and_nodules()
    ct = CTImage.from_array(np.where(labels > 0, -850.0, 40.0), spacing=(1.0, 1.0, 1.0))
    path = render_preview(ct, labels, tmp_path / "p.png", alpha=1.0)
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    axial = rgb[:, : rgb.shape[1] // 3]
    red = (abs(axial[..., 0] - 0xFF) < 8) & (abs(axial[..., 1] - 0x41) < 8) & (abs(axial[..., 2] - 0x36) < 8)
    assert red.sum() > 50


def test_nodule_sample_is_fine_enough_and_holds_the_lidc_nodule():
    assert SAMPLE_NODULE_CT.stat().st_size < 3.2e6
    ct = read_ct(SAMPLE_NODULE_CT)
    assert ct.is_hu and ct.shape[0] == 24 and max(ct.spacing[:2]) <= 1.5  # the nodule search needs <= 1.5 mm
    assert sitk.ReadImage(str(SAMPLE_NODULE_CT)).GetPixelID() == sitk.sitkInt16
    centre = np.rint(ct.index_of_points(np.array([[72.1, 77.0, -190.7]]))[0]).astype(int)
    z, y, x = centre
    assert 8 <= z <= 16  # mid-volume
    assert np.median(ct.array[z - 1:z + 2, y - 5:y + 6, x - 5:x + 6]) > -300  # solid tissue at the nodule
    assert ct.physical_points(np.array([centre]))[0][0] > 0  # in the patient's left half
    # air-filled lung on both sides of the patient on the nodule's slice (x: mm toward the patient's left)
    air = np.argwhere(ct.array[z] < -700)
    side = ct.left_coordinate(np.c_[np.full(len(air), z), air])
    assert (side < -60).sum() > 5000 and (side > 60).sum() > 5000


def test_demo_lists_the_lidc_nodule_and_the_preview_goes_through_it():
    """What `make demo` shows a newcomer: the default model lists the ~31 mm nodule (readers'
    centre about (72.1, 77.0, -190.7) mm) at its operating point, and the axial plane cuts it."""
    import math

    import pytest

    import lungseg
    from lungseg.inference.pipeline import default_available

    if not default_available():
        pytest.skip("the default model's weights are not installed")
    result = lungseg.segment(SAMPLE_NODULE_CT)
    nodules = result.report["nodules"]
    near = [n for n in nodules if math.dist(n["centroid_mm_lps"], (72.1, 77.0, -190.7)) < 12]
    assert near and max(n["diameter_mm"] for n in near) > 20, (
        f"operating point {result.report.get('nodule_operating_point')}; listed "
        f"{[(n['diameter_mm'], n['detection_score']) for n in nodules]}")
    z, _, _ = _centre(result.labels)
    assert (result.labels[z] == 3).sum() > 100
