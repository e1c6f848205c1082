"""Preview PNG: axial, coronal and sagittal slices through the lungs with coloured overlays.

Arrays are canonical LPS, so the axial view shows the patient's right on the image left
(radiological convention) and the coronal/sagittal views are drawn with superior at the top.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import CTImage, atomic_path

LABEL_COLOURS = {1: ("right lung", "#2f8cff"), 2: ("left lung", "#2ecc40"), 3: ("nodule", "#ff4136")}
LOW_CONFIDENCE_COLOUR = ("low confidence", "#ffdc00")
MIN_SLICES_FOR_REFORMATS = 8  # fewer slices make coronal/sagittal views mere lines


def _window(ct: CTImage) -> tuple[float, float]:
    if ct.is_hu:
        return -1350.0, 150.0  # lung window L-600 / W1500
    lo, hi = np.percentile(ct.array, [1, 99])
    return float(lo), float(hi)


def _centre(labels: np.ndarray) -> tuple[int, int, int]:
    """Slice indices through the largest nodule when there is one (a preview that misses the
    finding a reader looks for shows the wrong thing), else through the middle of the lungs (or
    of the volume when empty)."""
    nodule = _largest_nodule(labels)
    if nodule is not None:
        return nodule
    fg = np.argwhere(labels > 0)
    if len(fg) == 0:
        return tuple(s // 2 for s in labels.shape)
    # the axial slice with the most lung shows both lungs best
    z = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    y, x = np.median(fg[:, 1:], axis=0).astype(int)
    return z, int(y), int(x)


def _largest_nodule(labels: np.ndarray) -> tuple[int, int, int] | None:
    """(z, y, x) through the largest connected label-3 region: the axial slice where it is widest,
    the coronal and sagittal planes through its centroid."""
    import cc3d

    nodules = labels == 3
    if not nodules.any():
        return None
    components = cc3d.connected_components(nodules, connectivity=26)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    voxels = np.argwhere(components == int(np.argmax(sizes)))
    z = int(np.bincount(voxels[:, 0]).argmax())
    y, x = np.rint(voxels[:, 1:].mean(axis=0)).astype(int)
    return z, int(y), int(x)


def _rgba(labels: np.ndarray, low_conf: np.ndarray | None, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    out = np.zeros(labels.shape + (4,), dtype=np.float32)
    for value, (_, colour) in LABEL_COLOURS.items():
        out[labels == value] = to_rgba(colour, alpha)
    if low_conf is not None:
        out[low_conf] = to_rgba(LOW_CONFIDENCE_COLOUR[1], min(1.0, alpha + 0.3))
    return out


def render_preview(ct: CTImage, labels: np.ndarray, path, low_confidence: np.ndarray | None = None,
                   title: str | None = None, alpha: float = 0.45) -> Path:
    """Write a PNG with the three mid-lung planes (one axial panel for 2D input)."""
    from matplotlib.figure import Figure  # not pyplot: no global state, safe in web worker threads
    from matplotlib.patches import Patch

    vmin, vmax = _window(ct)
    z, y, x = _centre(labels)
    sx, sy, sz = ct.spacing
    views = [("axial", ct.array[z], labels[z], None if low_confidence is None else low_confidence[z], sy / sx, "upper")]
    if ct.shape[0] >= MIN_SLICES_FOR_REFORMATS:
        lc = low_confidence
        views += [
            ("coronal", ct.array[:, y, :], labels[:, y, :], None if lc is None else lc[:, y, :], sz / sx, "lower"),
            ("sagittal", ct.array[:, :, x], labels[:, :, x], None if lc is None else lc[:, :, x], sz / sy, "lower"),
        ]
    fig = Figure(figsize=(5.2 * len(views), 5.6), facecolor="black")
    axes = fig.subplots(1, len(views))
    axes = np.atleast_1d(axes)
    for ax, (name, img, lab, lc, aspect, origin) in zip(axes, views, strict=True):
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, origin=origin, interpolation="nearest")
        ax.imshow(_rgba(lab, lc, alpha), aspect=aspect, origin=origin, interpolation="nearest")
        ax.set_title(name, color="white", fontsize=11)
        ax.axis("off")
    axes[0].text(0.01, 0.5, "R", color="white", transform=axes[0].transAxes, fontsize=13, va="center")
    axes[0].text(0.97, 0.5, "L", color="white", transform=axes[0].transAxes, fontsize=13, va="center")
    present = [v for v in LABEL_COLOURS if (labels == v).any()] or [1, 2]
    handles = [Patch(color=LABEL_COLOURS[v][1], label=LABEL_COLOURS[v][0]) for v in present]
    if low_confidence is not None and low_confidence.any():
        handles.append(Patch(color=LOW_CONFIDENCE_COLOUR[1], label=LOW_CONFIDENCE_COLOUR[0]))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, labelcolor="white")
    fig.suptitle(title or Path(ct.source).name or "lungseg", color="white", fontsize=12)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, facecolor="black", format="png")
    return path
