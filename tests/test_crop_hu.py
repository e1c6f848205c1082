"""HU back from the LIDC crop PNGs, each slice scaled from its own HU range to 0..255."""
import numpy as np
import pytest
from conftest import shared_path

from lungseg.data.crop_hu import TYPICAL_SCALE, crop_stack_hu, slice_scale


def _min_max(hu: np.ndarray) -> np.ndarray:
    return np.round((hu - hu.min()) / (hu.max() - hu.min()) * 255)


def _chest_crop(bone_hu: float, seed: int = 0) -> np.ndarray:
    """A 128x128 crop: lung (-860 HU) with a 12 px nodule (+40), the chest wall on the right
    third (muscle +40 and fat -100 in layers, median about -50) and a rib (bone_hu)."""
    rng = np.random.default_rng(seed)
    hu = -860 + rng.normal(0, 25, (128, 128))
    yy, xx = np.mgrid[:128, :128]
    hu[(yy - 64) ** 2 + (xx - 40) ** 2 <= 36] = 40
    wall = xx >= 85
    hu[wall] = np.where((xx[wall] // 6) % 2 == 0, 40.0, -100.0) + rng.normal(0, 10, wall.sum())
    hu[(yy - 30) ** 2 + (xx - 110) ** 2 <= 30] = bone_hu
    hu[0, 0] = -1000  # the darkest pixel: air
    return hu


@pytest.mark.parametrize("bone_hu", [600.0, 1000.0, 1800.0])
def test_each_slice_gets_its_own_scale_back(bone_hu):
    hu = _chest_crop(bone_hu)
    back = crop_stack_hu(_min_max(hu)[None])[0]
    nodule = (np.mgrid[:128, :128][0] - 64) ** 2 + (np.mgrid[:128, :128][1] - 40) ** 2 <= 36
    assert abs(float(back[nodule].mean()) - 40.0) < 120  # a fixed window is off by 300-600 HU here
    old = -1000 + _min_max(hu) / 255 * 1400
    assert abs(float(old[nodule].mean()) - 40.0) > 200 or bone_hu < 700


def test_a_slice_without_tissue_takes_its_stacks_scale():
    rng = np.random.default_rng(1)
    lung_only = _min_max(-860 + rng.normal(0, 25, (128, 128)))
    assert slice_scale(np.zeros((128, 128))) is None
    with_wall = _min_max(_chest_crop(1000.0))
    stack = np.stack([with_wall, lung_only])
    scale = slice_scale(with_wall)
    assert scale is not None and scale != TYPICAL_SCALE
    hu = crop_stack_hu(stack)
    assert np.allclose(hu[1], -1000 + lung_only * scale, atol=1e-3)


def test_lidc_idri_0003_crops_match_the_real_scan():
    """The crop stack of LIDC-IDRI-0003's nodule 1 against the series it was cut from (slices
    70-79, rows 285-412, columns 301-428): the estimate is within ~60 HU per slice, the old
    [-1000, 400] window ~300 HU off on the nodule."""
    from lungseg.data.shared_sets import lidc_crops
    from lungseg.io import read_ct

    shared_path("nodules/lidc_crops_128")
    real = read_ct(shared_path("whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip")).array[70:80, 285:413, 301:429]
    crops = {how: next(c for c in lidc_crops(max_patients=3, as_hu=how, stack=True)
                       if c.case_id == "LIDC-IDRI-0003/nodule-1").load() for how in ("estimate", (-1000, 400))}
    estimate, label = crops["estimate"]
    window = crops[(-1000, 400)][0]
    assert estimate.shape == real.shape == (10, 128, 128)
    assert np.abs(estimate - real).mean(axis=(1, 2)).max() < 80
    nodule = label > 0
    assert abs(float(estimate[nodule].mean() - real[nodule].mean())) < 80
    assert float(real[nodule].mean() - window[nodule].mean()) > 200


def test_real_nodules_for_phantoms_take_either_hu():
    from lungseg.data.synthetic import real_nodule_pool
    from lungseg.errors import LungsegError

    with pytest.raises(LungsegError, match="crop HU must be one of window, estimate"):
        real_nodule_pool("train", "hu")


def test_lidc_crops_refuse_an_unknown_hu_before_reading():
    from lungseg.data.shared_sets import lidc_crops
    from lungseg.errors import LungsegError

    with pytest.raises(LungsegError, match="as_hu must be 'estimate' or \\[lo, hi\\], got 'hu'"):
        lidc_crops(path="/nonexistent", as_hu="hu")  # refused before the folder is even looked for
