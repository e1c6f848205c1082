"""Pleural effusion: a dependent (posterior, supine) crescent of fluid, 0-20 HU, at the lung base,
thickest posteriorly and basally, tapering laterally, medially and upward; 100-800 mL (at most
45 % of that lung), replacing the posterior part of one lung."""
from __future__ import annotations

import numpy as np

from .geometry import Inserted, _bbox, _paint, _setup, _shrink, _tissue
from .noise import Noise

EFFUSION_ML = (100.0, 800.0)
EFFUSION_MAX_LUNG_SHARE = 0.45
EFFUSION_HU = (0.0, 20.0)


def pleural_effusion(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, volume_ml=None,
                     noise: Noise | None = None) -> Inserted:
    """A posterior (dependent, supine) crescent of fluid at the base of one lung."""
    spacing, vox_ml, labels_s, side, noise = _setup(hu, labels, spacing_zyx, rng, side, noise)
    lung_full = labels_s == side
    box = _bbox(lung_full, pad=1)
    zs = box[0].start + np.flatnonzero(lung_full[box].any(axis=(1, 2)))
    n_lung = int(lung_full[box].sum())
    volume = float(rng.uniform(*EFFUSION_ML)) if volume_ml is None else float(volume_ml)
    n = int(round(min(volume, EFFUSION_MAX_LUNG_SHARE * n_lung * vox_ml) / vox_ml))
    taper = float(rng.uniform(0.0, 0.5))  # 0: even thickness along the wall, 1: a flat fluid level
    slope = float(rng.uniform(0.3, 0.8))  # mm of thickness lost per mm of height above the base
    box = (slice(int(zs[0]), box[0].stop),) + box[1:]
    lung = lung_full[box]
    zmm = ((np.arange(box[0].start, box[0].stop) - zs[0]) * spacing[0]).astype(np.float32)
    # depth: mm above the most posterior lung voxel of the voxel's (z, x) column
    ny = lung.shape[1]
    has = lung.any(axis=1)  # (z, x)
    ymax = np.where(has, ny - 1 - np.argmax(lung[:, ::-1, :], axis=1), -1).astype(np.float32)
    # how much higher (more anterior) the column's floor is than the slice's lowest point
    lift = (ymax.max(axis=1)[:, None] - ymax) * np.float32(spacing[1])
    lift = np.float32(taper) * lift + np.float32(slope) * zmm[:, None]
    yy = np.arange(ny, dtype=np.float32)[None, :, None]
    # fluid = the n lowest scores: a layer along the posterior wall whose thickness falls off
    # laterally/medially (taper) and upward (slope) from the dependent base
    score = (ymax[:, None, :] - yy) * np.float32(spacing[1]) + lift[:, None, :]
    score[~lung] = np.inf
    flat = score.ravel()
    finite = int(np.isfinite(flat).sum())
    n = max(1, min(n, finite))
    idx = np.argpartition(flat, n - 1)[:n]
    fluid = np.zeros(lung.shape, bool)
    fluid.ravel()[idx] = True
    box, fluid = _shrink(box, fluid)
    fluid_hu = float(rng.uniform(*EFFUSION_HU))
    target = _tissue(fluid.shape, spacing, fluid_hu, noise, rng, texture_hu=0.0)  # fluid: homogeneous
    return _paint(hu, labels, box, fluid, target, side, "pleural_effusion")
