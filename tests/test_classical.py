"""The no-weights segmenter against real references."""
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import dice, shared_path

from lungseg.classical import segment_classical
from lungseg.io import CTImage, read_ct

CIP_LEFT = [3, 7, 8, 9, 10, 11]
CIP_RIGHT = [2, 4, 5, 6, 12, 13, 14]


def test_bundled_sample_matches_whole_lung_reference(sample_labels, sample_lung_mask):
    assert dice(sample_labels > 0, sample_lung_mask) >= 0.97


def test_right_lung_is_on_patients_right(sample_ct, sample_labels):
    """Label 1 lies at smaller LPS x (patient right) than label 2."""
    right = sample_ct.left_coordinate(np.argwhere(sample_labels == 1)).mean()
    left = sample_ct.left_coordinate(np.argwhere(sample_labels == 2)).mean()
    assert right < -20 and left > 20


@pytest.mark.shared
def test_left_right_against_cip_label_map(sample_labels):
    codes = read_ct(shared_path("lungs/cip_copdgene/lm-64.nrrd")).array.astype(int) & 0xFF
    assert dice(sample_labels == 1, np.isin(codes, CIP_RIGHT)) >= 0.95
    assert dice(sample_labels == 2, np.isin(codes, CIP_LEFT)) >= 0.95


@pytest.mark.shared
def test_rotated_copy_gives_the_same_labels(sample_labels):
    """ct-64-transformed: same voxels, direction rotated 20 degrees about z."""
    rotated = read_ct(shared_path("lungs/cip_copdgene/ct-64-transformed.nrrd"))
    assert rotated.direction != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    np.testing.assert_array_equal(segment_classical(rotated), sample_labels)


def test_mirrored_file_keeps_patient_sides(tmp_path, sample_ct, sample_labels):
    """The same scan stored right-to-left (x axis flipped in the direction matrix)."""
    img = sample_ct.to_sitk()
    flipped = sitk.Flip(img, [True, False, False])  # ITK keeps physical space: direction x becomes -1
    path = tmp_path / "flipped.nii.gz"
    sitk.WriteImage(flipped, str(path))
    ct = read_ct(path)
    labels = segment_classical(ct)
    np.testing.assert_array_equal(labels, sample_labels)


def test_single_slice_and_image_mode(sample_ct, sample_labels):
    k = int(np.argmax((sample_labels > 0).sum(axis=(1, 2))))
    one = CTImage.from_array(sample_ct.array[k], spacing=sample_ct.spacing)
    lab = segment_classical(one)
    assert lab.shape == (1, 64, 64)
    assert dice(lab[0] == 1, sample_labels[k] == 1) > 0.95 and dice(lab[0] == 2, sample_labels[k] == 2) > 0.95
    # the same slice as an 8-bit picture (no HU, no spacing)
    pic = np.clip((sample_ct.array[k] + 1350) / 1500 * 255, 0, 255).astype(np.uint8)
    img_mode = segment_classical(CTImage.from_array(pic, is_hu=False))
    assert dice(img_mode[0] > 0, sample_labels[k] > 0) > 0.9


def test_body_without_lungs_gives_empty_mask():
    """A water cylinder with a small gas bubble (like bowel gas) has no lungs."""
    z, y, x = np.mgrid[0:20, 0:96, 0:96]
    vol = np.full((20, 96, 96), -1000.0)
    vol[(y - 48) ** 2 + (x - 48) ** 2 < 40**2] = 30.0
    vol[(y - 40) ** 2 + (x - 55) ** 2 < 5**2] = -1000.0
    labels = segment_classical(CTImage.from_array(vol, spacing=(1.0, 1.0, 2.0)))
    assert labels.max() == 0


@pytest.mark.shared
def test_abdomen_series_has_no_lungs():
    labels = segment_classical(read_ct(shared_path("dicom/abdomen_series")))
    assert labels.max() == 0


@pytest.mark.shared
@pytest.mark.parametrize("case", ["001", "002", "003"])
def test_imlab3d_dice(case):
    ct = read_ct(shared_path(f"lungs/imlab3d/id{case}-128x128x64.nii.gz"))
    ref = read_ct(shared_path(f"lungs/imlab3d/id{case}-128x128x64-msk.nii.gz")).array > 127.5
    assert dice(segment_classical(ct) > 0, ref) >= 0.93


@pytest.mark.shared
def test_kaggle_image_mode_slices():
    x = np.load(shared_path("lungs/kaggle_lungs_64px/x_train.npy"))[:40, ..., 0]
    y = np.load(shared_path("lungs/kaggle_lungs_64px/y_train.npy"))[:40, ..., 0] > 0.5
    scores = [dice(segment_classical(CTImage.from_array(a, is_hu=False))[0] > 0, m) for a, m in zip(x, y)]
    assert np.median(scores) >= 0.95


@pytest.mark.parametrize("first", [20, 38, 60])
def test_thin_slab_matches_the_same_slices_of_the_volume(sample_ct, sample_labels, first):
    """Two slices re-labelled 0.5 mm apart (a 1 mm slab, ~0.3 mL of lung per slice): lungs are
    judged by their area per slice, so the slab gets the slices' lungs, sides included."""
    slab = CTImage.from_array(sample_ct.array[first:first + 2], spacing=(*sample_ct.spacing[:2], 0.5),
                              origin=sample_ct.origin, direction=sample_ct.direction)
    labels = segment_classical(slab)
    ref = sample_labels[first:first + 2]
    assert labels.shape == ref.shape and (labels > 0).any()
    assert dice(labels > 0, ref > 0) >= 0.9
    assert dice(labels == 1, ref == 1) >= 0.9 and dice(labels == 2, ref == 2) >= 0.9


def test_thin_abdomen_slab_without_lungs_stays_empty():
    """Two 0.5 mm slices of a soft-tissue body with bowel gas: one pocket is larger than the
    per-slice lung minimum, but together they are under 2% of the body, so no lungs are in view."""
    y, x = np.mgrid[0:400, 0:400]
    section = np.full((400, 400), -1000.0)
    section[((y - 200) / 120.0) ** 2 + ((x - 200) / 170.0) ** 2 < 1] = 40.0
    section[(y - 150) ** 2 + (x - 230) ** 2 < 15**2] = -1000.0  # ~4.5 cm^2
    section[(y - 230) ** 2 + (x - 140) ** 2 < 9**2] = -1000.0  # ~1.6 cm^2
    slab = np.stack([section, section]) + np.random.default_rng(0).normal(0, 10, (2, 400, 400))
    labels = segment_classical(CTImage.from_array(slab, spacing=(0.8, 0.8, 0.5)))
    assert labels.shape == (2, 400, 400) and labels.max() == 0
