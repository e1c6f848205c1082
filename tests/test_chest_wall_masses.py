"""A mass against the chest wall that the lung model left out of the lung (its bite in the lung
mask) is still a candidate in the lung; and a mass wider than the scorer's patch is scored by the
nodule network's own probability."""
import numpy as np
import torch

from lungseg.inference.candidates import Candidates, NoduleSegmenter
from lungseg.inference.network import ModelSegmenter
from lungseg.inference.scoring import _wider_than_patch
from lungseg.io import CTImage

META = {"preprocessing": {"dims": 2, "input_size": [128, 128], "intensity": {"mode": "window", "windows": ["lung"]}},
        "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}


class SoftTissueIsNodule(torch.nn.Module):
    """Marks soft tissue (0..100 HU) as nodule, not the bone-bright chest wall."""

    def forward(self, x):
        v = x[:, :1]
        score = torch.minimum(v - 0.85, 0.97 - v) * 200
        return torch.cat([-score, score], dim=1)


def _chest_with_a_mass_the_lungs_left_out():
    shape = (24, 128, 128)  # 2.5 mm slices, 1 mm pixels
    arr = np.full(shape, 200.0, np.float32)  # chest wall, bone-bright
    lungs = np.zeros(shape, np.uint8)
    lungs[2:22, 20:108, 20:60] = 1
    lungs[2:22, 20:108, 70:110] = 2
    arr[lungs > 0] = -850
    z, y, x = np.mgrid[:24, :128, :128]
    mass = (((z - 12) * 2.5) ** 2 + (y - 64) ** 2 + (x - 24) ** 2 <= 14 ** 2)  # 28 mm across, 11 mL
    arr[mass] = 35
    lungs[mass] = 0  # the lung model took the pleural-based mass for chest wall
    ct = CTImage.from_array(arr, spacing=(1.0, 1.0, 2.5))
    return ct, lungs, mass


def _finder(**kw):
    return NoduleSegmenter(ModelSegmenter(SoftTissueIsNodule(), META, precision="fp32"), lung_margin_mm=3.0, **kw)


def _mass_candidate(found, mass):
    on = np.bincount(found.ids, weights=mass[found.box][found.coords], minlength=found.count + 1)
    return int(on.argmax()), on


def test_a_mass_in_a_bite_of_the_lung_counts_as_inside_it():
    ct, lungs, mass = _chest_with_a_mass_the_lungs_left_out()
    plain = _finder().find_candidates(ct, lungs)
    k, on = _mass_candidate(plain, mass)
    assert plain.inside[k] < 0.5  # cut at 3 mm from the lung and left outside it: dropped
    assert not _finder()(ct, lungs)[mass].any()

    bites = _finder(bite_mm=20.0).find_candidates(ct, lungs)
    k, on = _mass_candidate(bites, mass)
    assert bites.inside[k] >= 0.8
    assert on[k] >= 0.6 * mass.sum()  # the part in the bite too, not only a 3 mm rim
    found = _finder(bite_mm=20.0)(ct, lungs)
    assert found[mass].mean() >= 0.6
    assert not found[:, :, 64:].any()  # nothing in the mediastinum or the other lung


def test_only_masses_get_the_bites():
    ct, lungs, mass = _chest_with_a_mass_the_lungs_left_out()
    found = _finder(bite_mm=20.0, mass_ml=50.0).find_candidates(ct, lungs)  # an 11 mL mass is not one now
    k, _ = _mass_candidate(found, mass)
    assert found.inside[k] < 0.5


def test_a_mass_wider_than_the_patch_outside_the_hila_is_marked_a_smaller_one_is_not():
    spacing = (2.5, 1.0, 1.0)
    z, y, x = np.indices((40, 80, 120))
    zz = z * 2.5
    big = (zz - 50) ** 2 + (y - 40) ** 2 + (x - 30) ** 2 <= 16 ** 2  # 32 mm across
    small = (zz - 50) ** 2 + (y - 40) ** 2 + (x - 90) ** 2 <= 13 ** 2  # 26 mm across
    ids = np.zeros(z.shape, np.int32)
    ids[big], ids[small] = 1, 2
    coords = np.nonzero(ids)
    box = tuple(slice(0, s) for s in ids.shape)
    outside_hila = Candidates(box, coords, ids[coords], np.full(3, 0.9), np.ones(3), outer=np.ones(3))
    assert _wider_than_patch(outside_hila, spacing).tolist() == [False, True, False]
    # at the hilum the scorer keeps its say, however big the candidate
    at_hilum = Candidates(box, coords, ids[coords], np.full(3, 0.9), np.ones(3), outer=np.array([0, 0.2, 1.0]))
    assert not _wider_than_patch(at_hilum, spacing).any()


def test_no_bite_on_the_side_of_the_mediastinum():
    # the same mass against the right lung's inner side, between the lungs: the hilum is a bite of
    # the lung too, but what fills it is the mediastinum's
    ct, lungs, _ = _chest_with_a_mass_the_lungs_left_out()
    arr = ct.array.copy()
    lungs[2:22, 20:108, 20:60] = 1
    arr[lungs == 1] = -850
    z, y, x = np.mgrid[:24, :128, :128]
    mass = (((z - 12) * 2.5) ** 2 + (y - 64) ** 2 + (x - 56) ** 2 <= 12 ** 2)
    arr[mass] = 35
    lungs[mass] = 0
    ct = CTImage.from_array(arr, spacing=(1.0, 1.0, 2.5))
    found = _finder(bite_mm=20.0).find_candidates(ct, lungs)
    k, _ = _mass_candidate(found, mass)
    assert found.inside[k] < 0.5


def test_a_listed_mass_grows_by_3_mm_into_the_soft_tissue_it_touches_and_not_into_lung():
    from lungseg.inference.candidates import _grown_masses

    arr = np.full((30, 80, 80), -850.0, np.float32)  # lung, 1 mm voxels
    z, y, x = np.mgrid[:30, :80, :80]
    r2 = (z - 15) ** 2 + (y - 40) ** 2 + (x - 40) ** 2
    arr[r2 <= 100] = 40  # a 20 mm mass
    ct = CTImage.from_array(arr, spacing=(1.0, 1.0, 1.0))
    listed = np.nonzero(r2 <= 64)  # drawn by the network at 16 mm only
    ids = np.ones(len(listed[0]), np.intp)
    for masses, covered in ((np.array([False, True]), 0.97), (np.array([False, False]), 0.0)):
        voxels, scores = _grown_masses(ct, listed, np.full(len(ids), 0.9), ids, masses)
        grown = np.zeros(arr.shape, bool)
        grown[voxels] = True
        assert (grown[r2 <= 100].mean() >= covered) if covered else grown.sum() == len(ids)
        assert not grown[arr < -300].any()  # never into the lung
        assert len(scores) == len(voxels[0]) and (scores == 0.9).all()


def test_a_mass_partly_left_out_takes_its_bite_even_when_it_passes_the_in_lung_gate():
    # on thick slices the network marks less of such a mass: its candidate can be just over half in
    # the lung mask, pass the gate, and still be a mass the lung model left partly out
    ct, lungs, mass = _chest_with_a_mass_the_lungs_left_out()
    z, y, x = np.mgrid[:24, :128, :128]
    lungs[mass & (x >= 27)] = 1  # the lung model kept its inner part
    plain = _finder().find_candidates(ct, lungs)
    k, _ = _mass_candidate(plain, mass)
    assert 0.5 <= plain.inside[k] < 0.75
    bites = _finder(bite_mm=20.0).find_candidates(ct, lungs)
    k, on = _mass_candidate(bites, mass)
    assert bites.bitten[k] and bites.inside[k] >= 0.9
    assert on[k] >= 0.9 * mass.sum()
