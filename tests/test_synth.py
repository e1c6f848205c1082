"""The synthetic phantom: determinism, geometry, labels and realism checks."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from lungseg.errors import LungsegError
from lungseg.synth import SynthCase, Tissue, generate_case
from lungseg.synth.anatomy import Anatomy
from lungseg.synth.tissue import EXPECTED_HU

SMALL = (40, 96, 96)  # (z, y, x): ~4 x 4 x 7 mm voxels, a few tenths of a second per case


@pytest.fixture(scope="module")
def clean() -> SynthCase:
    """A clean, non-contrast case on the default 128x128x64 grid."""
    return generate_case(2, difficulty="easy", contrast=False, n_nodules=3)


@pytest.fixture(scope="module")
def hard() -> SynthCase:
    return generate_case(4, shape=SMALL, difficulty="hard", effusion=True, consolidation=True, emphysema=True)


def _patient_xyz(case: SynthCase, mask: np.ndarray) -> np.ndarray:
    gp = case.params["grid"]
    zyx = np.argwhere(mask).astype(float)
    return np.asarray(gp["origin"]) + zyx[:, ::-1] * np.asarray(gp["spacing"])


def test_same_seed_same_case_and_other_seed_differs():
    a, b = generate_case(7, shape=SMALL), generate_case(7, shape=SMALL)
    np.testing.assert_array_equal(a.ct.array, b.ct.array)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.params == b.params
    c = generate_case(8, shape=SMALL)
    assert not np.array_equal(a.labels, c.labels)


def test_params_and_nodules_are_plain_json(clean):
    import json

    back = json.loads(json.dumps({"params": clean.params, "nodules": clean.nodules}))
    assert back["params"]["seed"] == 2 and back["params"]["grid"]["shape"] == [64, 128, 128]
    assert len(back["nodules"]) == 3 and {"center_mm", "diameter_mm", "kind"} <= set(back["nodules"][0])


def test_pathology_switches_leave_the_lungs_unchanged():
    """Effusion and consolidation are lung (R231 convention) and do not move the anatomy."""
    kw = dict(shape=SMALL, touching_lungs=False, n_nodules=0, emphysema=False)
    plain = generate_case(11, effusion=False, consolidation=False, **kw)
    sick = generate_case(11, effusion=True, consolidation=True, **kw)
    np.testing.assert_array_equal(plain.labels, sick.labels)
    assert np.isin(Tissue.EFFUSION, sick.tissue) and np.isin(Tissue.CONSOLIDATION, sick.tissue)
    assert not np.array_equal(plain.ct.array, sick.ct.array)


def test_ct_is_hu_on_the_requested_grid():
    case = generate_case(1, size=(80, 72, 30), spacing=(4.5, 4.5, 9.0))
    assert case.ct.shape == (30, 72, 80) and case.labels.shape == case.ct.shape == case.tissue.shape
    assert case.ct.spacing == (4.5, 4.5, 9.0) and case.ct.is_hu
    assert case.labels.dtype == np.uint8 and case.tissue.dtype == np.uint8
    assert np.array_equal(case.ct.array, np.rint(case.ct.array))  # integer HU like a scanner's


def test_right_lung_has_low_x_index_and_patient_right_coordinates(clean):
    ct, lab = clean.ct, clean.labels
    right, left = np.argwhere(lab == 1), np.argwhere(lab == 2)
    assert right[:, 2].mean() < ct.shape[2] / 2 < left[:, 2].mean()
    assert ct.left_coordinate(right).mean() < ct.left_coordinate(left).mean() - 60


def core(mask: np.ndarray) -> np.ndarray:
    """Voxels whose in-plane neighbours share their tissue: HU free of partial-volume mixing."""
    return ndi.binary_erosion(mask, np.ones((1, 3, 3), bool))


def test_hu_statistics_per_tissue_are_in_expected_ranges(clean):
    arr, tis = clean.ct.array, clean.tissue
    inside_fov = arr > -1500  # exclude the padding outside the reconstruction circle
    for tissue, (lo, hi) in EXPECTED_HU.items():
        m = core((tis == tissue) & inside_fov)
        assert m.sum() > 20, f"{tissue.name} missing"
        mean = float(arr[m].mean())
        assert lo <= mean <= hi, f"{tissue.name}: mean {mean:.0f} HU outside [{lo}, {hi}]"
    lung = arr[tis == Tissue.LUNG]
    assert -900 <= np.median(lung) <= -750 and lung.std() > 20  # textured, not flat


def test_lung_volumes_are_adult_and_left_smaller_on_average():
    right, left = [], []
    for seed in range(8):
        case = generate_case(seed, shape=(32, 64, 64), difficulty="easy")
        r, lv = case.lung_volume_ml(1), case.lung_volume_ml(2)
        assert 2000 <= r + lv <= 8000, f"seed {seed}: {r + lv:.0f} mL"
        right.append(r)
        left.append(lv)
    assert np.mean(left) < np.mean(right)


def test_nodules_lie_inside_the_lungs_and_are_listed(clean):
    assert len(clean.nodules) == 3
    anat = Anatomy(clean.params["anatomy"], tuple(clean.params["grid"]["z_range"]))
    for nod in clean.nodules:
        assert 3 <= nod["diameter_mm"] <= 30 and nod["kind"] in ("solid", "part-solid", "ground-glass")
        assert anat.lung_sdf(*np.array(nod["center_patient"])[:, None])[0] < 0
    X, Y, Z = _patient_xyz(clean, clean.labels == 3).T
    assert X.size > 0
    assert np.all(anat.lung_sdf(X, Y, Z) < 0)
    # the listed world centre is where the voxels are
    big = max(clean.nodules, key=lambda n: n["diameter_mm"])
    idx = np.asarray(big["center_index_zyx"])
    assert clean.ct.physical_points(idx[None])[0] == pytest.approx(big["center_mm"], abs=1e-3)
    near = np.argwhere(clean.labels == 3) - idx
    assert (np.abs(near) * np.array(clean.ct.spacing_zyx)).sum(1).min() < big["diameter_mm"]


def test_trachea_is_not_lung_but_dense_pathology_is(hard):
    lab, tis = hard.labels, hard.tissue
    assert (tis == Tissue.TRACHEA).sum() > 10 and np.all(lab[tis == Tissue.TRACHEA] == 0)
    for t in (Tissue.EFFUSION, Tissue.CONSOLIDATION):
        m = tis == t
        assert m.sum() > 50 and np.all(lab[m] > 0), t.name
        assert hard.ct.array[m].mean() > -150, f"{t.name} should be dense"
    emph = hard.ct.array[tis == Tissue.EMPHYSEMA]
    assert emph.size > 50 and emph.mean() < hard.ct.array[tis == Tissue.LUNG].mean() - 50


def test_padding_and_noise_follow_the_request():
    pad = generate_case(3, shape=SMALL, padding=-3024, noise=30.0)
    arr = pad.ct.array
    assert np.all(arr[:, 0, 0] == -3024) and not np.any(pad.labels[:, 0, 0])
    air = arr[core((pad.tissue == Tissue.OUTSIDE) & (arr > -1500))]
    assert 20 < air.std() < 40 and abs(air.mean() + 1000) < 5
    none = generate_case(3, shape=SMALL, padding=None)
    assert none.ct.array.min() > -1300


def test_bad_options_are_one_line_errors():
    with pytest.raises(LungsegError, match="unknown phantom option"):
        generate_case(0, colour="red")
    with pytest.raises(LungsegError, match="difficulty"):
        generate_case(0, difficulty="extreme")
    with pytest.raises(LungsegError, match="shape"):
        generate_case(0, shape=(10, 8, 8))


def test_random_clinical_grid_is_drawn_in_range():
    from lungseg.synth.params import draw_params

    for seed in range(20):
        g = draw_params(seed, shape="random")["grid"]
        nz, ny, nx = g["shape"]
        assert nx == ny and nx in (256, 384, 512) and 8 <= nz <= 600
        if nx == 512:
            assert 0.5 <= g["spacing"][0] <= 0.98
        assert 0.6 <= g["spacing"][2] <= 5.0
