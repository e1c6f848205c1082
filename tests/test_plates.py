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
