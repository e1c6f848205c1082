"""Post-processing on crafted label maps."""
import numpy as np

from lungseg.postprocess import low_confidence_map, postprocess_labels


def _two_lungs():
    lab = np.zeros((20, 40, 60), np.uint8)
    lab[2:18, 5:35, 5:27] = 1
    lab[2:18, 5:35, 33:55] = 2
    return lab


def test_stray_piece_of_wrong_colour_merges_into_the_lung_it_touches():
    lab = _two_lungs()
    lab[8:10, 10:14, 10:14] = 2  # a "left" patch inside the right lung
    out = postprocess_labels(lab, (2.0, 1.0, 1.0))
    assert (out[8:10, 10:14, 10:14] == 1).all()
    assert (out == 2).sum() == (_two_lungs() == 2).sum()


def test_isolated_small_blob_is_removed_large_second_piece_kept():
    lab = _two_lungs()
    lab[0, 0:2, 0:2] = 1  # 4 voxels * 2 mm^3: far below 2 mL
    out = postprocess_labels(lab, (2.0, 1.0, 1.0))
    assert out[0, 0:2, 0:2].max() == 0
    np.testing.assert_array_equal(out, _two_lungs())


def test_holes_are_filled_per_lung_without_merging_lungs():
    lab = _two_lungs()
    lab[5:8, 15:20, 12:16] = 0  # a vessel hole inside the right lung
    out = postprocess_labels(lab, (2.0, 1.0, 1.0))
    assert (out[5:8, 15:20, 12:16] == 1).all()
    assert (out[:, :, 28:32] == 0).all()  # the gap between lungs stays empty


def test_nodules_kept_inside_lungs_dropped_outside_or_tiny():
    lab = _two_lungs()
    lab[8:12, 18:22, 40:44] = 3  # 64 mm^3 inside the left lung: kept
    lab[0:1, 38:40, 0:1] = 3  # 2 voxels outside the lungs: dropped
    lab[15, 30, 10] = 3  # one voxel inside the right lung: below 3 mm, dropped
    out = postprocess_labels(lab, (1.0, 1.0, 1.0))
    assert (out[8:12, 18:22, 40:44] == 3).all()
    assert (out == 3).sum() == 64


def test_single_slice():
    lab = _two_lungs()[10:11]
    lab[0, 0, 0] = 2
    out = postprocess_labels(lab, (1.0, 1.0, 1.0))
    assert out.shape == lab.shape and out[0, 0, 0] == 0


def test_low_confidence_band():
    p = np.zeros((3, 1, 1, 4), np.float32)
    p[:, 0, 0, 0] = [1.0, 0.0, 0.0]  # sure background
    p[:, 0, 0, 1] = [0.0, 0.95, 0.05]  # sure right lung
    p[:, 0, 0, 2] = [0.45, 0.55, 0.0]  # unsure border
    p[:, 0, 0, 3] = [0.0, 0.5, 0.5]  # unsure right vs left
    assert low_confidence_map(p)[0, 0].tolist() == [False, False, True, True]
