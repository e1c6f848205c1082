"""Summaries with bootstrap 95% confidence intervals that resample patients, not slices or cases.

Cases of one patient are correlated (slices of one nodule, scans of one person), so the bootstrap
draws whole patients with replacement (a cluster bootstrap) and recomputes the statistic over all
their cases; the interval is the 2.5th..97.5th percentile of n_boot such statistics. Without a
patient column every case is its own patient. Undefined values (NaN, e.g. HD95 against an empty
mask) are left out of means and counted in n_undefined.
"""
from __future__ import annotations

import math

import numpy as np

from .lesions import BIN_NAMES
from .metrics import FLAG_COLUMNS, METRICS

CI_LEVEL = 0.95


def _weights(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_groups) resampling counts: how often each patient is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)


def _group_sums(values, groups):
    keys, inv = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return np.bincount(inv, weights=values, minlength=len(keys)), len(keys), inv


def cluster_bootstrap_ratio(num, den, groups, n_boot: int = 1000, seed: int = 0) -> dict:
    """sum(num) / sum(den) with a patient-resampling CI (a mean is num=values, den=1)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if den.sum() <= 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_patients": 0}
    num_g, n_groups, _ = _group_sums(num, groups)
    den_g, _, _ = _group_sums(den, groups)
    value = num_g.sum() / den_g.sum()
    lo = hi = math.nan
    if n_boot > 0 and n_groups > 1:
        w = _weights(n_groups, n_boot, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (w @ num_g) / (w @ den_g)
        boot = boot[np.isfinite(boot)]
        if boot.size:
            alpha = (1.0 - CI_LEVEL) / 2.0
            lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    elif n_groups == 1:
        lo = hi = value  # one patient: nothing to resample; the interval is degenerate
    return {"value": float(value), "ci_low": float(lo), "ci_high": float(hi), "n_patients": int(n_groups)}


def describe(values, groups=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """n, n_undefined, mean with patient-bootstrap CI, std, median, min, max of finite values."""
    values = np.asarray(values, np.float64)
    groups = np.arange(len(values)) if groups is None else np.asarray(groups, dtype=object)
    ok = np.isfinite(values)
    out = {"n": int(ok.sum()), "n_undefined": int((~ok).sum())}
    if not ok.any():
        return {**out, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "std": math.nan,
                "median": math.nan, "min": math.nan, "max": math.nan, "n_patients": 0}
    ci = cluster_bootstrap_ratio(values[ok], np.ones(ok.sum()), groups[ok], n_boot, seed)
    v = values[ok]
    return {**out, "mean": float(v.mean()), "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "median": float(np.median(v)),
            "min": float(v.min()), "max": float(v.max()), "n_patients": ci["n_patients"]}


def summarise(rows: list[dict], n_boot: int = 1000, seed: int = 0, metrics=None) -> list[dict]:
    """One summary row per (class, metric) over per-case rows ({case, patient, class, metrics...})."""
    metrics = tuple(metrics or (*METRICS, "lesion_recall", "lesions_fp"))
    out = []
    for cls in dict.fromkeys(r["class"] for r in rows):
        sub = [r for r in rows if r["class"] == cls]
        groups = [r.get("patient") or r["case"] for r in sub]
        for m in metrics:
            if not any(m in r for r in sub):
                continue
            stats = describe([_num(r.get(m)) for r in sub], groups, n_boot, seed)
            out.append({"class": cls, "metric": m, **stats})
        if "dice" in metrics and any("dice" in r for r in sub):
            # empty references score 1 (or 0): the Dice over the others is what a lesion model is judged on
            keep = [r for r in sub if _num(r.get("empty_ref")) != 1.0]
            stats = describe([_num(r.get("dice")) for r in keep], [r.get("patient") or r["case"] for r in keep],
                             n_boot, seed)
            out.append({"class": cls, "metric": "dice_ref_nonempty", **stats})
        for flag in FLAG_COLUMNS:
            out.append({"class": cls, "metric": f"n_{flag}", "n": len(sub), "n_undefined": 0,
                        "mean": float(sum(_num(r.get(flag)) == 1.0 for r in sub))})
    return out


def summarise_lesions(rows: list[dict], n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Pooled lesion recall (overall and per diameter bin) and false positives per case, with CIs.

    Works on the nodule rows of the per-case table (their lesion count columns), so the
    resampling unit stays the patient.
    """
    sub = [r for r in rows if r["class"] == "nodule" and "lesions_ref" in r]
    if not sub:
        return []
    groups = [r.get("patient") or r["case"] for r in sub]
    col = lambda k: np.array([_num(r.get(k)) for r in sub])  # noqa: E731
    out = []
    quantities = [("lesion_recall", "lesions_hit", "lesions_ref")]
    quantities += [(f"lesion_recall_{b}", f"lesions_hit_{b}", f"lesions_ref_{b}") for b in BIN_NAMES]
    for name, num_key, den_key in quantities:
        num, den = col(num_key), col(den_key)
        ci = cluster_bootstrap_ratio(num, den, groups, n_boot, seed)
        out.append({"quantity": name, **ci, "numerator": int(num.sum()), "denominator": int(den.sum())})
    fp = col("lesions_fp")
    ci = cluster_bootstrap_ratio(fp, np.ones(len(fp)), groups, n_boot, seed)
    out.append({"quantity": "fp_per_case", **ci, "numerator": int(fp.sum()), "denominator": len(fp)})
    pred = col("lesions_pred")
    tp = pred - fp
    ci = cluster_bootstrap_ratio(tp, pred, groups, n_boot, seed)
    out.append({"quantity": "lesion_precision", **ci, "numerator": int(tp.sum()), "denominator": int(pred.sum())})
    return out


def volume_agreement(rows: list[dict]) -> list[dict]:
    """Bland-Altman bias and 95% limits of agreement of volumes, and Pearson r, per class."""
    out = []
    for cls in dict.fromkeys(r["class"] for r in rows):
        p = np.array([_num(r.get("vol_pred_ml")) for r in rows if r["class"] == cls])
        q = np.array([_num(r.get("vol_ref_ml")) for r in rows if r["class"] == cls])
        ok = np.isfinite(p) & np.isfinite(q)
        p, q = p[ok], q[ok]
        d = p - q
        sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
        r = float(np.corrcoef(p, q)[0, 1]) if d.size > 2 and p.std() > 0 and q.std() > 0 else math.nan
        bias = float(d.mean()) if d.size else math.nan
        out.append({"class": cls, "n": int(d.size), "bias_ml": bias, "sd_ml": sd,
                    "loa_low_ml": bias - 1.96 * sd, "loa_high_ml": bias + 1.96 * sd, "pearson_r": r})
    return out


def _num(v) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
