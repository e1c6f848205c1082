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


def warm_up() -> "threading.Thread":
    """Import matplotlib and load its fonts and PNG writer on a daemon thread; join it before
    rendering. A one-shot `lungseg segment --preview` paid ~0.5 s for this after the networks;
    started before them it runs while they do (the runtimes release the GIL)."""
    import threading

    def work():
        import io

        from matplotlib import patheffects
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch  # noqa: F401 (the legend's, imported here once)

        fig = Figure(figsize=(1, 1))
        fig.text(0.5, 0.5, "R", path_effects=[patheffects.withStroke(linewidth=1)])
        FigureCanvasAgg(fig).print_png(io.BytesIO())

    thread = threading.Thread(target=work, name="preview-warm-up", daemon=True)
    thread.start()
    return thread


def _window(ct: CTImage) -> tuple[float, float]:
    if ct.is_hu:
        return -1350.0, 150.0  # lung window L-600 / W1500
    lo, hi = np.percentile(ct.array, [1, 99])
    return float(lo), float(hi)


def _centre(labels: np.ndarray, largest: np.ndarray | None = None) -> tuple[int, int, int]:
    """Slice indices through the largest nodule when there is one (a preview that misses the
    finding a reader looks for shows the wrong thing), else through the middle of the lungs (or
    of the volume when empty). largest: that nodule's voxels when the caller has them."""
    largest = _largest_nodule_voxels(labels) if largest is None else largest
    if largest is not None:
        return _nodule_planes(largest)
    fg = np.argwhere(labels > 0)
    if len(fg) == 0:
        return tuple(s // 2 for s in labels.shape)
    # the axial slice with the most lung shows both lungs best
    z = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    y, x = np.median(fg[:, 1:], axis=0).astype(int)
    return z, int(y), int(x)


def _largest_nodule_voxels(labels: np.ndarray) -> np.ndarray | None:
    """(n, 3) voxel indices of the largest connected label-3 region (26-connected, as the
    report's nodules), or None without nodules. Labelled inside the nodules' bounding box only:
    on a 512x512x300 scan the whole-volume labelling took ~1 s of a ~10 s run."""
    import cc3d

    box = _nodule_box(labels)
    if box is None:
        return None
    components = cc3d.connected_components(labels[box] == 3, connectivity=26)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return np.argwhere(components == int(np.argmax(sizes))) + [s.start for s in box]


def _nodule_box(labels: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of label 3, found slab by slab (z first) so the whole volume is compared once."""
    planes = np.flatnonzero([(plane == 3).any() for plane in labels])
    if not len(planes):
        return None
    slab = labels[planes[0]:planes[-1] + 1] == 3
    rows = np.flatnonzero(slab.any(axis=(0, 2)))
    cols = np.flatnonzero(slab.any(axis=(0, 1)))
    return slice(planes[0], planes[-1] + 1), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _nodule_planes(voxels: np.ndarray) -> tuple[int, int, int]:
    """(z, y, x) through a nodule: the axial slice where it is widest, the coronal and sagittal
    planes through its centroid."""
    z = int(np.bincount(voxels[:, 0]).argmax())
    y, x = np.rint(voxels[:, 1:].mean(axis=0)).astype(int)
    return z, int(y), int(x)


def nodule_caption(voxels: np.ndarray | None, nodules: list[dict] | None) -> str | None:
    """One line on the nodule the planes go through: the report entry whose centroid is that of
    `voxels` (the report's nodules are the same 26-connected components), with its size,
    detection score and malignancy score/class when the report has them."""
    if voxels is None or not nodules:
        return None
    centroid = voxels.mean(axis=0)
    entry = min(nodules, key=lambda n: float(np.abs(np.asarray(n.get("centroid_index_zyx", [np.inf] * 3))
                                                    - centroid).sum()))
    head = f"nodule #{entry['id']}" if entry.get("id") is not None else "nodule"
    parts = [f"{head}: {entry['diameter_mm']:.0f} mm" if entry.get("diameter_mm") is not None else head]
    if entry.get("detection_score") is not None:
        parts.append(f"detection score {entry['detection_score']:.2f}")
    if entry.get("malignancy_score") is not None:
        parts.append(f"malignancy {entry['malignancy_score']:.2f} ({entry.get('malignancy_class', '')}; "
                     "readers' suspicion, not a diagnosis)")
    return ", ".join(parts)


def _rgba(labels: np.ndarray, low_conf: np.ndarray | None, alpha: float) -> np.ndarray:
    from matplotlib.colors import to_rgba

    out = np.zeros(labels.shape + (4,), dtype=np.float32)
    for value, (_, colour) in LABEL_COLOURS.items():
        out[labels == value] = to_rgba(colour, alpha)
    if low_conf is not None:
        out[low_conf] = to_rgba(LOW_CONFIDENCE_COLOUR[1], min(1.0, alpha + 0.3))
    return out


def render_preview(ct: CTImage, labels: np.ndarray, path, low_confidence: np.ndarray | None = None,
                   title: str | None = None, alpha: float = 0.45, nodules: list[dict] | None = None) -> Path:
    """Write a PNG with the three mid-lung planes (one axial panel for 2D input). nodules: the
    report's nodule list, for a caption on the nodule the planes go through."""
    from matplotlib.figure import Figure  # not pyplot: no global state, safe in web worker threads
    from matplotlib.patches import Patch

    vmin, vmax = _window(ct)
    largest = _largest_nodule_voxels(labels)
    z, y, x = _centre(labels, largest)
    caption = nodule_caption(largest, nodules)
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
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]  # readable on bright chest wall too
    for x, side in ((0.01, "R"), (0.97, "L")):
        axes[0].text(x, 0.5, side, color="white", transform=axes[0].transAxes, fontsize=13, va="center",
                     path_effects=outline)
    shown = np.unique(np.concatenate([np.unique(v[2]) for v in views]))  # the legend names what the panels show
    present = [v for v in LABEL_COLOURS if v in shown] or [1, 2]
    handles = [Patch(color=LABEL_COLOURS[v][1], label=LABEL_COLOURS[v][0]) for v in present]
    if low_confidence is not None and low_confidence.any():
        handles.append(Patch(color=LOW_CONFIDENCE_COLOUR[1], label=LOW_CONFIDENCE_COLOUR[0]))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, labelcolor="white")
    fig.suptitle(title or Path(ct.source).name or "lungseg", color="white", fontsize=12)
    bottom = 0.06
    if caption:  # above the legend, wrapped to the panels' width (one panel for 2D input)
        import textwrap

        lines = textwrap.wrap(caption, 60 * len(views))  # ~8 px a character at 10 pt
        fig.text(0.5, 0.075, "\n".join(lines), color="white", fontsize=10, ha="center", va="bottom")
        bottom = 0.075 + 0.04 * len(lines)
    fig.tight_layout(rect=(0, bottom, 1, 0.95))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, facecolor="black", format="png")
    return path
