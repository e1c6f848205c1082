"""Agreement plots as PNG: Bland-Altman and scatter of volumes, Dice box plots, lung vs nodule Dice.

Every function takes the per-case rows ({case, class, metrics...}) and a path, writes one PNG
and returns its path, or None when the data cannot make that plot (e.g. no nodule class).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .classes import CLASS_TITLES

CLASS_COLOURS = {"right_lung": "#1f77b4", "left_lung": "#2ca02c", "both_lungs": "#17becf", "nodule": "#d62728"}
DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, rect=None) -> Path:
    from ..io import atomic_path

    path = Path(path)
    fig.tight_layout(rect=rect)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    _plt().close(fig)
    return path


def _classes(rows):
    return list(dict.fromkeys(r["class"] for r in rows))


def _col(rows, cls, key):
    return np.array([_f(r.get(key)) for r in rows if r["class"] == cls], dtype=float)


def _f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _grid(n):
    """n panels: one row up to 3, else two columns; unused panels are hidden."""
    plt = _plt()
    ncols = n if n <= 3 else 2
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.9 * nrows + 0.4), squeeze=False)
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _volumes(rows, cls):
    """Predicted and reference volumes (mL) of one class, cases where both are known."""
    p, q = _col(rows, cls, "vol_pred_ml"), _col(rows, cls, "vol_ref_ml")
    ok = np.isfinite(p) & np.isfinite(q)
    return p[ok], q[ok]


def _volume_panels(rows, path, title: str, draw):
    """One panel per class of the paired volumes: draw(ax, cls, predicted, reference)."""
    classes = _classes(rows)
    if not classes:
        return None
    fig, axes = _grid(len(classes))
    for ax, cls in zip(axes, classes):
        draw(ax, cls, *_volumes(rows, cls))
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def bland_altman_volumes(rows, path):
    """Difference (pred - ref) against mean volume, with bias and 95% limits of agreement."""
    def draw(ax, cls, p, q):
        mean, diff = (p + q) / 2, p - q
        ax.scatter(mean, diff, s=22, color=CLASS_COLOURS.get(cls), alpha=0.8, edgecolor="k", linewidth=0.3)
        if diff.size:
            bias = diff.mean()
            sd = diff.std(ddof=1) if diff.size > 1 else 0.0
            ax.axhline(bias, color="k", lw=1, label=f"bias {bias:+.3g} mL")
            for s in (-1.96, 1.96):
                ax.axhline(bias + s * sd, color="k", lw=1, ls="--")
            ax.axhline(0, color="0.7", lw=0.8)
            ax.legend(loc="best", fontsize=8, title=f"LoA ±{1.96 * sd:.3g} mL", title_fontsize=8)
        ax.set_title(f"{CLASS_TITLES.get(cls, cls)} (n={diff.size})")
        ax.set_xlabel("mean of predicted and reference volume (mL)")
        ax.set_ylabel("predicted − reference (mL)")

    return _volume_panels(rows, path, "Bland-Altman agreement of volumes", draw)


def volume_scatter(rows, path):
    """Predicted vs reference volume with the identity line and Pearson r."""
    def draw(ax, cls, p, q):
        ax.scatter(q, p, s=22, color=CLASS_COLOURS.get(cls), alpha=0.8, edgecolor="k", linewidth=0.3)
        both = np.concatenate([p, q])
        lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 1.0
        lo, hi = max(lo - pad, 0.0), hi + pad
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--")
        r = np.corrcoef(p, q)[0, 1] if p.size > 2 and p.std() > 0 and q.std() > 0 else math.nan
        ax.set_title(f"{CLASS_TITLES.get(cls, cls)}: r = {r:.3f} (n={p.size})" if math.isfinite(r)
                     else f"{CLASS_TITLES.get(cls, cls)} (n={p.size})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("reference volume (mL)")
        ax.set_ylabel("predicted volume (mL)")

    return _volume_panels(rows, path, "Predicted vs reference volume (dashed: identity)", draw)


def dice_boxplot(rows, path, metric: str = "dice"):
    """Box plot of a per-case metric per class, every case drawn as a point."""
    classes = _classes(rows)
    data = [_col(rows, c, metric) for c in classes]
    data = [d[np.isfinite(d)] for d in data]
    if not any(d.size for d in data):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 * len(classes) + 2.5, 4))
    ax.boxplot([d if d.size else [np.nan] for d in data], widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, (cls, d) in enumerate(zip(classes, data), start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, s=14, color=CLASS_COLOURS.get(cls), alpha=0.8,
                   edgecolor="k", linewidth=0.3, zorder=3)
    ticks = [f"{CLASS_TITLES.get(c, c)}\n(n={d.size})" for c, d in zip(classes, data)]
    ax.set_xticks(range(1, len(classes) + 1), ticks)
    ax.set_ylabel(metric.replace("_", " "))
    lo = min(float(d.min()) for d in data if d.size)
    ax.set_ylim(min(lo - 0.05, 0.9) if metric in ("dice", "iou", "surface_dice") else None, 1.01)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{metric.replace('_', ' ').capitalize()} per class")
    return _save(fig, path)


def lung_vs_nodule_dice(rows, path):
    """Per-case lung Dice (both lungs, else the mean of the sides) against nodule Dice."""
    by_case: dict[str, dict] = {}
    for r in rows:
        by_case.setdefault(r["case"], {})[r["class"]] = _f(r.get("dice"))
    xs, ys = [], []
    for d in by_case.values():
        if "nodule" not in d:
            continue
        sides = [d[c] for c in ("right_lung", "left_lung") if c in d and math.isfinite(d[c])]
        lung = d.get("both_lungs", float(np.mean(sides)) if sides else math.nan)
        if math.isfinite(lung) and math.isfinite(d["nodule"]):
            xs.append(lung)
            ys.append(d["nodule"])
    if not xs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(xs, ys, s=26, color=CLASS_COLOURS["nodule"], alpha=0.8, edgecolor="k", linewidth=0.3)
    ax.set_xlabel("lung Dice (both lungs)")
    ax.set_ylabel("nodule Dice")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_title(f"Lung vs nodule Dice per case (n={len(xs)})")
    return _save(fig, path)


def robustness_plot(result: dict, path):
    """Dice against perturbation magnitude, one panel per perturbation type (see robustness.py)."""
    kinds = list(dict.fromkeys(p["kind"] for p in result["points"]))
    classes = list(result["baseline"])
    if not kinds:
        return None
    fig, axes = _grid(len(kinds))
    units = result.get("units", {})
    for ax, kind in zip(axes, kinds):
        pts = [p for p in result["points"] if p["kind"] == kind]
        for cls in classes:
            mags = sorted({p["magnitude"] for p in pts})
            mean = [np.nanmean([p[cls] for p in pts if p["magnitude"] == m]) for m in mags]
            std = [np.nanstd([p[cls] for p in pts if p["magnitude"] == m]) for m in mags]
            colour = CLASS_COLOURS.get(cls)
            ax.errorbar(mags, mean, yerr=std, marker="o", ms=4, capsize=3, color=colour,
                        label=CLASS_TITLES.get(cls, cls))
            ax.axhline(result["baseline"][cls], color=colour, lw=0.8, ls=":")
        s = result["summary"][kind]
        stats = "\n".join(f"{CLASS_TITLES.get(c, c)}: {s[c]['mean']:.3f} ± {s[c]['std']:.3f}" for c in classes)
        ax.set_title(f"{kind}: mean ± std of Dice\n{stats}", fontsize=9)
        ax.set_xlabel(f"{kind} ({units.get(kind, '')})")
        ax.set_ylabel("Dice")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("Dice under input perturbations (dotted: unperturbed)", fontsize=11)
    return _save(fig, path, rect=(0, 0.05, 1, 1))


def reader_agreement_plot(per_reader: dict[str, np.ndarray], path, title: str):
    """Box plot of Dice against the consensus of the other readers, one box per reader slot."""
    names = list(per_reader)
    data = [np.asarray(per_reader[n], float) for n in names]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.5 * len(names) + 2.5, 4))
    ax.boxplot(data, widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, d.size), d, s=3, color="#555", alpha=0.25, zorder=3)
        ax.scatter([i], [d.mean()], marker="D", color="#d62728", zorder=4, s=30)
    ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n={d.size})" for n, d in zip(names, data)])
    ax.set_ylabel("Dice vs consensus of the other readers")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title + "  (red diamond: mean)", fontsize=10)
    return _save(fig, path)
