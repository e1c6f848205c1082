"""A montage PNG of phantoms: axial, coronal and sagittal views (lung window L-600/W1500,
physical aspect ratio) and a row with the label overlay, one column per case; and a second one
(vessel_montage) of axial crops: vessels seen end-on, the hilum, tumours.

    python -m lungseg.synth.montage docs/synth_montage.png     # the picture in the docs
    python -m lungseg.synth.montage --vessels docs/phantom_vessels_and_tumours.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..io import atomic_path

WINDOW = (-1350.0, 150.0)  # L -600 / W 1500
LABEL_COLOURS = {1: (0.15, 0.55, 1.0), 2: (1.0, 0.75, 0.1), 3: (1.0, 0.15, 0.15)}


def _views(case):
    """Axial at the largest lung area, coronal through the lungs' centre, sagittal through the right lung."""
    ct, lab = case.ct.array, case.lung_labels()
    area = (lab > 0).sum(axis=(1, 2))
    z = int(np.argmax(area * (np.arange(len(area)) > 0.3 * len(area)))) if area.any() else ct.shape[0] // 2
    if case.nodules:  # show the largest nodule when there is one
        c = max(case.nodules, key=lambda n: n["diameter_mm"])["center_index_zyx"]
        z = int(np.clip(round(c[0]), 0, ct.shape[0] - 1))
    ys = np.nonzero((lab > 0).any(axis=(0, 2)))[0]
    y = int(ys.mean()) if ys.size else ct.shape[1] // 2
    xs = np.nonzero((lab == 1).any(axis=(0, 1)))[0]
    x = int(xs.mean()) if xs.size else ct.shape[2] // 3
    sx, sy, sz = case.ct.spacing
    flip = lambda a: a[::-1]  # superior at the top
    return [
        ("axial", ct[z], case.labels[z], sy / sx),
        ("coronal", flip(ct[:, y]), flip(case.labels[:, y]), sz / sx),
        ("sagittal", flip(ct[:, :, x]), flip(case.labels[:, :, x]), sz / sy),
    ]


def _overlay(img, lab):
    g = np.clip((img - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0, 1)
    rgb = np.repeat(g[..., None], 3, axis=2)
    for k, col in LABEL_COLOURS.items():
        m = lab == k
        rgb[m] = 0.55 * rgb[m] + 0.45 * np.asarray(col)
    return rgb


def render_montage(cases, path, titles: list[str] | None = None, dpi: int = 110) -> Path:
    """Write the montage of `cases` (SynthCase list) to `path` (PNG). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cases)
    fig, axes = plt.subplots(4, n, figsize=(3.2 * n, 12.4), squeeze=False, facecolor="black")
    for j, case in enumerate(cases):
        views = _views(case)
        for i, (name, img, _, aspect) in enumerate(views):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="lanczos")
            if j == 0:
                ax.set_ylabel(name, color="w")
        name, img, lab, aspect = views[1]
        axes[3, 0].set_ylabel("labels", color="w")
        axes[3, j].imshow(_overlay(img, lab), aspect=aspect, interpolation="nearest")
        p = case.params
        title = titles[j] if titles else (
            f"seed {p['seed']} {p['difficulty']}\n{case.ct.shape[2]}x{case.ct.shape[1]}x{case.ct.shape[0]} "
            f"{case.ct.spacing[0]:.2f}x{case.ct.spacing[2]:.2f} mm")
        axes[0, j].set_title(title, color="w", fontsize=9)
    return _save_black(fig, axes, path, dpi)


DOC_CASES = [  # (seed, overrides, title) of the docs picture: clean, contrast, hard, thick slices
    (0, dict(shape=(240, 384, 384), difficulty="easy", n_nodules=1), "clean, 1 nodule"),
    (3, dict(shape=(240, 384, 384), difficulty="easy", contrast=True), "contrast"),
    (7, dict(shape=(240, 384, 384), difficulty="hard", effusion=True, consolidation=True, touching_lungs=True,
             dose="low"),
     "hard: effusion, consolidation,\ntouching lungs, low dose"),
    (11, dict(shape=(240, 384, 384), difficulty="easy", emphysema=True, n_nodules=2), "emphysema, nodules"),
    (5, dict(shape=(64, 128, 128), difficulty="mixed"), "128x128x64 (default grid)"),
]


def render_docs_montage(path="docs/synth_montage.png") -> Path:
    from .generate import generate_case

    cases, titles = [], []
    for seed, ov, title in DOC_CASES:
        cases.append(generate_case(seed, **ov))
        titles.append(f"seed {seed}: {title}")
    return render_montage(cases, path, titles)


# ---- vessels, hilum and tumours -----------------------------------------------------------
SOFT_TISSUE_WINDOW = (-85.0, 165.0)  # L 40 / W 250: narrower than the mediastinal one, shows necrosis
CROP_MM = 80.0


def _blobs(tissue_slice, spacing_yx, codes, min_d: float):
    """Round components of `codes` in one slice: (centre yx, diameter mm) of those at least min_d
    across and at most twice as long as wide (a vessel seen end-on, not one lying in the slice)."""
    from scipy import ndimage as ndi

    lab, _ = ndi.label(np.isin(tissue_slice, codes))
    out = []
    for i, sl in enumerate(ndi.find_objects(lab)):
        yx = np.argwhere(lab[sl] == i + 1) * spacing_yx
        d = 2 * np.sqrt(len(yx) * np.prod(spacing_yx) / np.pi)
        if d < min_d or len(yx) < 3:
            continue
        ev = np.linalg.eigvalsh(np.cov(yx.T) + 1e-6 * np.eye(2))
        if ev[1] <= 4 * ev[0]:  # axis ratio <= 2
            out.append(((yx.mean(0) / spacing_yx) + [sl[0].start, sl[1].start], d))
    return out


def _end_on_view(case):
    """The lower-lung slice and crop centre with the most nodule-sized (>= 3 mm) round vessels."""
    from .tissue import Tissue as T

    sp = np.array(case.ct.spacing_zyx[1:])
    zs = np.nonzero((case.labels > 0).any(axis=(1, 2)))[0]
    best = (-1, int(np.median(zs)), np.array(case.ct.shape[1:]) / 2, [])  # if no vessel is round
    for z in np.linspace(zs.min() + 0.15 * len(zs), zs.min() + 0.5 * len(zs), 8).astype(int):
        blobs = _blobs(case.tissue[z], sp, (T.ARTERY, T.VEIN), 3.0)
        for c, _ in blobs:
            n = sum(np.all(np.abs(b[0] - c) * sp < CROP_MM / 2 - 5) for b in blobs)
            if n > best[0]:
                best = (n, z, c, blobs)
    return best[1], best[2], best[3]


def _hilum_view(case):
    """The slice 0-45 mm below a hilum (lower-lobe vessels run down from it) with the most round
    vessels >= 5 mm, centred 20 mm lateral to the hilum so that the crop shows mostly lung."""
    from .anatomy import Anatomy
    from .tissue import Tissue as T

    gp = case.params["grid"]
    anat = Anatomy(case.params["anatomy"], tuple(gp["z_range"]))
    sp = np.array(case.ct.spacing_zyx[1:])
    best = (-1, 0, None, [])
    for hilum, sx in ((anat.bronchus_r, -1.0), (anat.bronchus_l, 1.0)):
        for dz in (0.0, -10.0, -20.0, -30.0, -45.0):
            zyx = ((hilum + [20 * sx, 0, dz] - np.asarray(gp["origin"])) / np.asarray(gp["spacing"]))[::-1]
            z = int(np.clip(round(zyx[0]), 0, case.ct.shape[0] - 1))
            blobs = _blobs(case.tissue[z], sp, (T.ARTERY, T.VEIN), 5.0)
            n = sum(np.all(np.abs(b[0] - zyx[1:]) * sp < CROP_MM / 2) for b in blobs)
            if n > best[0]:
                best = (n, z, zyx[1:], blobs)
    return best[1], best[2], best[3]


def _crop(img, centre_yx, spacing_yx):
    half = np.round(CROP_MM / 2 / np.asarray(spacing_yx)).astype(int)
    c = np.clip(np.round(centre_yx).astype(int), half, np.array(img.shape) - half - 1)
    return img[c[0] - half[0]: c[0] + half[0], c[1] - half[1]: c[1] + half[1]], c - half


def vessel_montage(cases, path, titles: list[str] | None = None, dpi: int = 110) -> Path:
    """Axial 80 mm crops of what a nodule detector must tell apart, one row per case: vessels seen
    end-on in the lower lung (round ones >= 3 mm circled), the hilar vessel bundle (vessels >= 5 mm
    circled), and the case's largest lesion (a tumour when it has one) in the lung window with its
    label-3 outline and in a soft-tissue window (necrosis, no fat plane against its neighbours).
    Writes `path` (PNG) and returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = cases if isinstance(cases, (list, tuple)) else [cases]
    fig, axes = plt.subplots(len(cases), 4, figsize=(13, 3.8 * len(cases)), squeeze=False, facecolor="black")
    for j, case in enumerate(cases):
        z, c, blobs = _end_on_view(case)
        _panel(axes[j, 0], case, z, c, WINDOW, blobs, "yellow", f"lower lung, z {z}: vessels seen end-on\n"
                                                                   "(round ones >= 3 mm circled)")
        z, c, blobs = _hilum_view(case)
        _panel(axes[j, 1], case, z, c, WINDOW, blobs, "cyan", f"hilum, z {z}: vessel bundle\n"
                                                                 "(round ones >= 5 mm circled)")
        if case.nodules:
            les = max(case.nodules, key=lambda n: n["diameter_mm"])
            z, *c = (int(round(v)) for v in les["center_index_zyx"])
            name = f"{les.get('location')} {les['kind']}, {les['diameter_mm']:.0f} mm"
            _panel(axes[j, 2], case, z, c, WINDOW, [], None, f"{name}, z {z}\n(label 3 outlined)", outline=True)
            extra = f"\nnecrotic centre {les['necrosis_hu']:.0f} HU" if les.get("necrosis") else "\n"
            _panel(axes[j, 3], case, z, c, SOFT_TISSUE_WINDOW, [], None, f"same, window L40/W250{extra}")
        if titles:
            axes[j, 0].set_ylabel(titles[j], color="w", fontsize=9)
    return _save_black(fig, axes, path, dpi, h_pad=1.2)


def _save_black(fig, axes, path, dpi, **layout) -> Path:
    """Bare panels on black, written atomically."""
    import matplotlib.pyplot as plt

    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    fig.tight_layout(pad=0.4, **layout)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="black")
    plt.close(fig)
    return path


def _panel(ax, case, z, centre, window, blobs, colour, title, outline: bool = False):
    sp = np.array(case.ct.spacing_zyx[1:])
    img, off = _crop(case.ct.array[z], centre, sp)
    ax.imshow(img, cmap="gray", vmin=window[0], vmax=window[1], aspect=sp[0] / sp[1], interpolation="lanczos")
    for (cy, cx), d in blobs:  # circle the blobs inside the crop, a little wider than they are
        y, x = cy - off[0], cx - off[1]
        if 0 <= y < img.shape[0] and 0 <= x < img.shape[1]:
            ax.add_patch(_circle((x, y), (d / 2 + 2) / sp[1], colour))
    if outline:
        lab, _ = _crop(case.labels[z], centre, sp)
        ax.contour(lab == 3, [0.5], colors="red", linewidths=0.8)
    ax.set_title(title, color="w", fontsize=8)


def _circle(xy, r, colour):
    from matplotlib.patches import Circle

    return Circle(xy, r, fill=False, edgecolor=colour, linewidth=0.6)


VESSEL_DOC_CASES = [  # (seed, tumour, title) of docs/phantom_vessels_and_tumours.png (512x512x160, clean)
    (7, "central", "seed 7: central tumour"),
    (4, "central", "seed 4: large central tumour"),
    (8, "chest-wall", "seed 8: chest-wall tumour"),
]


def render_docs_vessel_montage(path="docs/phantom_vessels_and_tumours.png") -> Path:
    from .generate import generate_case

    cases = [generate_case(seed, size=(512, 512, 160), difficulty="easy", contrast=False, tumour=tumour)
             for seed, tumour, _ in VESSEL_DOC_CASES]
    return vessel_montage(cases, path, [t for _, _, t in VESSEL_DOC_CASES])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--vessels":
        print(render_docs_vessel_montage(*sys.argv[2:3]))
    else:
        print(render_docs_montage(sys.argv[1] if len(sys.argv) > 1 else "docs/synth_montage.png"))
