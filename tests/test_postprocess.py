"""Post-processing on crafted label maps."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from lungseg.postprocess import add_dark_pockets, fill_holes, label, label_voxels, low_confidence_map, postprocess_labels, voxels


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


def test_pieces_merge_into_the_lung_they_touch_and_isolated_small_ones_drop():
    lab = _two_lungs()
    lab[8:10, 10:14, 10:14] = 2  # a "left" patch inside the right lung: becomes right
    lab[4:6, 8:12, 28:33] = 1  # a "right" piece in the gap, touching only the left lung: becomes left
    lab[0, 0:2, 0:2] = 2  # isolated, 4 voxels * 2 mm^3: dropped
    lab[19, 36:40, 0:40] = 1  # isolated but 160 voxels * 2 mm^3 = 0.32 mL: kept with min_piece_ml=0.3
    out = postprocess_labels(lab, (2.0, 1.0, 1.0), min_piece_ml=0.3, min_piece_fraction=0.0)
    expected = _two_lungs()
    expected[4:6, 8:12, 28:33] = 2
    expected[19, 36:40, 0:40] = 1
    np.testing.assert_array_equal(out, expected)


def test_fill_holes_matches_3d_then_per_slice_binary_fill_holes():
    rng = np.random.default_rng(0)
    for shape in [(6, 12, 14), (1, 9, 9), (9, 11)]:
        mask = ndi.gaussian_filter(rng.random(shape), 1.0) > 0.5
        expected = ndi.binary_fill_holes(mask)
        if mask.ndim == 3:
            expected = np.stack([ndi.binary_fill_holes(s) for s in expected])
        np.testing.assert_array_equal(fill_holes(mask), expected)


@pytest.mark.parametrize("shape", [(7, 9, 11), (13, 17)])
def test_label_voxels_numbers_components_like_ndi_label(shape):
    mask = np.random.default_rng(1).random(shape) < 0.2
    expected, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim))
    ids, m = label_voxels(voxels(mask), mask.shape)
    assert m == n
    np.testing.assert_array_equal(ids, expected[mask])


@pytest.mark.parametrize("shape", [(7, 9, 11), (13, 17), (1, 9, 11)])
def test_label_numbers_face_connected_components_like_ndi_label(shape):
    mask = ndi.gaussian_filter(np.random.default_rng(2).random(shape), 0.8) > 0.5
    expected, n = ndi.label(mask)  # the cross: face neighbours
    comps, m = label(mask)
    assert m == n > 1
    np.testing.assert_array_equal(comps, expected)
    if mask.ndim == 3:  # in-plane: each slice on its own, numbered in raster order over the volume
        inplane = np.zeros((3, 3, 3), dtype=bool)
        inplane[1] = ndi.generate_binary_structure(2, 1)
        expected, n = ndi.label(mask, structure=inplane)
        comps, m = label(mask, inplane=True)
        assert m == n
        np.testing.assert_array_equal(comps, expected)


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


def test_isolated_piece_small_against_its_lung_is_dropped_in_3d_kept_on_a_slice():
    """Bowel gas under a lung can exceed 2 mL; lungmask keeps one component per lung."""
    lab = _two_lungs()  # each lung 10560 voxels
    lab[19, 36:40, 0:40] = 1  # 160 voxels: 1.5 % of the right lung
    out = postprocess_labels(lab, (2.0, 1.0, 1.0), min_piece_ml=0.1)
    np.testing.assert_array_equal(out, _two_lungs())
    kept = postprocess_labels(lab, (2.0, 1.0, 1.0), min_piece_ml=0.1, min_piece_fraction=0.01)
    assert (kept[19, 36:40, 0:40] == 1).all()
    one = lab[10:11].copy()
    one[0, 37:40, 0:6] = 1  # an island on a single slice (lung bases) stays
    assert (postprocess_labels(one, (2.0, 1.0, 1.0), min_piece_ml=0.001)[0, 37:40, 0:6] == 1).all()


def _chest():
    """Two lungs in soft tissue (40 HU) inside outside air, and a trachea leaving at the top."""
    hu = np.full((24, 48, 64), -1000.0, np.float32)
    hu[:, 2:46, 2:62] = 40.0  # body
    lab = np.zeros(hu.shape, np.uint8)
    lab[2:20, 8:40, 6:28] = 1
    lab[2:20, 8:40, 36:58] = 2
    hu[lab > 0] = -850.0
    hu[10:24, 20:24, 30:34] = -1000.0  # trachea between the lungs, up to the top slice
    return lab, hu


def test_dark_pockets_at_the_lung_border_join_the_lung_but_not_trachea_or_outside_air():
    lab, hu = _chest()
    lab[8:12, 8:14, 6:12] = 0  # a bulla the network left out, at the pleura
    hu[8:12, 8:14, 6:12] = -990.0
    hu[8:12, 4:8, 6:12] = -990.0  # ... reaching into the chest wall
    out = lab.copy()
    assert add_dark_pockets(out, hu) == 4 * 10 * 6
    assert (out[8:12, 8:14, 6:12] == 1).all() and (out[8:12, 4:8, 6:12] == 1).all()
    assert (out[10:24, 20:24, 30:34] == 0).all()  # the trachea stays out
    assert (out[:, :2] == 0).all() and (out[:, :, :2] == 0).all()  # outside air stays out
    assert add_dark_pockets(lab.copy(), np.where(hu == -990.0, -800.0, hu)) == 0  # only very dark pockets are taken


def test_postprocess_with_hu_fills_a_border_bulla():
    lab, hu = _chest()
    lab[8:12, 8:14, 6:12] = 0
    hu[8:12, 8:14, 6:12] = -990.0
    assert (postprocess_labels(lab, (2.0, 1.0, 1.0), hu=hu)[8:12, 8:14, 6:12] == 1).all()
    assert (postprocess_labels(lab, (2.0, 1.0, 1.0))[8:12, 8:14, 6:12] == 0).any()


def test_lung_voxels_equal_isin_on_every_label_value():
    from lungseg.postprocess import lung_voxels

    labels = np.random.default_rng(0).integers(0, 256, (4, 16, 16)).astype(np.uint8)
    np.testing.assert_array_equal(lung_voxels(labels), np.isin(labels, (1, 2)))


def test_piece_in_the_air_outside_the_body_is_dropped_an_enclosed_one_kept():
    """A lung piece in the air in front of the body (as above the apex on LIDC-IDRI-0003) goes;
    a piece of the same size inside the chest wall (a lung cut by a mass) stays."""
    hu = np.full((20, 80, 80), -1000.0, np.float32)
    hu[:, 20:70, 10:70] = 40  # the body; rows 0-19 are the air in front of it
    hu[:, 25:65, 15:38] = -850  # right lung
    hu[:, 25:65, 42:65] = -850  # left lung, its main part ...
    hu[:, 48:52, 42:65] = 40  # ... cut by a soft-tissue band: rows 52-64 are an enclosed second piece
    labels = np.zeros(hu.shape, np.uint8)
    labels[:, 25:65, 15:38] = 1
    labels[:, 25:48, 42:65] = 2
    labels[:, 52:65, 42:65] = 2  # enclosed piece: 13 rows vs the main 23
    labels[5:15, 2:18, 45:75] = 2  # a piece in the outside air, as large as the enclosed one
    out = postprocess_labels(labels, (2.0, 1.0, 1.0), hu=hu)
    assert not out[5:15, 2:18, 45:75].any()
    assert (out[:, 52:65, 42:65] == 2).all() and (out[:, 25:48, 42:65] == 2).all()
    assert (out == 1).sum() == (labels == 1).sum()
