"""Report numbers against brute-force definitions on small crafted label maps."""
import numpy as np
from scipy import ndimage as ndi

from lungseg.io import CTImage
from lungseg.volumetry import _max_axial_extent, _nearest_lung, lung_statistics


def _two_lungs_with_nodules():
    labels = np.zeros((12, 40, 100), np.uint8)
    labels[1:11, 5:35, 4:26] = 1
    labels[1:11, 5:35, 34:56] = 2
    labels[4:7, 15:19, 10:14] = 3  # inside the right lung
    labels[5:8, 24:28, 35:39] = 3  # against the left lung's edge
    labels[11, 38:40, 96:98] = 3  # a stray blob 40 voxels from the lungs: settled by the KD-tree
    return labels


def test_nearest_lung_matches_a_distance_transform_of_the_whole_grid():
    labels = _two_lungs_with_nodules()
    idx = ndi.distance_transform_edt(~np.isin(labels, (1, 2)), return_distances=False, return_indices=True)
    expected = np.where(labels == 3, labels[tuple(idx)], 0)
    np.testing.assert_array_equal(_nearest_lung(labels), expected)


def test_lung_statistics_count_nodules_toward_the_nearest_lung():
    labels = _two_lungs_with_nodules()
    hu = np.random.default_rng(0).normal(-850, 80, labels.shape).astype(np.float32)
    ct = CTImage.from_array(hu, spacing=(0.7, 0.7, 1.5))
    nearest = _nearest_lung(labels)
    stats = lung_statistics(ct, labels)
    for value, name in [(1, "right"), (2, "left")]:
        mask = (labels == value) | ((labels == 3) & (nearest == value))
        assert stats[name]["voxels"] == mask.sum()
        assert stats[name]["mean_hu"] == round(float(hu[mask].astype(np.float64).mean()), 1)
        assert stats[name]["emphysema_index_pct"] == round(100.0 * float((hu[mask] < -950).mean()), 2)
    assert stats["total"]["voxels"] == stats["right"]["voxels"] + stats["left"]["voxels"]


def test_max_axial_extent_is_the_exact_farthest_pair():
    rng = np.random.default_rng(2)
    spacing = np.array([2.0, 0.7, 0.9])
    comp = ndi.gaussian_filter(rng.random((4, 30, 30)), 2.0) > 0.5
    comp[3] = False
    comp[3, 5, 7] = True  # a single pixel counts as one pixel wide
    best = 0.0
    for plane in comp:
        pts = np.argwhere(plane) * spacing[1:]
        if len(pts) == 1:
            best = max(best, spacing[1:].min())
        elif len(pts):
            far = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max()
            best = max(best, far + spacing[1:].mean())
    assert _max_axial_extent(comp, spacing) == best
