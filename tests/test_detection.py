"""Whole-scan detection scored with the LUNA16 rules: matching, FROC, CPM, bootstrap, plot, table, JSON.

Every expected number below is worked out by hand in the comments next to it.
"""
import json
import math

import numpy as np
import pytest

from lungseg.evaluation.detection import (DEFAULT_IGNORED_DIAMETER_MM, DetectionCase, Finding, Prediction,
                                          format_froc_table, froc, froc_bootstrap, froc_to_json, match_case,
                                          plot_froc, sensitivity_at)


def P(x, y, z, score):
    return Prediction((x, y, z), score)


def F(x, y, z, d):
    return Finding((x, y, z), d)


# ---------------------------------------------------------------- matching one scan


def test_hit_inside_radius_and_false_positive_at_or_past_it():
    ref = F(0, 0, 0, 10.0)  # radius 5
    case = DetectionCase("a", [ref], [P(4.9, 0, 0, 0.9), P(3, 4, 0, 0.8), P(0, 0, 5.1, 0.7)])
    m = match_case(case)
    # 4.9 < 5: hit; 3-4-0 is exactly 5 (not < 5, LUNA16's strict rule): FP; 5.1: FP
    assert m.detection_scores.tolist() == [0.9]
    assert sorted(m.false_positive_scores.tolist()) == [0.7, 0.8]
    assert (m.n_ignored, m.n_duplicates) == (0, 0)


def test_missed_reference_scores_minus_inf():
    m = match_case(DetectionCase("a", [F(0, 0, 0, 6.0)], [P(20, 0, 0, 0.5)]))
    assert m.detection_scores.tolist() == [-math.inf]
    assert m.false_positive_scores.tolist() == [0.5]


def test_two_predictions_on_one_nodule_one_hit_no_fp():
    case = DetectionCase("a", [F(10, 10, 10, 8.0)], [P(11, 10, 10, 0.3), P(10, 9, 10, 0.8)])
    m = match_case(case)
    # the higher score (0.8) is the detection; the 0.3 mark is neither true nor false
    assert m.detection_scores.tolist() == [0.8]
    assert m.false_positive_scores.size == 0
    assert m.n_duplicates == 1


def test_one_prediction_between_two_references_detects_both():
    # LUNA16 counts a mark inside two overlapping references for both
    m = match_case(DetectionCase("a", [F(0, 0, 0, 10.0), F(4, 0, 0, 10.0)], [P(2, 0, 0, 0.6)]))
    assert m.detection_scores.tolist() == [0.6, 0.6]
    assert (m.false_positive_scores.size, m.n_duplicates) == (0, 0)


def test_predictions_on_ignored_findings_are_neither_hit_nor_fp():
    ignored = [F(50, 0, 0, 6.0),  # sized: radius 3
               F(0, 50, 0, -1.0),  # size-less (LIDC < 3 mm): default 10 mm -> radius 5
               F(0, 0, 50, 0.0)]  # size-less too
    preds = [P(52, 0, 0, 0.9),  # 2 mm from a 3 mm radius: ignored
             P(53.5, 0, 0, 0.8),  # 3.5 mm > 3: FP
             P(0, 54, 0, 0.7),  # 4 mm < 5 (default radius): ignored
             P(0, 56, 0, 0.6),  # 6 mm > 5: FP
             P(0, 0, 45.5, 0.5)]  # 4.5 mm < 5: ignored
    m = match_case(DetectionCase("a", [], preds, ignored))
    assert DEFAULT_IGNORED_DIAMETER_MM == 10.0
    assert sorted(m.false_positive_scores.tolist()) == [0.6, 0.8]
    assert m.n_ignored == 3
    assert m.detection_scores.size == 0
    # a smaller default radius (2 mm) turns the marks at 4 and 4.5 mm into FPs
    m2 = match_case(DetectionCase("a", [], preds, ignored), ignored_min_diameter_mm=4.0)
    assert sorted(m2.false_positive_scores.tolist()) == [0.5, 0.6, 0.7, 0.8]


def test_hit_on_reference_wins_over_ignored_finding():
    # the mark lies inside both: it detects the reference (LUNA16 matches included nodules regardless)
    m = match_case(DetectionCase("a", [F(0, 0, 0, 10.0)], [P(1, 0, 0, 0.4)], [F(2, 0, 0, 10.0)]))
    assert m.detection_scores.tolist() == [0.4]
    assert m.n_ignored == 0


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="finite"):
        match_case(DetectionCase("a", [], [P(0, 0, 0, math.nan)]))
    with pytest.raises(ValueError, match="diameter"):
        match_case(DetectionCase("a", [F(0, 0, 0, -1.0)], []))
    with pytest.raises(ValueError, match="no cases"):
        froc([])


# ---------------------------------------------------------------- FROC


def two_scans():
    """Scan A: R1 (12 mm) detected at 0.9 with an FP tied at 0.9, R2 (6 mm) at 0.5, R3 (5 mm) missed,
    FP 0.3. Scan B: R4 (20 mm) at 0.7 (plus a duplicate mark 0.4), FPs 0.6, 0.2, 0.1, and a mark
    0.99 on an ignored finding."""
    a = DetectionCase("A", [F(0, 0, 0, 12.0), F(40, 0, 0, 6.0), F(80, 0, 0, 5.0)],
                      [P(1, 0, 0, 0.9), P(0, 100, 0, 0.9), P(41, 0, 0, 0.5), P(0, -100, 0, 0.3)])
    b = DetectionCase("B", [F(0, 0, 0, 20.0)],
                      [P(2, 0, 0, 0.7), P(-3, 0, 0, 0.4), P(0, 60, 0, 0.6), P(0, 70, 0, 0.2), P(0, 80, 0, 0.1),
                       P(100, 0, 0, 0.99)],
                      ignored=[F(100, 1, 0, -1.0)])
    return [a, b]


def test_froc_of_two_scans_matches_hand_computation():
    r = froc(two_scans())
    # 4 references, 2 scans. Items by score: 0.9 (TP + FP, tied), 0.7 TP, 0.6 FP, 0.5 TP, 0.3/0.2/0.1 FP.
    # curve (FP/scan = FP/2, sens = TP/4):
    #   +inf (0, 0) | 0.9 (0.5, .25) | 0.7 (0.5, .5) | 0.6 (1, .5) | 0.5 (1, .75) | 0.3 (1.5, .75)
    #   | 0.2 (2, .75) | 0.1 (2.5, .75)
    assert r.curve_fps.tolist() == [0, 0.5, 0.5, 1, 1, 1.5, 2, 2.5]
    assert r.curve_sensitivities.tolist() == [0, .25, .5, .5, .75, .75, .75, .75]
    assert r.curve_thresholds.tolist() == [math.inf, 0.9, 0.7, 0.6, 0.5, 0.3, 0.2, 0.1]
    # 1/8: on the tie's diagonal (0,0)-(0.5,.25): .25 * .125/.5 = .0625; 1/4: .125
    # 1/2: the last point at 0.5 FP/scan, .5; 1: .75; 2: .75; 4, 8: past the end (2.5) -> .75
    expected = [0.0625, 0.125, 0.5, 0.75, 0.75, 0.75, 0.75]
    assert r.sensitivities == pytest.approx(expected)
    # CPM = (.0625 + .125 + .5 + 4 * .75) / 7 = 3.6875 / 7
    assert r.cpm == pytest.approx(3.6875 / 7)
    assert (r.n_scans, r.n_references, r.n_detected, r.n_false_positives) == (2, 4, 3, 5)
    assert r.fp_per_scan == 2.5
    # the same numbers LUNA16's np.interp gives on this curve
    assert np.interp(r.fp_rates, r.curve_fps, r.curve_sensitivities) == pytest.approx(expected)


def test_min_diameter_turns_small_references_into_ignored_findings():
    r = froc(two_scans(), min_diameter_mm=10.0)
    # R2 (6 mm) and R3 (5 mm) become ignored: R2's mark 0.5 is neither TP nor FP; refs R1 (0.9), R4 (0.7)
    # curve: (0,0) | 0.9 (0.5, .5) | 0.7 (0.5, 1) | 0.6 (1, 1) ... (2.5, 1)
    # 1/8: .5 * .125/.5 = .125; 1/4: .25; 1/2 and up: 1
    assert r.sensitivities == pytest.approx([0.125, 0.25, 1, 1, 1, 1, 1])
    assert r.cpm == pytest.approx((0.125 + 0.25 + 5) / 7)
    assert (r.n_references, r.n_detected, r.n_false_positives) == (2, 2, 5)
    assert r.min_diameter_mm == 10.0


def test_froc_without_false_positives_and_without_predictions():
    # every mark a hit: the curve never leaves FP rate 0, every rate gets the final sensitivity (1/2)
    r = froc([DetectionCase("a", [F(0, 0, 0, 10.0), F(50, 0, 0, 10.0)], [P(0, 0, 0, 0.5)])])
    assert r.sensitivities == pytest.approx([0.5] * 7)
    r = froc([DetectionCase("a", [F(0, 0, 0, 10.0)], [])])
    assert r.sensitivities == (0.0,) * 7 and r.cpm == 0.0
    r = froc([DetectionCase("a", [], [P(0, 0, 0, 0.5)])])  # no references: sensitivity undefined
    assert math.isnan(r.cpm) and r.n_false_positives == 1


def test_sensitivity_at_equals_np_interp_on_random_curves():
    rng = np.random.default_rng(1)
    for _ in range(20):
        fps = np.concatenate([[0], np.sort(rng.integers(0, 12, 30)) / 4])  # many repeated FP rates
        sens = np.concatenate([[0], np.sort(rng.random(30))])
        rates = np.concatenate([[0.125, 0.25, 0.5, 1, 2, 4, 8], rng.random(10) * 4])
        assert sensitivity_at(fps, sens, rates) == pytest.approx(np.interp(rates, fps, sens))


# ---------------------------------------------------------------- bootstrap


def many_scans(n=8, patients=None):
    rng = np.random.default_rng(3)
    cases = []
    for i in range(n):
        refs = [F(0, 0, 0, 10.0), F(50, 0, 0, 8.0)]
        preds = [P(0, 0, 1, float(rng.random()))]  # one nodule always found, the other half of the time
        if i % 2:
            preds.append(P(50, 1, 0, float(rng.random())))
        preds += [P(0, 100 + 10 * k, 0, float(rng.random())) for k in range(i % 4)]  # 0..3 FPs
        cases.append(DetectionCase(f"s{i}", refs, preds, patient=None if patients is None else patients[i]))
    return cases


def test_bootstrap_one_scan_is_degenerate():
    r = froc_bootstrap(two_scans()[:1], n_boot=50)
    assert r.ci["n_groups"] == 1
    assert r.ci["sensitivity_low"] == r.sensitivities == r.ci["sensitivity_high"]
    assert r.ci["cpm_low"] == r.cpm == r.ci["cpm_high"]


def test_bootstrap_resamples_patients_not_scans():
    # two scans of one patient: one resampling unit, so the interval is degenerate too
    cases = [DetectionCase(c.name, c.references, c.predictions, c.ignored, patient="p1") for c in two_scans()]
    r = froc_bootstrap(cases, n_boot=50)
    assert r.ci["n_groups"] == 1 and r.ci["cpm_low"] == r.cpm == r.ci["cpm_high"]


def test_bootstrap_several_scans_brackets_the_value():
    cases = many_scans()
    r = froc_bootstrap(cases, n_boot=300, seed=0)
    assert r.cpm == froc(cases).cpm  # the point estimate is the plain FROC's
    assert r.ci["n_groups"] == 8 and r.ci["n_boot"] == 300
    for lo, v, hi in zip(r.ci["sensitivity_low"], r.sensitivities, r.ci["sensitivity_high"]):
        assert lo <= v <= hi
    assert r.ci["cpm_low"] <= r.cpm <= r.ci["cpm_high"]
    assert r.ci["cpm_low"] < r.ci["cpm_high"]
    # same seed, same interval; patients group scans (4 patients of 2 scans)
    assert froc_bootstrap(cases, n_boot=300, seed=0).ci == r.ci
    grouped = froc_bootstrap(many_scans(patients=[f"p{i // 2}" for i in range(8)]), n_boot=300)
    assert grouped.ci["n_groups"] == 4


def test_weighted_curve_equals_froc_of_duplicated_scans():
    # what a bootstrap replicate computes (scan A drawn twice, B once) is the FROC of [A, A, B]
    from lungseg.evaluation.detection import _curve, _pool, match_case as m

    a, b = two_scans()
    fps, sens = _curve(_pool([m(a), m(b)]), np.array([2.0, 1.0]))
    r = froc([a, a, b])
    at = sensitivity_at(fps, sens, r.fp_rates)
    assert at == pytest.approx(r.sensitivities)


# ---------------------------------------------------------------- plot, table, JSON


def test_plot_is_a_png(tmp_path):
    r = froc_bootstrap(many_scans(), n_boot=50)
    out = plot_froc(r, tmp_path / "froc.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out2 = plot_froc({"all": r, ">= 10 mm": froc(two_scans(), min_diameter_mm=10)}, tmp_path / "sub" / "two.png")
    assert out2.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["froc.png", "two.png"]  # no temp files


def test_table_lists_each_result():
    r, big = froc(two_scans()), froc(two_scans(), min_diameter_mm=10)
    text = format_froc_table({"LIDC-IDRI-0003": r, ">= 10 mm": big})
    lines = text.splitlines()
    assert lines[0].split() == ["1/8", "1/4", "1/2", "1", "2", "4", "8", "CPM", "refs", "scans", "FP/scan"]
    assert lines[1].split() == ["LIDC-IDRI-0003", "0.062", "0.125", "0.500", "0.750", "0.750", "0.750", "0.750",
                                "0.527", "4", "2", "2.50"]
    assert lines[2].split()[-4:] == ["0.768", "2", "2", "2.50"]  # (0.125 + 0.25 + 5) / 7 = 0.7679
    with_ci = format_froc_table({"phantoms": froc_bootstrap(two_scans()[:1], n_boot=10)})
    assert "CPM 95% CI" in with_ci


def test_json_is_serialisable():
    d = froc_to_json(froc_bootstrap(many_scans(), n_boot=20))
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN / Infinity
    back = json.loads(text)
    assert back["curve"]["thresholds"][0] is None  # +inf start of the curve
    assert len(back["sensitivities"]) == 7 and isinstance(back["cpm"], float)
    assert set(back["ci"]) >= {"sensitivity_low", "sensitivity_high", "cpm_low", "cpm_high"}
    undefined = froc_to_json(froc([DetectionCase("a", [], [P(0, 0, 0, 0.5)])]))
    assert undefined["cpm"] is None
    json.dumps(undefined, allow_nan=False)
