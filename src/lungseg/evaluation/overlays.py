"""Sample overlays: CT, reference, prediction and mismatches (missed, extra, wrong side) as one PNG.

Display follows the canonical LPS arrays: an axial slice shows the patient's right on the image
left (radiological view), anterior up; coronal slices show superior up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .classes import LEFT, LUNG, NODULE, RIGHT
from .plots import _plt, _save

LABEL_COLOURS = {RIGHT: "#1f77b4", LEFT: "#2ca02c", NODULE: "#d62728", LUNG: "#17becf"}
LABEL_NAMES = {RIGHT: "right lung", LEFT: "left lung", NODULE: "nodule", LUNG: "lung"}
MISS, EXTRA, SWAP = "#ffd700", "#ff00ff", "#ff7f0e"  # missed (FN), extra (FP), wrong label
LUNG_WINDOW = (-1350.0, 150.0)  # L -600 / W 1500


def display_codes(labels: np.ndarray, classes) -> np.ndarray:
    """Collapse a canonical label map to what the scored classes can tell apart."""
    classes = set(classes)
    out = np.zeros(labels.shape, np.uint8)
    sides = {"right_lung", "left_lung"} & classes
    if sides:
        out[labels == RIGHT] = RIGHT
        out[labels == LEFT] = LEFT
    elif "both_lungs" in classes:
        out[np.isin(labels, (RIGHT, LEFT, LUNG))] = LUNG
    if "nodule" in classes:
        out[labels == NODULE] = NODULE
    elif "both_lungs" in classes and not sides:
        out[labels == NODULE] = LUNG  # nodules count as lung when only both lungs are scored
    return out


def _rgba(codes: np.ndarray, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    img = np.zeros((*codes.shape, 4))
    for code, colour in LABEL_COLOURS.items():
        img[codes == code] = to_rgba(colour, alpha)
    return img


def _mismatch_rgba(ref: np.ndarray, pred: np.ndarray) -> np.ndarray:
    from matplotlib.colors import to_rgba

    img = _rgba(np.where(ref == pred, ref, 0), 0.25)  # agreement, faint
    img[(ref > 0) & (pred == 0)] = to_rgba(MISS, 1.0)
    img[(ref == 0) & (pred > 0)] = to_rgba(EXTRA, 1.0)
    img[(ref > 0) & (pred > 0) & (ref != pred)] = to_rgba(SWAP, 1.0)
    return img


def _background(ct, shape, is_hu):
    if ct is None:
        return np.zeros(shape), (0.0, 1.0)
    ct = np.asarray(ct, np.float32)
    if is_hu:
        return ct, LUNG_WINDOW
    lo, hi = np.percentile(ct, [1, 99])
    return ct, (float(lo), float(hi if hi > lo else lo + 1))


def overlay_figure(ref: np.ndarray, pred: np.ndarray, path, classes, ct: np.ndarray | None = None,
                   spacing_zyx=(1.0, 1.0, 1.0), is_hu: bool = True, title: str = "") -> Path:
    """One PNG: rows are views (axial; coronal too for volumes), columns CT | reference |
    prediction | mismatch. The axial slice is the one with the most mismatching voxels (or the
    most foreground when prediction and reference agree everywhere)."""
    ref, pred = display_codes(np.asarray(ref), classes), display_codes(np.asarray(pred), classes)
    if ref.ndim == 2:
        ref, pred = ref[None], pred[None]
        ct = None if ct is None else np.asarray(ct)[None] if np.asarray(ct).ndim == 2 else ct
    bg, window = _background(ct, ref.shape, is_hu)
    diff = (ref != pred).sum(axis=(1, 2))
    fg = ((ref > 0) | (pred > 0)).sum(axis=(1, 2))
    k = int(np.argmax(diff)) if diff.any() else int(np.argmax(fg))
    sz, sy, sx = spacing_zyx
    views = [(f"axial slice {k}", bg[k], ref[k], pred[k], sy / sx)]
    if ref.shape[0] > 1:
        fg_cor = ((ref > 0) | (pred > 0)).sum(axis=(0, 2))
        j = int(np.argmax(fg_cor))
        flip = lambda a: np.flipud(a[:, j, :])  # noqa: E731  superior at the top
        views.append((f"coronal slice {j}", flip(bg), flip(ref), flip(pred), sz / sx))
    if "nodule" in set(classes):
        views += _nodule_zoom(bg, ref, pred, sy / sx)
    plt = _plt()
    fig, axes = plt.subplots(len(views), 4, figsize=(13, 3.3 * len(views) + 0.5), squeeze=False)
    for row, (name, b, r, p, aspect) in zip(axes, views, strict=True):
        for ax in row:
            ax.imshow(b, cmap="gray", vmin=window[0], vmax=window[1], aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[1].imshow(_rgba(r, 0.45), aspect=aspect, interpolation="nearest")
        row[2].imshow(_rgba(p, 0.45), aspect=aspect, interpolation="nearest")
        row[3].imshow(_mismatch_rgba(r, p), aspect=aspect, interpolation="nearest")
        n_bad = int((r != p).sum())
        for ax, label in zip(row, ("CT" if ct is not None else "(no CT given)", "reference", "prediction",
                                   f"mismatch ({n_bad} px)")):
            ax.set_title(f"{label} — {name}", fontsize=9)
    _legend(fig, ref, pred)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path, rect=(0, 0.05, 1, 1))


def _nodule_zoom(bg, ref, pred, aspect):
    """A zoomed axial view on nodules, which are too small to see in a whole slice: the slice
    with the most nodule mismatch (else the largest reference nodule), cropped around the
    reference nodule (else the predicted one)."""
    r_nod, p_nod = ref == NODULE, pred == NODULE
    if not (r_nod.any() or p_nod.any()):
        return []
    bad = (r_nod != p_nod).sum(axis=(1, 2))
    k = int(np.argmax(bad)) if bad.any() else int(np.argmax(r_nod.sum(axis=(1, 2))))
    target = r_nod[k] if r_nod[k].any() else p_nod[k] if p_nod[k].any() else (r_nod[k] != p_nod[k])
    if not target.any():
        return []
    ys, xs = np.nonzero(target)
    half = max(12, int(0.75 * max(np.ptp(ys), np.ptp(xs))) + 6)
    cy, cx = int(np.mean(ys)), int(np.mean(xs))
    box = (slice(max(cy - half, 0), cy + half + 1), slice(max(cx - half, 0), cx + half + 1))
    return [(f"nodule zoom, axial slice {k}", bg[k][box], ref[k][box], pred[k][box], aspect)]


def _legend(fig, ref, pred):
    from matplotlib.patches import Patch

    present = sorted(set(np.unique(ref)) | set(np.unique(pred)) - {0})
    handles = [Patch(color=LABEL_COLOURS[c], label=LABEL_NAMES[c]) for c in present if c in LABEL_COLOURS]
    handles += [Patch(color=MISS, label="missed (in reference only)"),
                Patch(color=EXTRA, label="extra (in prediction only)"), Patch(color=SWAP, label="wrong label")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
