"""A real nodule moved into a scan (lungseg.synth.insertion.real_nodule): resampled to the scan's
grid with its size kept, placed inside one lung in parenchyma away from given points, and pasted
without touching anything beyond its footprint."""
import numpy as np

from lungseg.synth.insertion.real_nodule import paste_nodule, place_nodule, resample_nodule


def _crop_with_sphere(radius_mm=4.0, spacing=(1.0, 0.6, 0.6)):
    """A crop stack (fine spacing) holding a 20 HU sphere in -850 HU lung."""
    shape = (16, 40, 40)
    z, y, x = np.indices(shape, dtype=float)
    r = np.sqrt(((z - 7.5) * spacing[0]) ** 2 + ((y - 19.5) * spacing[1]) ** 2 + ((x - 19.5) * spacing[2]) ** 2)
    mask = r <= radius_mm
    hu = np.where(mask, 20.0, -850.0).astype(np.float32)
    return hu, mask, spacing


def _scan():
    """A 2.5 mm scan: right lung (1) at low x, left (2) at high x, parenchyma -850 HU, a 'vessel'
    (40 HU) through the right lung."""
    shape = (40, 96, 96)
    hu = np.full(shape, 40.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[4:36, 10:86, 6:46], labels[4:36, 10:86, 50:90] = 1, 2
    hu[labels > 0] = -850.0
    hu[:, 40:44, 20:24] = 40.0  # the vessel: never painted over
    return hu, labels, (2.5, 0.8, 0.8)


def test_a_real_nodule_keeps_its_size_on_the_scans_grid():
    hu, mask, sp = _crop_with_sphere()
    nod = resample_nodule(hu, mask, sp, (2.5, 0.8, 0.8))
    volume = (nod.weight >= 0.5).sum() * 2.5 * 0.8 * 0.8
    assert abs(volume - 4 / 3 * np.pi * 4.0 ** 3) / (4 / 3 * np.pi * 4.0 ** 3) < 0.25  # 268 mm^3 within 25 %
    assert nod.hu.max() > -100   # its solid centre keeps its density (partial volume at the rim)


def test_placed_in_parenchyma_of_one_lung_away_from_given_points_and_pasted_in_its_footprint_only():
    scan, labels, sp = _scan()
    hu, mask, crop_sp = _crop_with_sphere()
    nod = resample_nodule(hu, mask, crop_sp, sp)
    avoid = [np.array([50.0, 40.0, 20.0])]  # mm (z, y, x): in the right lung
    rng = np.random.default_rng(0)
    for _ in range(5):
        before = scan.copy()
        corner = place_nodule(scan, labels, nod, sp, rng, avoid, min_distance_mm=15.0)
        assert corner is not None
        placed = paste_nodule(scan, nod, corner)
        centre = np.array([c.mean() for c in np.nonzero(placed)]) * sp
        assert np.linalg.norm(centre - avoid[0]) >= 15.0
        sides = np.unique(labels[placed])
        assert len(sides) == 1 and sides[0] in (1, 2)
        assert (before[placed] == -850.0).all()  # parenchyma only: never the vessel, never the wall
        assert scan[placed].mean() > -300
        foot = np.zeros(scan.shape, bool)
        foot[tuple(slice(c, c + s) for c, s in zip(corner, nod.weight.shape))] = nod.weight > 0
        np.testing.assert_array_equal(scan[~foot], before[~foot])
        scan = before  # the next draw starts from the clean scan


def test_a_nodule_thinner_than_half_a_slice_is_not_placed():
    hu, mask, sp = _crop_with_sphere(radius_mm=0.6, spacing=(0.5, 0.6, 0.6))  # ~1 mm across, 5 mm slices below
    nod = resample_nodule(hu, mask, sp, (5.0, 0.8, 0.8))
    scan, labels, _ = _scan()
    assert place_nodule(scan, labels, nod, (5.0, 0.8, 0.8), np.random.default_rng(0)) is None
