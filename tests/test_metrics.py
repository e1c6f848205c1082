"""Every evaluation metric against small cases computed by hand (spacing, empty masks, multi-class)."""
import math

import numpy as np
import pytest

from lungseg.errors import LungsegError
from lungseg.evaluation.bootstrap import (cluster_bootstrap_ratio, describe, summarise, summarise_lesions,
                                          volume_agreement)
from lungseg.evaluation.labelmaps import parse_label_map
from lungseg.evaluation.lesions import bin_name, equivalent_diameter, match_lesions
from lungseg.evaluation.metrics import binary_metrics, dice_scores, evaluate_case

nan = float("nan")


def approx(x, rel=1e-6, abs=1e-6):
    return pytest.approx(x, rel=rel, abs=abs, nan_ok=True)


# ---- overlap and confusion-matrix metrics -------------------------------------------------------
def test_square_shifted_by_one_column():
    # 4x4 square in a 10x10 image, prediction shifted one column: TP 12, FP 4, FN 4, TN 80
    ref = np.zeros((10, 10), bool)
    ref[3:7, 3:7] = True
    pred = np.roll(ref, 1, axis=1)
    m = binary_metrics(pred, ref, (1.0, 1.0))
    assert m["dice"] == approx(24 / 32)
    assert m["f1"] == approx(24 / 32)
    assert m["iou"] == approx(12 / 20)
    assert m["precision"] == approx(12 / 16)
    assert m["recall"] == approx(12 / 16)
    assert m["specificity"] == approx(80 / 84)
    assert m["accuracy"] == approx(92 / 100)
    # boundaries: 12 edge pixels each, 6 of them 1 px away in each direction
    assert m["hd95_mm"] == approx(1.0)
    assert m["assd_mm"] == approx(12 / 24)
    assert m["surface_dice"] == approx(1.0)


def test_confusion_metrics_count_the_whole_image_not_the_crop():
    # same objects in a larger image: only TN (specificity, accuracy) change
    ref = np.zeros((20, 30), bool)
    ref[3:7, 3:7] = True
    pred = np.roll(ref, 1, axis=1)
    m = binary_metrics(pred, ref, (1.0, 1.0))
    assert m["dice"] == approx(0.75)
    assert m["specificity"] == approx((600 - 20) / (600 - 16))
    assert m["accuracy"] == approx((600 - 8) / 600)


def test_surface_metrics_by_hand():
    # reference: row 5, x 0..9; prediction: row 5 x 0..4 and row 8 x 5..9 (lines are all boundary)
    ref = np.zeros((12, 12), bool)
    ref[5, 0:10] = True
    pred = np.zeros((12, 12), bool)
    pred[5, 0:5] = True
    pred[8, 5:10] = True
    m = binary_metrics(pred, ref, (1.0, 1.0), tolerance_mm=2.0)
    # pred->ref: 0 x5, 3 x5; ref->pred: 0 x5, then 1, 2, 3, 3, 3
    assert m["assd_mm"] == approx((15 + 12) / 20)
    assert m["hd95_mm"] == approx(3.0)  # both directed 95th percentiles are 3
    assert m["surface_dice"] == approx((5 + 7) / 20)
    assert m["dice"] == approx(10 / 20)


def test_hd95_is_a_percentile_not_the_maximum():
    # one far outlier among 21 prediction boundary pixels: max 10, 95th percentile 0
    ref = np.zeros((20, 24), bool)
    ref[5, 0:20] = True
    pred = ref.copy()
    pred[15, 0] = True
    m = binary_metrics(pred, ref, (1.0, 1.0))
    assert m["hd95_mm"] == approx(0.0)
    assert m["assd_mm"] == approx(10 / 41)


def test_anisotropic_spacing_in_distances_and_volumes():
    # two 4x4 planes, 3 slices apart, slice spacing 2.5 mm: every boundary distance is 7.5 mm
    ref = np.zeros((8, 4, 4), bool)
    pred = ref.copy()
    ref[2] = True
    pred[5] = True
    m = binary_metrics(pred, ref, (2.5, 1.0, 1.0), tolerance_mm=2.0)
    assert m["hd95_mm"] == approx(7.5)
    assert m["assd_mm"] == approx(7.5)
    assert m["surface_dice"] == approx(0.0)
    assert binary_metrics(pred, ref, (2.5, 1.0, 1.0), tolerance_mm=7.5)["surface_dice"] == approx(1.0)
    assert m["vol_ref_ml"] == approx(16 * 2.5 / 1000)
    # the same shift along x with 0.5 mm columns is 1.5 mm
    ref2 = np.zeros((4, 4, 8), bool)
    pred2 = ref2.copy()
    ref2[:, :, 2] = True
    pred2[:, :, 5] = True
    assert binary_metrics(pred2, ref2, (3.0, 1.0, 0.5))["hd95_mm"] == approx(1.5)


def test_volume_difference_in_ml():
    ref = np.zeros((12, 12, 12), bool)
    ref[1:11, 1:11, 1:11] = True  # 1000 voxels of 2 x 1 x 1 mm = 2 mL
    pred = ref.copy()
    pred[1:11, 1:11, 1] = False  # 100 voxels fewer
    m = binary_metrics(pred, ref, (2.0, 1.0, 1.0))
    assert m["vol_ref_ml"] == approx(2.0)
    assert m["vol_pred_ml"] == approx(1.8)
    assert m["vol_diff_ml"] == approx(-0.2)
    assert m["vol_diff_pct"] == approx(-10.0)
    assert m["dice"] == approx(2 * 900 / 1900)


def test_single_slice_volume_uses_slice_thickness():
    ref = np.zeros((1, 20, 20), bool)
    ref[0, 5:15, 5:15] = True
    m = binary_metrics(ref, ref, (5.0, 0.5, 0.5))
    assert m["vol_ref_ml"] == approx(100 * 0.25 * 5 / 1000)
    assert m["hd95_mm"] == 0.0 and m["dice"] == 1.0


# ---- empty masks (MONAI #7504) --------------------------------------------------------------------
def test_both_empty():
    z = np.zeros((6, 6), bool)
    m = binary_metrics(z, z, (1.0, 1.0))
    for k in ("dice", "iou", "f1", "precision", "recall", "specificity", "accuracy", "surface_dice"):
        assert m[k] == 1.0, k
    assert m["hd95_mm"] == 0.0 and m["assd_mm"] == 0.0
    assert m["empty_ref"] == 1.0 and m["empty_pred"] == 1.0
    assert math.isnan(m["vol_diff_pct"])


def test_empty_prediction():
    ref = np.zeros((6, 6), bool)
    ref[1:3, 1:3] = True
    m = binary_metrics(np.zeros_like(ref), ref, (1.0, 1.0))
    assert m["dice"] == 0.0 and m["iou"] == 0.0 and m["f1"] == 0.0 and m["surface_dice"] == 0.0
    assert m["recall"] == 0.0 and math.isnan(m["precision"])
    assert math.isnan(m["hd95_mm"]) and math.isnan(m["assd_mm"])
    assert m["specificity"] == 1.0 and m["accuracy"] == approx(32 / 36)
    assert m["empty_pred"] == 1.0 and m["empty_ref"] == 0.0


def test_empty_reference():
    pred = np.zeros((6, 6), bool)
    pred[1:3, 1:3] = True
    m = binary_metrics(pred, np.zeros_like(pred), (1.0, 1.0))
    assert m["dice"] == 0.0 and m["precision"] == 0.0 and math.isnan(m["recall"])
    assert math.isnan(m["hd95_mm"]) and m["surface_dice"] == 0.0
    assert m["specificity"] == approx(32 / 36)
    assert m["vol_diff_ml"] == approx(4 / 1000)


# ---- multi-class -----------------------------------------------------------------------------------
def _labels():
    lab = np.zeros((4, 10, 12), np.uint8)
    lab[:, 2:8, 1:5] = 1  # right lung (image left)
    lab[:, 2:8, 7:11] = 2  # left lung
    lab[1:3, 4:6, 2:4] = 3  # nodule inside the right lung
    return lab


def test_multiclass_classes_and_nodule_counts_as_lung():
    ref = _labels()
    pred = ref.copy()
    pred[pred == 3] = 1  # nodule missed, painted as right lung
    m = evaluate_case(pred, ref, (1.0, 1.0, 1.0))
    assert set(m) == {"right_lung", "left_lung", "both_lungs", "nodule"}
    n_nod, n_right = 8, 96 - 8
    assert m["right_lung"]["dice"] == approx(2 * n_right / (n_right + 96))
    assert m["left_lung"]["dice"] == 1.0
    assert m["both_lungs"]["dice"] == 1.0  # nodule voxels are lung in both
    assert m["nodule"]["dice"] == 0.0 and m["nodule"]["lesions_hit"] == 0 and m["nodule"]["lesions_ref"] == 1
    assert n_nod == (ref == 3).sum()


def test_left_right_swap_is_caught_by_the_sides_only():
    ref = _labels()
    pred = ref.copy()
    pred[ref == 1], pred[ref == 2] = 2, 1
    m = evaluate_case(pred, ref, (1.0, 1.0, 1.0), classes=("right_lung", "left_lung", "both_lungs"))
    assert m["right_lung"]["dice"] == 0.0 and m["left_lung"]["dice"] == 0.0
    assert m["both_lungs"]["dice"] == 1.0
    assert dice_scores(pred, ref, ("right_lung", "both_lungs")) == {"right_lung": 0.0, "both_lungs": 1.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs"):
        evaluate_case(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


# ---- lesions ---------------------------------------------------------------------------------------
def test_lesion_detection_by_hand():
    sp = (1.5, 1.5, 1.5)
    ref = np.zeros((30, 30, 30), bool)
    ref[2:6, 2:6, 2:6] = True  # 64 voxels: d = (6 * 216 / pi)^(1/3) = 7.44 mm
    ref[15:23, 15:23, 15:23] = True  # 512 voxels: d = 14.89 mm
    pred = np.zeros_like(ref)
    pred[15:23, 15:23, 16:24] = True  # IoU 448 / 576 with the big one: hit
    pred[5, 5, 5] = True  # touches the small one at IoU 1/64 < 0.1: not a hit, and a false positive
    pred[27:29, 27:29, 27:29] = True  # false positive
    rows = match_lesions(pred, ref, sp, min_iou=0.1)
    ref_rows = sorted((r for r in rows if r["source"] == "ref"), key=lambda r: r["voxels"])
    assert [r["voxels"] for r in ref_rows] == [64, 512]
    assert ref_rows[0]["diameter_mm"] == approx((6 * 64 * 3.375 / math.pi) ** (1 / 3))
    assert ref_rows[0]["bin"] == "3-10" and ref_rows[1]["bin"] == "10-20"
    assert [r["matched"] for r in ref_rows] == [False, True]
    assert ref_rows[1]["best_iou"] == approx(448 / 576)
    assert ref_rows[0]["best_iou"] == approx(1 / 64)
    m = evaluate_case(pred.astype(np.uint8) * 3, ref.astype(np.uint8) * 3, sp, classes=("nodule",))["nodule"]
    assert (m["lesions_ref"], m["lesions_pred"], m["lesions_hit"], m["lesions_fp"]) == (2, 3, 1, 2)
    assert m["lesion_recall"] == 0.5
    assert (m["lesions_ref_3-10"], m["lesions_hit_3-10"], m["lesions_hit_10-20"]) == (1, 0, 1)
    # a touch is enough at min_iou = 0
    assert sum(r["matched"] for r in match_lesions(pred, ref, sp, min_iou=1e-9) if r["source"] == "ref") == 2


def test_lesions_in_a_single_slice_use_the_circle_diameter_and_8_connectivity():
    ref = np.zeros((1, 20, 20), bool)
    ref[0, 2:6, 2:6] = True
    ref[0, 6, 6] = True  # diagonal neighbour: same lesion
    rows = match_lesions(np.zeros_like(ref), ref, (1.0, 0.5, 0.5))
    assert len(rows) == 1 and rows[0]["voxels"] == 17
    assert rows[0]["diameter_mm"] == approx(2 * math.sqrt(17 * 0.25 / math.pi))
    assert equivalent_diameter(17, (1.0, 0.5, 0.5), True) == rows[0]["diameter_mm"]
    assert [bin_name(d) for d in (2.9, 3, 9.99, 10, 25, 30)] == ["<3", "3-10", "3-10", "10-20", "20-30", ">=30"]


# ---- bootstrap summaries ----------------------------------------------------------------------------
def test_describe_mean_ci_and_undefined_counts():
    d = describe([0.5, 0.7, nan, 0.9], n_boot=500, seed=1)
    assert d["n"] == 3 and d["n_undefined"] == 1
    assert d["mean"] == approx(0.7) and d["median"] == approx(0.7)
    assert 0.5 <= d["ci_low"] <= 0.7 <= d["ci_high"] <= 0.9
    const = describe([0.8] * 5, n_boot=200)
    assert const["ci_low"] == approx(0.8) and const["ci_high"] == approx(0.8)


def test_bootstrap_resamples_patients_as_units():
    # patient A: two cases at 1.0, patient B: one case at 0.0. Resampling patients gives only
    # means in {0, 2/3, 1}; resampling cases would also give 1/3.
    values, groups = np.array([1.0, 1.0, 0.0]), np.array(["A", "A", "B"])
    from lungseg.evaluation.bootstrap import _group_sums, _weights

    num, n, _ = _group_sums(values, groups)
    den, _, _ = _group_sums(np.ones(3), groups)
    w = _weights(n, 2000, 0)
    means = set(np.round((w @ num) / (w @ den), 6))
    assert means <= {0.0, round(2 / 3, 6), 1.0}
    ci = cluster_bootstrap_ratio(values, np.ones(3), groups, n_boot=2000)
    assert ci["value"] == approx(2 / 3) and ci["n_patients"] == 2
    assert ci["ci_low"] == 0.0 and ci["ci_high"] == 1.0
    # reproducible
    assert cluster_bootstrap_ratio(values, np.ones(3), groups, 300, seed=3) == \
        cluster_bootstrap_ratio(values, np.ones(3), groups, 300, seed=3)


def test_summarise_tables():
    rows = [{"case": f"c{i}", "patient": f"p{i // 2}", "class": "nodule", "dice": d, "hd95_mm": h,
             "vol_pred_ml": vp, "vol_ref_ml": vr, "empty_ref": 0.0, "empty_pred": float(i == 3),
             "lesions_ref": 2.0, "lesions_hit": float(i % 2), "lesions_fp": 1.0, "lesions_pred": 2.0,
             "lesions_ref_3-10": 1.0, "lesions_hit_3-10": float(i % 2),
             "lesions_ref_10-20": 1.0, "lesions_hit_10-20": 0.0, "lesions_ref_20-30": 0.0,
             "lesions_hit_20-30": 0.0}
            for i, (d, h, vp, vr) in enumerate([(0.9, 1.0, 2.0, 2.5), (0.8, 2.0, 3.0, 3.0), (0.7, nan, 1.0, 0.5),
                                                (0.0, nan, 0.0, 1.0)])]
    s = {r["metric"]: r for r in summarise(rows, n_boot=200)}
    assert s["dice"]["mean"] == approx(0.6) and s["dice"]["n_patients"] == 2
    assert s["hd95_mm"]["n"] == 2 and s["hd95_mm"]["n_undefined"] == 2 and s["hd95_mm"]["mean"] == approx(1.5)
    assert s["n_empty_pred"]["mean"] == 1
    assert s["dice_ref_nonempty"]["n"] == 4  # no empty reference here
    les = {r["quantity"]: r for r in summarise_lesions(rows, n_boot=200)}
    assert les["lesion_recall"]["value"] == approx(2 / 8)
    assert (les["lesion_recall_3-10"]["numerator"], les["lesion_recall_3-10"]["denominator"]) == (2, 4)
    assert math.isnan(les["lesion_recall_20-30"]["value"])
    assert les["fp_per_case"]["value"] == approx(1.0)
    assert les["lesion_precision"]["value"] == approx(4 / 8)
    va = volume_agreement(rows)[0]
    diffs = np.array([-0.5, 0.0, 0.5, -1.0])
    assert va["bias_ml"] == approx(diffs.mean()) and va["sd_ml"] == approx(diffs.std(ddof=1))
    assert va["loa_high_ml"] == approx(diffs.mean() + 1.96 * diffs.std(ddof=1))
    assert va["pearson_r"] == approx(np.corrcoef([2, 3, 1, 0], [2.5, 3, 0.5, 1])[0, 1])


# ---- label maps ---------------------------------------------------------------------------------------
def test_label_map_presets_and_rules():
    assert parse_label_map(None).provides == {"right_lung", "left_lung", "both_lungs", "nodule"}
    assert parse_label_map("binary").provides == {"both_lungs"}
    assert parse_label_map("nodule").provides == {"nodule"}
    soft = np.array([[-50.0, 100.0, 127.6, 300.0]])
    assert parse_label_map("imlab").apply(soft).tolist() == [[0, 0, 4, 4]]
    m = parse_label_map("255:both")
    assert m.apply(np.array([0, 255])).tolist() == [0, 4]
    with pytest.raises(LungsegError, match=r"\{7\}.*--ref-map"):
        m.apply(np.array([0, 7, 255]), "reference", "caseX")
    custom = parse_label_map("1:right,2:left,3-9:nodule,*:background")
    assert custom.apply(np.array([0, 1, 2, 5, 9, 12])).tolist() == [0, 1, 2, 3, 3, 0]
    with pytest.raises(LungsegError, match="bad label-map"):
        parse_label_map("1:liver")


def test_cip_codes():
    # region = value & 0xFF: 9 LeftUpperThird, 777 = vessel in 9, 12 RightUpperThird, 512 airway (no region)
    cip = parse_label_map("cip")
    assert cip.apply(np.array([0, 9, 777, 12, 524, 512, 768])).tolist() == [0, 2, 2, 1, 1, 0, 0]
    with pytest.raises(LungsegError, match="WholeLung"):
        cip.apply(np.array([0, 1]))
