"""Lesion insertion into real volumes (lungseg.synth.insertion), on a small crafted chest: a soft
tissue body ellipse, two air lungs at -850 HU, a spine and ribs (700 HU), a trachea that splits
into two main bronchi, spacing (2.5, 1, 1) mm, canonical LPS (y to posterior, x to the left)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from lungseg.synth import insertion as ins

SPACING = (2.5, 1.0, 1.0)
SHAPE = (48, 160, 200)
CARINA_Z = 32
NOISE_SD = 15.0


def _chest():
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    zm, ym, xm = z * SPACING[0], y * SPACING[1], x * SPACING[2]
    body = ((ym - 82) / 72.0) ** 2 + ((xm - 100) / 96.0) ** 2 <= 1.0
    body = np.broadcast_to(body, SHAPE)
    hu = np.where(body, 40.0, -1000.0)
    # anterior mediastinal fat
    hu = np.where(body & (((ym - 40) / 14.0) ** 2 + ((xm - 100) / 16.0) ** 2 <= 1), -100.0, hu)
    labels = np.zeros(SHAPE, np.uint8)
    for value, cx in ((1, 55.0), (2, 145.0)):  # 1 = patient's right = low x (LPS)
        lung = ((zm - 60) / 55.0) ** 2 + ((ym - 82) / 55.0) ** 2 + ((xm - cx) / 38.0) ** 2 <= 1.0
        labels[lung] = value
    hu = np.where(labels > 0, -850.0, hu)
    # ribs: a bony band just inside the body wall, every third slab; the spine behind the mediastinum
    wall = (((ym - 82) / 66.0) ** 2 + ((xm - 100) / 90.0) ** 2 >= 1.0) & body
    ribs = wall & ~(((ym - 82) / 63.0) ** 2 + ((xm - 100) / 87.0) ** 2 >= 1.28) & ((z // 2) % 3 == 0) & (labels == 0)
    spine = np.broadcast_to(((ym - 135) / 12.0) ** 2 + ((xm - 100) / 12.0) ** 2 <= 1, SHAPE)
    hu = np.where(ribs | spine, 700.0, hu)
    # trachea down to the carina, then two main bronchi to the lungs' medial borders
    trachea = (((ym - 75) ** 2 + (xm - 100) ** 2) <= 36) & (z >= CARINA_Z)
    airway = np.broadcast_to(trachea, SHAPE).copy()
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    for sign in (-1, 1):
        for k in range(8):
            airway[CARINA_Z - 1 - k] |= (yy - 75) ** 2 + (xx - (100 + sign * (4 + 4 * k))) ** 2 <= 12
    airway &= labels == 0
    hu = np.where(airway, -1000.0, hu)
    hu = hu + np.random.default_rng(0).normal(0, NOISE_SD, SHAPE) * (hu > -950)
    return hu.astype(np.float32), labels, body


@pytest.fixture(scope="module")
def chest():
    return _chest()


def _run(kind, chest, seed, **kw):
    hu, labels, _ = chest
    return ins.INSERTERS[kind](hu, labels, SPACING, np.random.default_rng(seed), **kw)


def test_crafted_chest_is_sane(chest):
    hu, labels, body = chest
    assert (labels == 1).sum() > 1000 and (labels == 2).sum() > 1000
    n = ins.estimate_noise(hu, labels)
    assert 10 < n.sigma < 20 and max(n.smooth_zyx) < 0.8  # white noise of sd 15
    car = ins.find_carina(hu, labels, SPACING)
    assert car is not None and abs(car["z"] - CARINA_Z) <= 2
    assert car["bronchi"][1][1] < car["bronchi"][2][1]  # right main bronchus at lower x


@pytest.mark.parametrize("kind", ins.KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lesion_stays_in_lung_and_soft_tissue(kind, seed, chest):
    hu, labels, body = chest
    r = _run(kind, chest, seed)
    assert r.kind == kind and r.lesion.any()
    assert r.hu.shape == hu.shape and r.labels.shape == labels.shape and r.lesion.dtype == bool
    lung = labels > 0
    bone = hu > 300
    # never bone, never outside the body, never the airway / outside air
    assert not (r.lesion & bone).any()
    assert np.array_equal(r.hu[bone], hu[bone])
    changed = r.hu != hu
    assert not (changed & ~body).any()
    assert not (changed & (hu < -900) & ~lung).any()
    # only the lesion and its one-voxel partial-volume rim change
    assert not (changed & ~ndi.binary_dilation(r.lesion, np.ones((3, 3, 3), bool))).any()
    # inside the lung, or a band of at most 3 mm of the soft tissue next to it (tumours only)
    outside = r.lesion & ~lung
    if kind in ins.TUMOUR_KINDS:
        dist = ndi.distance_transform_edt(~lung, sampling=SPACING)
        assert (dist[outside] <= 3.0 + 1e-6).all()
        assert (hu[outside] >= ins.SOFT_MIN_HU).all()
    else:
        assert not outside.any()
    # labels: the lesion is lung (R231), of one side; nothing else changes
    side = np.unique(r.labels[r.lesion])
    assert len(side) == 1 and side[0] in (1, 2)
    assert (labels[r.lesion & lung] == side[0]).all()
    assert np.array_equal(r.labels[~r.lesion], labels[~r.lesion])
    if kind not in ins.TUMOUR_KINDS:
        assert np.array_equal(r.labels, labels)
    t = ins.tumour_labels(r)
    assert ((t[r.lesion] == 3).all()) == (kind in ins.TUMOUR_KINDS)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_volumes_and_sizes(seed, chest):
    hu, labels, _ = chest
    vox_ml = np.prod(SPACING) / 1000
    lung_ml = {v: (labels == v).sum() * vox_ml for v in (1, 2)}
    r = _run("pleural_effusion", chest, seed)
    side = int(r.labels[r.lesion][0])
    ml = r.lesion.sum() * vox_ml
    assert min(100, ins.EFFUSION_MAX_LUNG_SHARE * lung_ml[side]) - 1 <= ml <= 800
    assert ml <= ins.EFFUSION_MAX_LUNG_SHARE * lung_ml[side] + 1
    r = _run("consolidation", chest, seed)
    ml = r.lesion.sum() * vox_ml
    assert 50 - 1 <= ml <= 500 + 1
    lab, n = ndi.label(r.lesion)
    assert n == 1  # contiguous
    for kind, (lo, hi) in (("central_tumour", ins.CENTRAL_MM), ("chest_wall_tumour", ins.CHEST_WALL_MM)):
        r = _run(kind, chest, seed)
        pts = np.argwhere(r.lesion) * SPACING
        extent = (pts.max(axis=0) - pts.min(axis=0)).max() + 1
        assert 0.4 * lo <= extent <= 1.6 * hi, (kind, extent)


def test_requested_volume_and_diameter(chest):
    vox_ml = np.prod(SPACING) / 1000
    r = _run("pleural_effusion", chest, 5, volume_ml=150, side="left")
    assert abs(r.lesion.sum() * vox_ml - 150) < 1 and (r.labels[r.lesion] == 2).all()
    r = _run("consolidation", chest, 5, volume_ml=120, side="right")
    assert abs(r.lesion.sum() * vox_ml - 120) < 2 and (r.labels[r.lesion] == 1).all()
    r = _run("central_tumour", chest, 5, diameter_mm=40)
    pts = np.argwhere(r.lesion) * SPACING
    assert 15 <= (pts.max(axis=0) - pts.min(axis=0)).max() <= 65


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_effusion_is_posterior_and_basal(seed, chest):
    hu, labels, _ = chest
    r = _run("pleural_effusion", chest, seed)
    side = int(r.labels[r.lesion][0])
    lung = np.argwhere(labels == side)
    fluid = np.argwhere(r.lesion)
    assert fluid[:, 1].mean() > lung[:, 1].mean() + 5  # posterior: +y in LPS
    assert fluid[:, 0].mean() < lung[:, 0].mean()  # lower half
    for z in np.unique(fluid[:, 0]):  # every slice: the fluid lies behind the lung left there
        rest = np.nonzero((labels[z] == side) & ~r.lesion[z])[0]
        if rest.size:
            assert np.nonzero(r.lesion[z])[0].mean() > rest.mean() + 5


def test_tumour_positions(chest):
    hu, labels, _ = chest
    for seed in range(3):
        r = _run("central_tumour", chest, seed)
        side = int(r.labels[r.lesion][0])
        c = np.argwhere(r.lesion).mean(axis=0)
        assert abs(c[0] - CARINA_Z) * SPACING[0] <= 45  # about the carina's level
        xs = np.nonzero(labels == side)[2]
        medial = xs.max() if side == 1 else xs.min()
        assert abs(c[2] - medial) < abs(c[2] - (xs.min() if side == 1 else xs.max()))  # medial half
        r = _run("chest_wall_tumour", chest, seed)
        side = int(r.labels[r.lesion][0])
        c = np.argwhere(r.lesion).mean(axis=0)
        xs = np.nonzero(labels[int(round(c[0]))] == side)[1]
        lateral = xs.min() if side == 1 else xs.max()
        medial = xs.max() if side == 1 else xs.min()
        assert abs(c[2] - lateral) <= abs(c[2] - medial) + 10  # not at the mediastinum
        edge = (labels == side) & ~ndi.binary_erosion(labels == side)
        assert (edge & r.lesion).sum() >= 5  # touches the pleura


@pytest.mark.parametrize("kind", ins.KINDS)
def test_lesion_hu_and_noise(kind, chest):
    hu, labels, _ = chest
    r = _run(kind, chest, 7)
    core = ndi.binary_erosion(r.lesion, np.ones((3, 3, 3), bool))  # away from the partial-volume edge
    if kind == "consolidation":
        core &= r.hu > -500  # the solid part, not the air bronchograms
    vals = r.hu[core]
    assert vals.size > 20
    lo, hi = {"pleural_effusion": ins.EFFUSION_HU, "consolidation": ins.CONSOLIDATION_HU}.get(
        kind, (ins.NECROSIS_HU[0], ins.TUMOUR_HU[1]))
    assert lo - 5 <= np.median(vals) <= hi + 5
    robust_sd = 1.4826 * np.median(np.abs(vals - np.median(vals)))
    assert 8 < robust_sd < 30  # the volume's noise (sd 15), not a flat fill


def test_same_seed_same_result(chest):
    hu, labels, _ = chest
    for kind in ins.KINDS:
        a, b = _run(kind, chest, 11), _run(kind, chest, 11)
        assert np.array_equal(a.hu, b.hu) and np.array_equal(a.lesion, b.lesion) and np.array_equal(a.labels, b.labels)
    a = ins.insert_random(hu, labels, SPACING, np.random.default_rng(3))
    b = ins.insert_random(hu, labels, SPACING, np.random.default_rng(3))
    c = ins.insert_random(hu, labels, SPACING, np.random.default_rng(4), kinds=("consolidation",))
    assert a.kind == b.kind and np.array_equal(a.hu, b.hu)
    assert c.kind == "consolidation"
    assert not np.array_equal(_run("consolidation", chest, 1).lesion, _run("consolidation", chest, 2).lesion)
    with pytest.raises(ValueError):
        ins.insert_random(hu, labels, SPACING, np.random.default_rng(0), kinds=("fracture",))


def test_inputs_untouched(chest):
    hu, labels, _ = chest
    h, l = hu.copy(), labels.copy()
    for kind in ins.KINDS:
        _run(kind, chest, 0)
    assert np.array_equal(h, hu) and np.array_equal(l, labels)


def test_inserted_real_source():
    from lungseg.data.shared_sets import shared_data_root
    from lungseg.data.sources import load_source

    if not (shared_data_root() / "lungs" / "cip_copdgene" / "ct-64.nrrd").is_file():
        pytest.skip("shared CIP COPDGene volume not available")
    cases = load_source({"type": "inserted_real", "base": "cip_copdgene", "n_per_volume": 4, "seed": 1})
    assert [c.meta["kind"] for c in cases] == list(ins.KINDS)
    assert len({c.case_id for c in cases}) == 4 and {c.patient_id for c in cases} == {"cip-10002K"}
    image, labels = cases[2].load()  # a central tumour, labelled lung
    again = load_source({"type": "inserted_real", "base": "cip_copdgene", "n_per_volume": 4, "seed": 1})[2].load()
    assert np.array_equal(image, again[0]) and np.array_equal(labels, again[1])
    assert set(np.unique(labels)) <= {0, 1, 2} and cases[2].spacing is not None
    nodule = load_source({"type": "inserted_real", "base": "cip_copdgene", "n_per_volume": 3, "seed": 1,
                          "kinds": ["central_tumour"], "tumour_label": "nodule"})[0]
    assert 3 in np.unique(nodule.load()[1]) and nodule.label_names[3] == "nodule"
