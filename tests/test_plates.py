"""Long thin dense findings (effusion, consolidation) are not listed as tumours; round ones as long are."""
import numpy as np

from lungseg.inference.candidates import Candidates
from lungseg.inference.plates import plate_like

SPACING = (2.0, 1.0, 1.0)  # z, y, x mm


def _candidates(*masks):
    ids = np.zeros(masks[0].shape, np.int32)
    for k, m in enumerate(masks, start=1):
        ids[m] = k
    coords = np.nonzero(ids)
    n = len(masks) + 1
    return Candidates(tuple(slice(0, s) for s in ids.shape), coords, ids[coords], np.full(n, 0.9), np.ones(n))


def test_a_long_thin_slab_is_a_plate_and_a_ball_as_long_is_not():
    z, y, x = np.indices((60, 120, 200))
    zz, yy, xx = z * SPACING[0], y * SPACING[1], x * SPACING[2]
    slab = (z >= 10) & (z < 50) & (y >= 10) & (y < 22) & (x >= 10) & (x < 90)  # 80 x 12 x 80 mm: a layer of fluid
    ball = (zz - 60) ** 2 + (yy - 70) ** 2 + (xx - 150) ** 2 <= 35 ** 2  # 70 mm across
    short = (z >= 10) & (z < 20) & (y >= 90) & (y < 100) & (x >= 10) & (x < 50)  # 40 mm long, 10 mm thin: too short
    cands = _candidates(slab, ball, short)
    keep = np.array([False, True, True, True])
    assert plate_like(cands, SPACING, keep).tolist() == [False, True, False, False]
    # only kept candidates are looked at
    assert not plate_like(cands, SPACING, np.array([False, False, True, True])).any()


def test_a_thick_layer_is_a_plate_and_a_tumour_twice_as_long_as_wide_is_not():
    z, y, x = np.indices((70, 130, 240))
    zz, yy, xx = z * SPACING[0], y * SPACING[1], x * SPACING[2]
    layer = (z >= 5) & (z < 25) & (y >= 10) & (y < 120) & (x >= 5) & (x < 115)  # 40 x 110 x 110 mm: thicker than 30
    tumour = ((zz - 80) / 25) ** 2 + ((yy - 65) / 25) ** 2 + ((xx - 175) / 50) ** 2 <= 1  # 100 x 50 x 50 mm
    cands = _candidates(layer, tumour)
    assert plate_like(cands, SPACING, np.array([False, True, True])).tolist() == [False, True, False]


def test_a_thin_ribbon_trailing_from_a_tumour_does_not_make_it_a_plate():
    # a central tumour's candidate may run on along the mediastinum as a thin ribbon: without it
    # cut off, the ribbon would make the tumour look four times as long as it is thick
    z, y, x = np.indices((50, 110, 260))
    zz, yy, xx = z * SPACING[0], y * SPACING[1], x * SPACING[2]
    ball = (zz - 50) ** 2 + (yy - 55) ** 2 + (xx - 45) ** 2 <= 34 ** 2  # 68 mm across
    ribbon = (zz >= 30) & (zz < 70) & (yy >= 52) & (yy < 58) & (xx >= 70) & (xx < 255)  # 6 mm thin, 185 mm long
    cands = _candidates(ball | ribbon)
    assert plate_like(cands, SPACING, np.array([False, True])).tolist() == [False, False]
