"""Figures of a malignancy classifier: ROC AUC with a patient-resampling bootstrap CI, accuracy,
sensitivity and specificity at a threshold, calibration (reliability bins, Brier score)."""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata


def roc_auc(y, s) -> float:
    """Mann-Whitney AUC (ties count half); NaN without both classes."""
    y, s = np.asarray(y, bool), np.asarray(s, float)
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return math.nan
    ranks = rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def bootstrap_auc(y, s, patients, n_boot: int = 1000, seed: int = 0) -> dict:
    """AUC and its 95% CI, resampling patients (a patient's nodules are drawn together)."""
    y, s = np.asarray(y, bool), np.asarray(s, float)
    keys, inv = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    members = [np.nonzero(inv == k)[0] for k in range(len(keys))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = np.concatenate([members[k] for k in rng.integers(0, len(keys), len(keys))])
        v = roc_auc(y[idx], s[idx])
        if not math.isnan(v):
            values.append(v)
    lo, hi = (np.percentile(values, [2.5, 97.5]) if values else (math.nan, math.nan))
    return {"auc": roc_auc(y, s), "ci_low": float(lo), "ci_high": float(hi), "n": int(len(y)),
            "n_malignant": int(y.sum()), "n_patients": int(len(keys))}


def youden_threshold(y, s) -> float:
    """The score threshold maximising sensitivity + specificity (chosen on validation only)."""
    y, s = np.asarray(y, bool), np.asarray(s, float)
    best, best_t = -1.0, 0.5
    for t in np.unique(s):
        j = (s[y] >= t).mean() + (s[~y] < t).mean()
        if j > best:
            best, best_t = j, float(t)
    return best_t


def at_threshold(y, s, t: float) -> dict:
    y, p = np.asarray(y, bool), np.asarray(s, float) >= t
    return {"threshold": float(t), "accuracy": float((p == y).mean()),
            "sensitivity": float(p[y].mean()) if y.any() else math.nan,
            "specificity": float((~p[~y]).mean()) if (~y).any() else math.nan}


def calibration(y, p, bins: int = 5) -> dict:
    """Reliability bins (mean predicted vs observed malignant fraction) and the Brier score."""
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 0, 1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    rows = [{"low": float(edges[b]), "high": float(edges[b + 1]), "n": int((which == b).sum()),
             "predicted": float(p[which == b].mean()) if (which == b).any() else math.nan,
             "observed": float(y[which == b].mean()) if (which == b).any() else math.nan} for b in range(bins)]
    return {"bins": rows, "brier": float(((p - y) ** 2).mean())}
