"""What a nodule detector must learn on the phantom: vessels that look like nodules in a slice
(thin, end-on, crowded at the hila) are negatives, and large tumours that replace lung are
label 3 and part of the lung mask."""
import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from lungseg.errors import LungsegError
from lungseg.synth import Tissue, generate_case
from lungseg.synth.anatomy import Anatomy
from lungseg.synth.compose import _prepare_tubes
from lungseg.synth.grid import Grid
from lungseg.synth.params import draw_params, streams
from lungseg.synth.trees import build_trees, sample_lung_points
from lungseg.synth.tumours import CHEST_WALL, MEDIASTINAL

GRID = (40, 128, 128)  # (z, y, x): ~3 mm pixels; a 30 mm tumour spans ten of them
ISOTROPIC_Z30 = 1 - np.cos(np.radians(30))  # share of random directions within 30 degrees of an axis


@pytest.fixture(scope="module")
def trees():
    """Seed 0's anatomy and vessel trees, and its clinical 512x512x160 grid (no rendering)."""
    p = draw_params(0, size=(512, 512, 160))
    gp = p["grid"]
    anat = Anatomy(p["anatomy"], tuple(gp["z_range"]))
    grid = Grid(tuple(gp["shape"]), tuple(gp["spacing"]), tuple(gp["origin"]))
    return anat, grid, build_trees(anat, streams(0)["trees"])


def _vessels(t: dict):
    """Start, end, radius and territory size of all artery and vein segments."""
    return (np.concatenate([t[k][f] for k in ("artery", "vein")]) for f in ("a", "b", "r", "n"))


def test_vessels_thin_to_a_millimetre_and_reach_the_periphery(trees):
    anat, grid, t = trees
    tubes = _prepare_tubes(grid, t, min(grid.spacing[:2]))
    for name in ("artery", "vein"):
        assert tubes[name].radii.min() <= 0.75, name  # drawn, not only grown
    a, b, r, n = _vessels(t)
    assert r[n == 1].max() <= 0.75  # every terminal branch is ~1 mm across
    # terminal branches end all through the lungs, the subpleural lung included
    pts = sample_lung_points(anat, np.random.default_rng(0), 3000, inset=0.0).astype(float)
    dist = cKDTree(b[n == 1]).query(pts)[0]
    subpleural = anat.lung_sdf(*pts.T) > -5
    assert np.percentile(dist, 95) < 8 and np.percentile(dist[subpleural], 95) < 9


def test_many_vessels_run_cranio_caudally(trees):
    """Seen end-on in axial slices, they are round like nodules: the negatives a detector needs."""
    _, _, t = trees
    a, b, r, _ = _vessels(t)
    d = b - a
    along_z = np.abs(d[:, 2]) / np.linalg.norm(d, axis=1) >= np.cos(np.radians(30))
    assert along_z.mean() >= max(0.3, 2 * ISOTROPIC_Z30), along_z.mean()
    assert along_z[r >= 1.0].mean() >= 0.2  # nodule-sized ones too (>= 2 mm across)


def test_large_vessels_crowd_each_hilum(trees):
    anat, _, t = trees
    a, b, r, _ = _vessels(t)
    mid = (a + b) / 2
    counts = []
    for hilum in (anat.bronchus_r, anat.bronchus_l):
        near = (r >= 2.5) & (r <= 6.0) & (np.linalg.norm(mid - hilum, axis=1) < 45)
        counts.append(int(np.count_nonzero(anat.lung_sdf(*mid[near].T) < 0)))  # visible: in the lung
    assert min(counts) >= 5 and sum(counts) >= 28, counts


def test_vessels_are_soft_tissue_like_nodules():
    """Without contrast, vessels and solid nodules share HU: only shape tells them apart."""
    case = generate_case(6, difficulty="easy", contrast=False, n_nodules=0)
    blood = case.params["hu"]["blood"]
    arr, tis = case.ct.array, case.tissue
    big = ndi.binary_erosion(np.isin(tis, (Tissue.ARTERY, Tissue.VEIN)), np.ones((1, 3, 3), bool))
    assert big.sum() > 20 and abs(np.median(arr[big]) - blood) < 40
    small = np.isin(tis, (Tissue.ARTERY, Tissue.VEIN)) & ~ndi.binary_dilation(big, iterations=2)
    assert np.median(arr[small]) < blood - 100  # partial volume at the thin ones


def _tumour_case(seed: int, where):
    return generate_case(seed, shape=GRID, difficulty="easy", tumour=where, n_nodules=2)


@pytest.fixture(scope="module", params=["central", "chest-wall"])
def tumour(request):
    """(case with a forced tumour, the same case without it, where)."""
    return _tumour_case(3, request.param), _tumour_case(3, None), request.param


def test_a_forced_tumour_is_listed_labelled_and_replaces_lung(tumour):
    case, plain, where = tumour
    masses = [n for n in case.nodules if n["kind"] == "mass"]
    assert len(masses) == 1 and masses[0]["location"] == where
    assert len(case.nodules) == 3 and not any(n["kind"] == "mass" for n in plain.nodules)
    m = case.tissue == Tissue.TUMOUR
    assert np.all(case.labels[m] == 3)
    volume_ml = m.sum() * case.ct.voxel_volume_ml
    eq_d = (6000 * volume_ml / np.pi) ** (1 / 3)
    assert eq_d >= (30 if where == "central" else 20), eq_d
    assert masses[0]["equivalent_diameter_mm"] == pytest.approx(eq_d)
    assert (plain.lung_labels()[m] > 0).mean() >= 0.6  # mostly where lung was, not in the mediastinum
    assert np.all(np.isin(case.lung_labels()[m], (1, 2)))  # and part of the lung mask
    anat = Anatomy(case.params["anatomy"], tuple(case.params["grid"]["z_range"]))
    assert anat.lung_sdf(*np.array(masses[0]["center_patient"])[:, None])[0] < 0
    side = 2 if masses[0]["side"] == "left" else 1
    assert np.all(case.lung_labels()[m] == side)


def test_a_tumour_abuts_the_mediastinum_or_the_chest_wall(tumour):
    case, _, where = tumour
    m = case.tissue == Tissue.TUMOUR
    around = case.tissue[ndi.binary_dilation(m) & ~m]
    touching = np.isin(around, MEDIASTINAL if where == "central" else CHEST_WALL).sum()
    assert touching >= 5, (where, np.unique(around, return_counts=True))
    if where == "chest-wall":
        assert not np.isin(around, MEDIASTINAL[1:]).any()  # away from the hilum and heart


def test_tumours_are_soft_tissue_and_necrosis_is_darker():
    case = _tumour_case(0, "central")  # seed 0's mass has a necrotic centre
    t = next(n for n in case.nodules if n["kind"] == "mass")
    assert t["necrosis"] > 0 and 20 <= t["hu"] <= 60 and t["necrosis_hu"] < t["hu"] - 10
    m = case.tissue == Tissue.TUMOUR
    core = ndi.binary_erosion(m, iterations=2)
    arr = case.ct.array
    assert core.sum() > 50 and -20 <= arr[core].mean() <= 60
    idx = np.argwhere(core)
    r = np.linalg.norm((idx - t["center_index_zyx"]) * np.array(case.ct.spacing_zyx), axis=1)
    inner = r < 0.5 * t["necrosis"] * t["diameter_mm"] / 2
    assert arr[tuple(idx[inner].T)].mean() < arr[tuple(idx[~inner].T)].mean() - 5


def test_tumour_rates_by_difficulty():
    def rate(difficulty, n=300):
        return np.mean([draw_params(s, difficulty=difficulty)["pathology"]["tumour"] is not None for s in range(n)])

    assert rate("easy") == 0
    assert 0.08 <= rate("mixed") <= 0.22
    assert rate("hard") > rate("mixed") + 0.08
    kinds = {draw_params(s, difficulty="hard")["pathology"]["tumour"] for s in range(60)}
    assert kinds == {None, "central", "chest-wall"}


def test_a_tumour_changes_no_other_draw():
    for seed in range(5):
        a, b = draw_params(seed, tumour="central"), draw_params(seed, tumour=None)
        assert a["pathology"].pop("tumour") == "central" and b["pathology"].pop("tumour") is None
        assert a == b


def test_bad_tumour_option_is_a_one_line_error():
    with pytest.raises(LungsegError, match="tumour"):
        generate_case(0, tumour="liver")


def test_vessel_montage_writes_a_png(tmp_path, tumour):
    from lungseg.synth.montage import vessel_montage

    case, plain, _ = tumour
    out = vessel_montage([case, plain], tmp_path / "v.png", ["tumour", "none"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
