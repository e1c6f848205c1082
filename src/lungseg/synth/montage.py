"""A montage PNG of phantoms: axial, coronal and sagittal views (lung window L-600/W1500,
physical aspect ratio) and a row with the label overlay, one column per case.

    python -m lungseg.synth.montage docs/synth_montage.png     # the picture in the docs
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
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    fig.tight_layout(pad=0.4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="black")
    plt.close(fig)
    return path


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


if __name__ == "__main__":
    print(render_docs_montage(sys.argv[1] if len(sys.argv) > 1 else "docs/synth_montage.png"))
