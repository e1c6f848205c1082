"""Real nodules moved into phantoms for nodule training crops (synthetic_nodule_crops(real_nodules=...)):
they land in parenchyma as label 3, keep their size on the phantom's grid, and the crops cut
around them show the lung going on in the neighbour slices."""
import numpy as np

from lungseg.data import synthetic
from lungseg.data.synthetic import synthetic_nodule_crops, with_real_nodules


def _phantom(shape=(24, 96, 96)):
    ct = np.full(shape, 40.0, np.float32)  # soft tissue
    labels = np.zeros(shape, np.uint8)
    ct[2:-2, 8:-8, 8:46], labels[2:-2, 8:-8, 8:46] = -850.0, 1  # right lung (image left)
    ct[2:-2, 8:-8, 50:-8], labels[2:-2, 8:-8, 50:-8] = -850.0, 2
    return ct, labels


def _sphere_pool(radius_mm=4.0, spacing=(1.0, 0.7, 0.7)):
    z, y, x = np.mgrid[:16, :24, :24]
    mask = ((z - 8) * spacing[0]) ** 2 + ((y - 12) * spacing[1]) ** 2 + ((x - 12) * spacing[2]) ** 2 <= radius_mm ** 2
    hu = np.where(mask, 30.0, -850.0).astype(np.float32)
    return ((hu, mask, spacing),)


def test_real_nodules_land_in_parenchyma_as_label_3_with_their_size():
    ct, labels = _phantom()
    spacing = (2.0, 0.8, 0.8)
    pool = _sphere_pool()
    out_ct, out_labels = with_real_nodules(ct, labels, spacing, 1, seed=3, pool=pool)
    nodule = out_labels == 3
    assert nodule.any() and not (labels == 3).any()  # inputs untouched
    assert (labels[nodule] > 0).all()  # inside the lungs
    volume = nodule.sum() * np.prod(spacing)
    assert abs(volume - 4 / 3 * np.pi * 4.0 ** 3) / (4 / 3 * np.pi * 4.0 ** 3) < 0.35
    assert out_ct[nodule].mean() > -200  # the nodule's own HU, blended at the edge only
    changed = out_ct != ct
    assert changed.any() and (np.abs(np.argwhere(changed) - np.argwhere(nodule).mean(axis=0)) < [6, 12, 12]).all()
    again = with_real_nodules(ct, labels, spacing, 1, seed=3, pool=pool)
    assert np.array_equal(again[1], out_labels)  # the same seed, the same place


def test_crops_show_real_nodules_with_lung_in_the_neighbour_slices(monkeypatch):
    def fake_generator(seed, **_):
        ct, labels = _phantom()

        class Image:
            array, spacing_zyx = ct, (2.0, 0.8, 0.8)

        class Case:
            pass

        case = Case()
        case.ct, case.labels = Image(), labels
        return case

    monkeypatch.setattr(synthetic, "real_nodule_pool", lambda split, hu="window": _sphere_pool(radius_mm=2.5))
    cases = synthetic_nodule_crops(n_cases=1, seed=5, crop=32, positives_per_case=4, negatives_per_case=0, context=2,
                                   generator=fake_generator, real_nodules=1, per_nodule=True)
    image, mask = cases[0].load()
    assert mask[2].any()  # centre slice of a positive crop holds the real nodule
    # a 5 mm nodule on 2 mm slices: the outer context slices show no nodule, only lung
    assert not mask[0].any() and not mask[4].any()
    assert (image[0][mask[2].astype(bool)] < -700).all()
