"""The main bronchus taken out of a lung label map, on a crafted chest at a real scan's spacing."""
import numpy as np

from lungseg.airways import central_airway_voxels, remove_central_airways

SPACING = (2.5, 0.8, 0.8)


def _chest(left_lung_from: int = 100):
    """Two lungs (-850 HU) in soft tissue, a trachea (-1000 HU) in the mediastinum down to z = 20,
    and the left main bronchus leaving it obliquely (down and out, 6 px per slice, 5 slices) into
    the left lung, with a soft-tissue wall; the lung network labelled that bronchus and wall as
    left lung. The left lung starts at x = left_lung_from (beyond 125 the bronchus never reaches it)."""
    hu = np.full((40, 120, 170), -1000.0, np.float32)
    hu[:, 5:115, 5:165] = 40.0
    lab = np.zeros(hu.shape, np.uint8)
    lab[2:38, 20:100, 10:70] = 1
    lab[2:38, 20:100, left_lung_from:160] = 2
    hu[lab > 0] = -850.0
    yy, xx = np.mgrid[:120, :170]
    for z in range(20, 40):  # the trachea, 8 px (6.4 mm) radius
        hu[z][(yy - 60) ** 2 + (xx - 85) ** 2 <= 64] = -1000.0
    for k, z in enumerate(range(19, 14, -1)):  # the bronchus, 5 px radius, wall 3 px
        cx = 85 + 6 * (k + 1)
        ring = (yy - 60) ** 2 + (xx - cx) ** 2 <= 64
        hu[z][ring] = 40.0
        hu[z][(yy - 60) ** 2 + (xx - cx) ** 2 <= 25] = -1000.0
        lab[z][ring & (xx >= max(92, left_lung_from))] = 2  # the network's mistake: wall and lumen as lung
    return lab, hu


def test_main_bronchus_lumen_and_wall_leave_the_lung_and_the_lung_stays():
    lab, hu = _chest()
    lumen = (hu < -900) & (lab == 2)
    out = lab.copy()
    removed = remove_central_airways(out, hu, SPACING)
    assert removed > 0
    assert (out[lumen] == 0).mean() > 0.9  # the lumen inside the lung label is out
    near_trachea = (lab == 2) & (hu == 40.0)  # the bronchial wall the network labelled
    assert (out[near_trachea] == 0).mean() > 0.8
    assert (out[:, 20:100, 130:160] == lab[:, 20:100, 130:160]).all()  # the lung away from it untouched
    assert (out[:, 20:100, 10:70] == lab[:, 20:100, 10:70]).all()  # the right lung had no bronchus in it
    assert removed * np.prod(SPACING) / 1000.0 < 3.0  # a bronchus' worth, not a lobe


def test_nothing_is_taken_without_an_airway_entering_the_lungs():
    lab, hu = _chest(left_lung_from=130)  # the bronchus ends in the mediastinum
    assert len(central_airway_voxels(lab, hu, SPACING)[0]) == 0
    lab2, hu2 = _chest()
    hu2[hu2 == -1000.0] = 40.0  # no air at all: no trachea
    hu2[:, :5] = -1000.0
    assert len(central_airway_voxels(lab2, hu2, SPACING)[0]) == 0


def test_emphysematous_lung_is_not_followed_from_the_bronchus():
    lab, hu = _chest()
    hu[(lab == 2) & (hu == -850.0)] = -960.0  # the whole left lung darker than a lumen
    out = lab.copy()
    remove_central_airways(out, hu, SPACING)
    assert (out == 2).sum() > 0.97 * (lab == 2).sum()


def test_coarse_grids_are_left_alone():
    lab, hu = _chest()
    assert len(central_airway_voxels(lab, hu, (2.5, 2.0, 2.0))[0]) == 0
