"""The malignancy classifier's parts: the 2.5D nodule patch (same from a crop and a whole scan),
the radiomics features against crafted shapes of known size, AUC / bootstrap / threshold /
calibration against hand-worked answers, the radiomics model's JSON round trip, and the
classification config and nodule-table errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lungseg.classification.features import diameter_mm, nodule_features
from lungseg.classification.metrics import at_threshold, bootstrap_auc, calibration, roc_auc, youden_threshold
from lungseg.classification.patches import PATCH, PIXEL_MM, crop_around, nodule_patch
from lungseg.errors import LungsegError


def ellipsoid(shape, centre, radii_mm, spacing):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((((g - c) * s) / r) ** 2 for g, c, r, s in zip(grids, centre, radii_mm, spacing)) <= 1.0


def test_patch_is_the_same_from_a_crop_and_from_the_whole_scan():
    spacing = (2.0, 0.7, 0.7)
    shape = (30, 200, 220)
    rng = np.random.default_rng(1)
    hu = rng.normal(-800, 60, shape).astype(np.float32)
    ball = ellipsoid(shape, (15, 90, 130), (6, 6, 6), spacing)
    hu[ball] = 40
    whole = nodule_patch(hu, ball, spacing)
    box = crop_around(shape, np.stack(np.nonzero(ball)), spacing)
    crop = nodule_patch(hu[box], ball[box], spacing)
    np.testing.assert_allclose(whole, crop, atol=1e-5)
    assert whole.shape == (4, PATCH, PATCH)
    # the mask channel: a 12 mm disc at PIXEL_MM pixels, centred
    area = whole[3].sum() * PIXEL_MM ** 2
    assert abs(area - math.pi * 36) / (math.pi * 36) < 0.1
    ys, xs = np.nonzero(whole[3])
    assert abs(ys.mean() - (PATCH - 1) / 2) < 1 and abs(xs.mean() - (PATCH - 1) / 2) < 1
    # the image channels are the lung window scaled to 0..1: the nodule (40 HU) is bright
    assert whole[1][whole[3] > 0].mean() == pytest.approx((40 + 1000) / 1400, abs=0.01)


def test_patch_slices_stay_on_the_nodule_own_slices():
    """LIDC crop stacks hold only the nodule's slices: the +-2 mm channels are clamped to them,
    so a whole scan (with slices beyond the nodule) gives the same patch."""
    spacing = (1.0, 0.7, 0.7)
    hu = np.full((12, 80, 80), -800, np.float32)
    mask = np.zeros(hu.shape, bool)
    mask[5, 35:45, 35:45] = True  # a one-slice nodule
    hu[mask] = 50
    hu[4], hu[6] = 300, 300  # bright neighbours that the patch must not show
    p = nodule_patch(hu, mask, spacing)
    np.testing.assert_array_equal(p[0], p[1])
    np.testing.assert_array_equal(p[2], p[1])


def test_features_of_a_ball_and_an_elongated_ellipsoid():
    spacing = (1.0, 0.7, 0.7)
    shape = (40, 80, 80)
    hu = np.full(shape, -850, np.float32)
    ball = ellipsoid(shape, (20, 40, 40), (8, 8, 8), spacing)
    hu[ball] = 30
    f = nodule_features(hu, ball, spacing)
    assert f["diameter_mm"] == pytest.approx(16, abs=1.0)
    assert f["volume_ml"] == pytest.approx(4 / 3 * math.pi * 8 ** 3 / 1000, rel=0.08)
    assert f["mean_hu"] == pytest.approx(30) and f["solid_fraction"] == 1.0 and f["calcified_fraction"] == 0.0
    assert f["sphericity"] > 0.85
    cigar = ellipsoid(shape, (20, 40, 40), (3, 14, 3), spacing)
    g = nodule_features(np.where(cigar, 30, -850).astype(np.float32), cigar, spacing)
    assert g["sphericity"] < f["sphericity"] - 0.15
    assert g["eccentricity"] > 0.9 > f["eccentricity"]
    # calcium (1000 HU) is counted, and clipped to the crops' window (400) in the mean
    hu2 = np.where(ball, 1000, -850).astype(np.float32)
    h = nodule_features(hu2, ball, spacing)
    assert h["calcified_fraction"] == 1.0 and h["mean_hu"] == pytest.approx(400)


def test_diameter_of_a_single_pixel_and_a_bar():
    m = np.zeros((1, 10, 10), bool)
    m[0, 5, 5] = True
    assert diameter_mm(m, (1, 0.5, 0.8)) == pytest.approx(0.5)
    m[0, 5, 2:8] = True  # six pixels in a row at 0.8 mm: 6 * 0.8 = 4.8 mm edge to edge
    assert diameter_mm(m, (1, 0.5, 0.8)) == pytest.approx(4.8, abs=0.35)


def test_auc_threshold_and_calibration_against_hand_worked_answers():
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc(y, [0.1, 0.6, 0.5, 0.9]) == 0.75  # 3 of 4 pairs ordered
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert youden_threshold(y, [0.1, 0.2, 0.8, 0.9]) == 0.8
    f = at_threshold([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], 0.55)
    assert (f["accuracy"], f["sensitivity"], f["specificity"]) == (0.5, 0.5, 0.5)
    cal = calibration([0, 1, 1, 0], [0.1, 0.9, 0.95, 0.15], bins=2)
    assert cal["bins"][0]["observed"] == 0.0 and cal["bins"][1]["observed"] == 1.0
    assert cal["brier"] == pytest.approx((0.01 + 0.01 + 0.0025 + 0.0225) / 4)


def test_bootstrap_resamples_patients():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = y + rng.normal(0, 0.8, 200)
    r = bootstrap_auc(y, s, [f"p{i // 4}" for i in range(200)], n_boot=300)
    assert r["n_patients"] == 50 and r["ci_low"] < r["auc"] < r["ci_high"]
    assert 0.6 < r["auc"] < 0.95


def test_radiomics_model_round_trip(tmp_path):
    import json

    from lungseg.classification.features import FEATURES
    from lungseg.classification.radiomics import RadiomicsModel

    rng = np.random.default_rng(0)
    rows = [{k: float(rng.uniform(1, 10)) for k in FEATURES} for _ in range(60)]
    y = [int(r["diameter_mm"] > 5) for r in rows]
    model = RadiomicsModel.fit(rows, y)
    assert roc_auc(y, model.predict(rows)) > 0.95  # diameter separates them
    path = tmp_path / "classifier.json"
    path.write_text(json.dumps(model.to_dict()))
    np.testing.assert_allclose(RadiomicsModel.load(path).predict(rows), model.predict(rows))
    bad = model.to_dict()
    bad["features"] = bad["features"][:-1]
    path.write_text(json.dumps(bad))
    with pytest.raises(LungsegError, match="other features"):
        RadiomicsModel.load(path)


def test_classification_config_checks(tmp_path):
    from lungseg.train import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: classification\nmodel: {name: radiomics}\n")
    assert load_config(cfg).monitor == "val_auc"
    cfg.write_text("task: detection\n")
    with pytest.raises(LungsegError, match="task must be one of segmentation, classification"):
        load_config(cfg)
    cfg.write_text("monitor: val_auc\n")
    with pytest.raises(LungsegError, match="val_auc is for task: classification"):
        load_config(cfg)


def test_nodule_table_errors(tmp_path):
    from lungseg.classification.samples import load_samples

    table = tmp_path / "nodules.csv"
    table.write_text("image,label\na.nii.gz,benign\n")
    with pytest.raises(LungsegError, match="needs the columns image, mask, label"):
        load_samples([{"type": "nodule_table", "path": str(table)}])
    with pytest.raises(LungsegError, match="nodule table not found"):
        load_samples([{"type": "nodule_table", "path": str(tmp_path / "none.csv")}])
    with pytest.raises(LungsegError, match="must be one of lidc_malignancy, nodule_table"):
        load_samples([{"type": "lidc_crops"}])
