"""Consolidation: an irregular lobe-like blob grown from a seed in one lung, 50-500 mL, confined to
that lung, 20-50 HU, usually with air bronchograms (a branching set of air-filled tubes running
from the hilar side of the blob outward)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .geometry import (Inserted, _bbox, _box, _medial_sign, _on_grid, _paint, _rotation, _setup,
                       _shrink, _star_score, _tissue, _unit)
from .noise import Noise, _noise_field, _smooth_field

CONSOLIDATION_ML = (50.0, 500.0)
CONSOLIDATION_MAX_LUNG_SHARE = 0.4
CONSOLIDATION_HU = (20.0, 50.0)


def _tube(out: np.ndarray, a, b, radius_mm: float, spacing) -> None:
    """Max-accumulate into `out` the partial-volume occupancy of a tube: segment a-b (voxel
    coordinates of `out`), radius in mm; computed inside the segment's own bounding box."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    pad = radius_mm / spacing + 1
    lo = np.clip(np.floor(np.minimum(a, b) - pad), 0, out.shape).astype(int)
    hi = np.clip(np.ceil(np.maximum(a, b) + pad) + 1, 0, out.shape).astype(int)
    if np.any(hi <= lo):
        return
    p = [((np.arange(l, h) - c) * s).astype(np.float32).reshape([-1 if i == k else 1 for i in range(3)])
         for k, (l, h, c, s) in enumerate(zip(lo, hi, a, spacing))]
    d = (b - a) * spacing
    t = np.clip((p[0] * d[0] + p[1] * d[1] + p[2] * d[2]) / (float(d @ d) + 1e-9), 0, 1)
    dist = np.sqrt((p[0] - t * d[0]) ** 2 + (p[1] - t * d[1]) ** 2 + (p[2] - t * d[2]) ** 2)
    occ = np.clip(0.5 + (radius_mm - dist) / float(min(spacing)), 0, 1)
    sub = tuple(slice(l, h) for l, h in zip(lo, hi))
    out[sub] = np.maximum(out[sub], occ)


def consolidation(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, volume_ml=None,
                  bronchograms: bool | None = None, noise: Noise | None = None) -> Inserted:
    """An irregular, contiguous, lobe-like region of one lung at 20-50 HU, with air bronchograms."""
    spacing, vox_ml, labels_s, side, noise = _setup(hu, labels, spacing_zyx, rng, side, noise)
    lung_full = labels_s == side
    lbox = _bbox(lung_full)
    n_lung = int(lung_full[lbox].sum())
    volume = float(rng.uniform(*CONSOLIDATION_ML)) if volume_ml is None else float(volume_ml)
    n = max(8, int(round(min(volume, CONSOLIDATION_MAX_LUNG_SHARE * n_lung * vox_ml) / vox_ml)))
    # seed: a random voxel of the lung, not on its border
    inner = ndi.binary_erosion(lung_full[lbox])
    cand = np.flatnonzero(inner if inner.any() else lung_full[lbox])
    seed = np.array(np.unravel_index(cand[int(rng.integers(0, cand.size))], inner.shape)) + [b.start for b in lbox]
    r_eq = (3.0 * n * vox_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)
    radii = np.exp(rng.uniform(np.log(0.7), np.log(1.4), 3))
    radii = radii / np.prod(radii) ** (1 / 3) * r_eq
    rot = _rotation(rng)
    k = int(rng.integers(4, 9))
    dirs = np.array([_unit(v) for v in rng.standard_normal((k, 3))])
    amps = rng.uniform(0.15, 0.45, k)
    roughness = float(rng.uniform(0.08, 0.18))
    box = None
    for grow in (1.7, 2.6, 4.0, 100.0):  # a bigger box when the lung near the seed is too thin
        half = grow * radii.max() / spacing
        box = tuple(slice(max(b.start, s.start), min(b.stop, s.stop))
                    for b, s in zip(_box(seed, half, hu.shape), lbox))
        lung = lung_full[box]
        if lung.sum() >= 1.5 * n:
            break
    def blob_score(rel, sp):
        sc = _star_score(rel, radii, rot, dirs, amps, 5.0)
        return sc + roughness * _smooth_field(sc.shape, sp, max(6.0, 0.4 * r_eq), rng)

    score = np.where(lung, _on_grid(box, seed, spacing, blob_score), np.inf)
    flat = score.ravel()
    n_finite = int(np.isfinite(flat).sum())
    n = min(n, n_finite)
    seed_box = tuple(int(s - b.start) for s, b in zip(seed, box))
    want = n
    region = None
    for _ in range(6):  # the seed's connected part of the n' lowest-score lung voxels
        idx = np.argpartition(flat, want - 1)[:want]
        sel = np.zeros(score.shape, bool)
        sel.ravel()[idx] = True
        lab, _ = ndi.label(sel)
        keep = lab[seed_box] if lab[seed_box] else np.bincount(lab.ravel())[1:].argmax() + 1
        region = lab == keep
        got = int(region.sum())
        if got >= n or want >= n_finite:
            break
        want = min(n_finite, int(want * n / max(got, 1) * 1.05) + 1)
    got = int(region.sum())
    if got > n:  # trim the highest-score surface voxels
        s = np.where(region, score, -np.inf).ravel()
        drop = np.argpartition(-s, got - n - 1)[: got - n]
        region.ravel()[drop] = False
    box, region = _shrink(box, region)
    target = _tissue(region.shape, spacing, float(rng.uniform(*CONSOLIDATION_HU)), noise, rng)
    if bronchograms is None:
        bronchograms = rng.random() < 0.8
    if bronchograms and got >= 30:
        target = _add_bronchograms(target, region, box, lung_full, labels_s, side, spacing, noise, rng)
    return _paint(hu, labels, box, region, target, side, "consolidation")


def _add_bronchograms(target, region, box, lung_full, labels, side, spacing, noise, rng):
    """Air-filled branching tubes from the blob's hilar side outward, only inside the blob."""
    pts = np.argwhere(region).astype(float)
    centroid = pts.mean(axis=0)
    # the hilum: the lung's medial border at the middle of its height and AP extent
    zyx = np.argwhere(lung_full[:: 4, :: 4, :: 4]) * 4.0
    msign = _medial_sign(labels, side)
    hilum = np.array([zyx[:, 0].mean(), zyx[:, 1].mean(), zyx[:, 2].max() if msign > 0 else zyx[:, 2].min()])
    hilum -= [b.start for b in box]
    d2 = (((pts - hilum) * spacing) ** 2).sum(axis=1)
    start = pts[int(np.argmin(d2))]
    extent = float(np.sqrt(((pts - centroid) ** 2 * spacing ** 2).sum(axis=1)).max())
    d0 = _unit((centroid - start) * spacing)
    if not np.isfinite(d0).all() or np.linalg.norm(d0) < 0.5:
        d0 = _unit(rng.standard_normal(3))
    occ = np.zeros(region.shape, np.float32)
    step = max(0.15 * extent, 2.0 * float(spacing.min()))
    # 2-3 curving, tapering, branching trees: (from, direction, radius mm, steps left)
    segs = [(start, _unit(d0 + 0.4 * _unit(rng.standard_normal(3))), float(rng.uniform(1.5, 3.0)), 10)
            for _ in range(int(rng.integers(2, 4)))]
    drawn = 0
    while segs and drawn < 60:
        a, d, r, left = segs.pop(0)
        b = a + d * step / spacing
        _tube(occ, a, b, r, spacing)
        drawn += 1
        bi = np.round(b).astype(int)
        if left <= 1 or r < 0.7 or np.any(bi < 0) or np.any(bi >= region.shape) or not region[tuple(bi)]:
            continue
        segs.append((b, _unit(d + 0.3 * _unit(rng.standard_normal(3))), 0.92 * r, left - 1))
        if rng.random() < 0.5:
            segs.append((b, _unit(d + 1.0 * _unit(rng.standard_normal(3))), 0.75 * r, left - 1))
    occ *= region
    air = np.float32(-920.0) + _noise_field(region.shape, noise, rng)
    return target + occ * (air - target)
