"""Whole-scan nodule detection scored with the LUNA16 rules: hits by distance, FROC, CPM, bootstrap CIs.

Rules (those of LUNA16's noduleCADEvaluationLUNA16.py, stated once, used everywhere):
- A prediction (a point with a score, world mm) *hits* a finding when its distance to the finding's
  centre is strictly less than the finding's radius (diameter / 2).
- A reference is detected with the highest score among the predictions that hit it; the other
  predictions on it are neither true nor false (no double counting, no penalty).
  A prediction that hits two references counts for both (LUNA16 does the same).
- A prediction that hits no reference but hits an ignored finding (LIDC nodules < 3 mm, non-nodules,
  references below `min_diameter_mm`) is left out. Every other prediction is a false positive.
- FROC: for every score threshold t, sensitivity = references detected with score >= t / all references
  and FP rate = false positives with score >= t / scans; the curve starts at (0, 0) (threshold +inf).
  Sensitivity at an FP rate interpolates the curve linearly (np.interp, as LUNA16); a rate past the
  curve's end gets the sensitivity at the lowest threshold. CPM = mean sensitivity at 1/8..8 FP/scan.
- Bootstrap: whole scans (or whole patients when `patient` is set) are drawn with replacement and
  the FROC is recomputed; the CI is the 2.5th..97.5th percentile of the replicates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from .bootstrap import CI_LEVEL, _weights

LUNA16_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# LUNA16 gives excluded annotations that carry no size (diameter -1: LIDC nodules < 3 mm marked as a
# point, non-nodules) a diameter of 10 mm (`if diameter < 0.0: diameter = 10.0`), so marks near them
# are ignored rather than counted as false positives. We apply it to diameter 0 as well: a zero
# radius could never be hit.
DEFAULT_IGNORED_DIAMETER_MM = 10.0


@dataclass(frozen=True)
class Finding:
    """A reference nodule or an ignored finding: centre in world coordinates (mm) and diameter (mm)."""

    center_mm: tuple[float, float, float]
    diameter_mm: float


@dataclass(frozen=True)
class Prediction:
    """A detector's mark: centre in world coordinates (mm) and a score (higher = more suspicious)."""

    center_mm: tuple[float, float, float]
    score: float


@dataclass
class DetectionCase:
    """One scan: its reference nodules, the detector's marks and the findings whose marks are ignored."""

    name: str
    references: list[Finding]
    predictions: list[Prediction]
    ignored: list[Finding] = field(default_factory=list)
    patient: str | None = None


@dataclass(frozen=True)
class CaseMatch:
    """Outcome of one scan: a detection score per reference (-inf when missed) and the FP scores."""

    detection_scores: np.ndarray
    false_positive_scores: np.ndarray
    n_ignored: int  # predictions on ignored findings only
    n_duplicates: int  # further predictions on an already detected reference


@dataclass(frozen=True)
class FrocResult:
    """FROC curve, sensitivity at the FP rates, CPM, counts and (after froc_bootstrap) the 95% CIs."""

    fp_rates: tuple[float, ...]
    sensitivities: tuple[float, ...]
    cpm: float
    curve_fps: np.ndarray  # FP per scan at each threshold, non-decreasing, starts at 0
    curve_sensitivities: np.ndarray
    curve_thresholds: np.ndarray  # descending, starts at +inf
    n_scans: int
    n_references: int
    n_detected: int  # at the lowest threshold
    n_false_positives: int
    min_diameter_mm: float = 0.0
    ci: dict | None = None  # sensitivity_low/high (per rate), cpm_low/high, n_boot, n_groups, level

    @property
    def fp_per_scan(self) -> float:
        """False positives per scan at the lowest threshold (the end of the curve)."""
        return self.n_false_positives / self.n_scans if self.n_scans else math.nan


# ---------------------------------------------------------------- matching one scan


def _centres(findings) -> np.ndarray:
    return np.array([f.center_mm for f in findings], dtype=np.float64).reshape(-1, 3)


def _hits(pred_xyz: np.ndarray, findings, diameters: np.ndarray) -> np.ndarray:
    """(n_pred, n_findings) bool: strictly inside the finding's radius (squared, as LUNA16)."""
    d2 = ((pred_xyz[:, None, :] - _centres(findings)[None, :, :]) ** 2).sum(-1)
    return d2 < (diameters / 2.0) ** 2


def _validate(case: DetectionCase, scores: np.ndarray) -> None:
    # -inf marks a missed reference, so scores must be finite; a size-less reference cannot be hit
    if not np.isfinite(scores).all():
        raise ValueError(f"{case.name}: prediction scores must be finite")
    if any(not r.diameter_mm > 0 for r in case.references):
        raise ValueError(f"{case.name}: every reference needs a diameter > 0 mm")


def match_case(case: DetectionCase, ignored_min_diameter_mm: float = DEFAULT_IGNORED_DIAMETER_MM) -> CaseMatch:
    """Match one scan's predictions to its references and ignored findings (rules in the module doc).

    `ignored_min_diameter_mm` is the diameter given to ignored findings without a size (<= 0 mm).
    """
    scores = np.array([p.score for p in case.predictions], dtype=np.float64)
    _validate(case, scores)
    pred = _centres(case.predictions)
    ref_d = np.array([r.diameter_mm for r in case.references], dtype=np.float64)
    on_ref = _hits(pred, case.references, ref_d)
    masked = np.where(on_ref, scores[:, None], -np.inf)
    detection = masked.max(axis=0, initial=-np.inf)
    winners = {int(i) for i, hit in zip(masked.argmax(axis=0), on_ref.any(axis=0)) if hit} if len(pred) else set()
    hit_any = on_ref.any(axis=1)
    ign_d = np.array([f.diameter_mm for f in case.ignored], dtype=np.float64)
    ign_d = np.where(ign_d > 0, ign_d, ignored_min_diameter_mm)
    on_ignored = _hits(pred, case.ignored, ign_d).any(axis=1) & ~hit_any
    fp = ~hit_any & ~on_ignored
    return CaseMatch(detection_scores=detection, false_positive_scores=scores[fp],
                     n_ignored=int(on_ignored.sum()), n_duplicates=int(hit_any.sum()) - len(winners))


def _with_min_diameter(case: DetectionCase, min_diameter_mm: float) -> DetectionCase:
    """References smaller than min_diameter_mm become ignored findings (marks on them are left out)."""
    if min_diameter_mm <= 0:
        return case
    small = [r for r in case.references if r.diameter_mm < min_diameter_mm]
    big = [r for r in case.references if r.diameter_mm >= min_diameter_mm]
    return replace(case, references=big, ignored=[*case.ignored, *small])


# ---------------------------------------------------------------- FROC over many scans


@dataclass(frozen=True)
class _Pool:
    """Every detected reference and false positive of all scans, sorted by score (descending), once."""

    scores: np.ndarray
    is_tp: np.ndarray
    scan: np.ndarray  # index of the scan each item comes from
    ends: np.ndarray  # last item of each block of equal scores: one curve point per threshold
    n_refs: np.ndarray  # per scan, detected or not


def _pool(matches: list[CaseMatch]) -> _Pool:
    scores, is_tp, scan = [], [], []
    for i, m in enumerate(matches):
        det = m.detection_scores[np.isfinite(m.detection_scores)]
        for arr, tp in ((det, True), (m.false_positive_scores, False)):
            scores.append(arr)
            is_tp.append(np.full(arr.size, tp))
            scan.append(np.full(arr.size, i))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if scores.size else np.zeros(0, int)
    n_refs = np.array([m.detection_scores.size for m in matches], dtype=np.float64)
    return _Pool(scores, np.concatenate(is_tp or [np.zeros(0, bool)])[order],
                 np.concatenate(scan or [np.zeros(0, int)])[order], ends, n_refs)


def _curve(pool: _Pool, scan_weights: np.ndarray):
    """(fps, sens) of the FROC with each scan counted scan_weights times (1 = as is; bootstrap counts)."""
    w = scan_weights[pool.scan]
    tp = np.concatenate([[0.0], np.cumsum(w * pool.is_tp)[pool.ends]])
    fp = np.concatenate([[0.0], np.cumsum(w * ~pool.is_tp)[pool.ends]])
    n_refs = float(scan_weights @ pool.n_refs)
    sens = tp / n_refs if n_refs > 0 else np.full(tp.size, math.nan)
    return fp / scan_weights.sum(), sens


def sensitivity_at(fps: np.ndarray, sens: np.ndarray, rates) -> np.ndarray:
    """Linear interpolation of the curve at `rates`, the same as LUNA16's np.interp(rates, fps, sens).

    fps repeats values (vertical steps); np.interp then uses the last point at that rate (the highest
    sensitivity reached there). Written out so it does not rest on np.interp's handling of ties.
    """
    rates = np.asarray(rates, np.float64)
    last = fps.size - 1
    j = np.clip(np.searchsorted(fps, rates, side="right") - 1, 0, last)
    k = np.minimum(j + 1, last)
    span = fps[k] - fps[j]
    frac = np.where(span > 0, (rates - fps[j]) / np.where(span > 0, span, 1.0), 0.0)
    return sens[j] + frac * (sens[k] - sens[j])


def _matches(cases, min_diameter_mm, ignored_min_diameter_mm) -> list[CaseMatch]:
    cases = list(cases)
    if not cases:
        raise ValueError("no cases to evaluate")
    return [match_case(_with_min_diameter(c, min_diameter_mm), ignored_min_diameter_mm) for c in cases]


def froc(cases, fp_rates=LUNA16_FP_RATES, min_diameter_mm: float = 0.0,
         ignored_min_diameter_mm: float = DEFAULT_IGNORED_DIAMETER_MM) -> FrocResult:
    """FROC curve, sensitivity at each FP rate and CPM over the scans (rules in the module doc)."""
    matches = _matches(cases, min_diameter_mm, ignored_min_diameter_mm)
    return _result(_pool(matches), matches, tuple(float(r) for r in fp_rates), min_diameter_mm)


def _result(pool: _Pool, matches, fp_rates, min_diameter_mm) -> FrocResult:
    fps, sens = _curve(pool, np.ones(len(matches)))
    at = sensitivity_at(fps, sens, fp_rates)
    return FrocResult(
        fp_rates=fp_rates, sensitivities=tuple(float(s) for s in at), cpm=float(np.mean(at)),
        curve_fps=fps, curve_sensitivities=sens,
        curve_thresholds=np.concatenate([[np.inf], pool.scores[pool.ends]]),
        n_scans=len(matches), n_references=int(pool.n_refs.sum()), n_detected=int(pool.is_tp.sum()),
        n_false_positives=int((~pool.is_tp).sum()), min_diameter_mm=float(min_diameter_mm))


def _groups(cases) -> np.ndarray:
    """Resampling unit of each scan: its patient, else the scan itself."""
    keys = [c.patient if c.patient is not None else f"\0scan:{c.name}:{i}" for i, c in enumerate(cases)]
    return np.unique(np.array(keys, dtype=object).astype(str), return_inverse=True)[1]


def _percentiles(values: np.ndarray):
    """(low, high) per column over the finite replicates (a replicate with no reference is NaN)."""
    alpha = (1.0 - CI_LEVEL) / 2.0
    lo, hi = np.full(values.shape[1], math.nan), np.full(values.shape[1], math.nan)
    for i in range(values.shape[1]):
        v = values[:, i][np.isfinite(values[:, i])]
        if v.size:
            lo[i], hi[i] = np.quantile(v, [alpha, 1.0 - alpha])
    return lo, hi


def froc_bootstrap(cases, n_boot: int = 1000, seed: int = 0, fp_rates=LUNA16_FP_RATES, min_diameter_mm: float = 0.0,
                   ignored_min_diameter_mm: float = DEFAULT_IGNORED_DIAMETER_MM) -> FrocResult:
    """froc() plus 95% CIs of each sensitivity and of the CPM, resampling scans (or patients)."""
    cases = list(cases)
    matches = _matches(cases, min_diameter_mm, ignored_min_diameter_mm)
    pool = _pool(matches)
    fp_rates = tuple(float(r) for r in fp_rates)
    result = _result(pool, matches, fp_rates, min_diameter_mm)
    groups = _groups(cases)
    n_groups = int(groups.max()) + 1
    value = np.array([*result.sensitivities, result.cpm])
    if n_boot > 0 and n_groups > 1:
        reps = np.empty((n_boot, value.size))
        for b, w in enumerate(_weights(n_groups, n_boot, seed)):
            fps, sens = _curve(pool, w[groups])  # each scan counts as often as its patient was drawn
            at = sensitivity_at(fps, sens, fp_rates)
            reps[b] = [*at, at.mean()]
        lo, hi = _percentiles(reps)
    elif n_groups == 1:
        lo = hi = value  # one patient: nothing to resample; the interval is degenerate
    else:
        lo = hi = np.full(value.size, math.nan)
    ci = {"level": CI_LEVEL, "n_boot": int(n_boot), "n_groups": n_groups,
          "sensitivity_low": tuple(float(x) for x in lo[:-1]), "sensitivity_high": tuple(float(x) for x in hi[:-1]),
          "cpm_low": float(lo[-1]), "cpm_high": float(hi[-1])}
    return replace(result, ci=ci)


# ---------------------------------------------------------------- reporting


def rate_label(rate: float) -> str:
    """0.125 -> '1/8', 2.0 -> '2'."""
    f = Fraction(rate).limit_denominator(1024)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _fmt(x: float, spec: str = ".3f") -> str:
    return format(x, spec) if math.isfinite(x) else "-"


def format_froc_table(rows: dict[str, FrocResult]) -> str:
    """Plain-text table: one line per named result; sensitivity at each FP rate, CPM, counts, FP/scan."""
    if not rows:
        return ""
    rates = next(iter(rows.values())).fp_rates
    if any(r.fp_rates != rates for r in rows.values()):
        raise ValueError("all results of one table need the same FP rates")
    with_ci = any(r.ci for r in rows.values())
    header = ["", *(rate_label(x) for x in rates), "CPM", *(["CPM 95% CI"] if with_ci else []),
              "refs", "scans", "FP/scan"]
    lines = [header]
    for name, r in rows.items():
        ci = [f"{_fmt(r.ci['cpm_low'])}-{_fmt(r.ci['cpm_high'])}" if r.ci else "-"] if with_ci else []
        lines.append([name, *(_fmt(s) for s in r.sensitivities), _fmt(r.cpm), *ci,
                      str(r.n_references), str(r.n_scans), _fmt(r.fp_per_scan, ".2f")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    # names left-aligned, numbers right-aligned so the decimals line up
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     .rstrip() for line in lines) + "\n"


def _plain(x):
    """JSON-safe: numpy -> Python, non-finite floats (+-inf thresholds, NaN) -> None."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def froc_to_json(result: FrocResult) -> dict:
    """Plain dict of the result (floats, ints, lists, None for non-finite numbers)."""
    return _plain({
        "fp_rates": result.fp_rates, "sensitivities": result.sensitivities, "cpm": result.cpm,
        "n_scans": result.n_scans, "n_references": result.n_references, "n_detected": result.n_detected,
        "n_false_positives": result.n_false_positives, "fp_per_scan": result.fp_per_scan,
        "min_diameter_mm": result.min_diameter_mm,
        "curve": {"fps": result.curve_fps, "sensitivities": result.curve_sensitivities,
                  "thresholds": result.curve_thresholds},
        "ci": result.ci,
    })


def _legend(label: str, r: FrocResult) -> str:
    text = f"{label}: CPM {_fmt(r.cpm)}"
    if r.ci:
        text += f" [{_fmt(r.ci['cpm_low'])}, {_fmt(r.ci['cpm_high'])}]"
    return text + f" ({r.n_references} nodules, {r.n_scans} scans)"


def plot_froc(result, path, title: str | None = None) -> Path:
    """FROC plot (PNG, log2 FP/scan axis 1/8..8), one curve per result; CI band when bootstrapped.

    `result` is a FrocResult or a {label: FrocResult} dict to draw several curves on one plot.
    """
    from .plots import _plt, _save

    results = result if isinstance(result, dict) else {"detector": result}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    lo_x, hi_x = LUNA16_FP_RATES[0], LUNA16_FP_RATES[-1]
    xs = np.geomspace(lo_x, hi_x, 257)
    for label, r in results.items():
        # the curve as LUNA16 draws it: interpolated at the plotted FP rates
        (line,) = ax.plot(xs, sensitivity_at(r.curve_fps, r.curve_sensitivities, xs), lw=1.6,
                          label=_legend(label, r))
        ax.plot(r.fp_rates, r.sensitivities, "o", ms=4, color=line.get_color(), clip_on=False)  # visible at 1.0
        if r.ci:
            ax.fill_between(r.fp_rates, r.ci["sensitivity_low"], r.ci["sensitivity_high"], color=line.get_color(),
                            alpha=0.2, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_xlim(lo_x, hi_x)
    ax.set_xticks(LUNA16_FP_RATES, [rate_label(x) for x in LUNA16_FP_RATES])
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("average false positives per scan")
    ax.set_ylabel("sensitivity")
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    band = " (band: 95% bootstrap CI)" if any(r.ci for r in results.values()) else ""
    ax.set_title((title or "FROC") + band, fontsize=10)
    return _save(fig, path)
