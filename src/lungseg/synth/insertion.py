"""Dense pathology inserted into real chest CT (lesion insertion as augmentation).

Each function takes a real HU volume (z, y, x) in lungseg's canonical LPS order (x to the
patient's left, y to posterior, z to superior: what lungseg.io readers and the shared-set
loaders return), its lung labels (1 right, 2 left; other values are kept), the voxel spacing
(z, y, x) in mm and a numpy Generator, and returns an `Inserted` (hu, labels, lesion, kind):

- pleural_effusion: a dependent (posterior, supine) crescent of fluid, 0-20 HU, at the lung base,
  thickest posteriorly and basally, tapering laterally, medially and upward; 100-800 mL
  (at most 45 % of that lung), replacing the posterior part of one lung.
- consolidation: an irregular lobe-like blob grown from a seed in one lung, 50-500 mL, confined
  to that lung, 20-50 HU, usually with air bronchograms (a branching set of air-filled tubes
  running from the hilar side of the blob outward).
- central_tumour: a lobulated soft-tissue mass 30-80 mm at the hilum (medial lung border at the
  level of the carina / main bronchi), 25-50 HU, sometimes with a necrotic centre (10-20 HU).
- chest_wall_tumour: the same against the costal pleura, 20-60 mm.

A tumour replaces the lung it overlaps plus a 0-3 mm band of the adjacent soft tissue
(-250..300 HU: mediastinal fat, nodes, muscle), never bone (> 300 HU) nor the central airway
(< -900 HU outside the lung mask), never air outside the body. The new labels follow the R231
convention: every lesion voxel is lung (the side it was inserted into); for tumours the caller
may also mark the lesion as label 3 (`tumour_labels`). Edges are blended over about one voxel
(partial volume) and the lesion carries noise with the volume's own level and correlation,
estimated from homogeneous soft tissue (`estimate_noise`).

All the work is done inside the lesion's bounding box (plus a cheap look at a few slices for
the noise and a cropped search for the carina): one lesion takes 0.3-2 s on a 512x512x300 scan
(about 0.5 s of it copying the volume), milliseconds on the 64-128 pixel shared volumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

KINDS = ("pleural_effusion", "consolidation", "central_tumour", "chest_wall_tumour")
TUMOUR_KINDS = ("central_tumour", "chest_wall_tumour")
BONE_HU = 300.0  # never painted over
AIRWAY_HU = -900.0  # below this and outside the lung mask: airway or outside air, never painted
SOFT_MIN_HU = -250.0  # soft tissue a tumour may grow into (fat and up)
EDGE_SIGMA = 0.6  # voxels: the partial-volume transition (about one voxel)

EFFUSION_ML = (100.0, 800.0)
EFFUSION_MAX_LUNG_SHARE = 0.45
EFFUSION_HU = (0.0, 20.0)
CONSOLIDATION_ML = (50.0, 500.0)
CONSOLIDATION_MAX_LUNG_SHARE = 0.4
CONSOLIDATION_HU = (20.0, 50.0)
CENTRAL_MM = (30.0, 80.0)
CHEST_WALL_MM = (20.0, 60.0)
TUMOUR_HU = (25.0, 50.0)
NECROSIS_HU = (10.0, 20.0)
BAND_MM = (0.0, 3.0)


class Inserted(NamedTuple):
    hu: np.ndarray  # float32 (z, y, x), the new volume
    labels: np.ndarray  # uint8, lesion voxels are lung (1 right / 2 left)
    lesion: np.ndarray  # bool, the inserted lesion
    kind: str


@dataclass(frozen=True)
class Noise:
    """The volume's noise: standard deviation (HU) and the Gaussian smoothing (voxels, z y x)
    of white noise that gives the same neighbour correlation."""

    sigma: float
    smooth_zyx: tuple[float, float, float]


def tumour_labels(result: Inserted, tumour_label: int = 3) -> np.ndarray:
    """The labels with a tumour's voxels set to `tumour_label` (effusion/consolidation: unchanged)."""
    if result.kind not in TUMOUR_KINDS:
        return result.labels
    out = result.labels.copy()
    out[result.lesion] = tumour_label
    return out


# ---- noise ---------------------------------------------------------------------------------------
def _rho_to_sigma(rho: float) -> float:
    """Gaussian-filtered white noise with sigma s has lag-1 correlation exp(-1 / (4 s^2))."""
    if not np.isfinite(rho) or rho < 0.05:
        return 0.0
    return float(min(np.sqrt(-1.0 / (4.0 * np.log(min(rho, 0.97)))), 2.5))


def _robust_var(v: np.ndarray) -> float:
    return float((1.4826 * np.median(np.abs(v - np.median(v)))) ** 2)


def estimate_noise(hu: np.ndarray, labels: np.ndarray | None = None, max_slices: int = 8) -> Noise:
    """Noise level and correlation from homogeneous soft tissue (muscle, blood, organs: voxels
    whose 5x5 in-plane neighbourhood lies within -60..160 HU) on a few slice pairs in the lungs'
    z range. Robust (median-based) variances of the values minus their 7x7 local mean, and of
    neighbour differences along x, y and z."""
    nz = hu.shape[0]
    if labels is not None and labels.any():
        zs = np.flatnonzero(labels.reshape(nz, -1).any(axis=1))
    else:
        zs = np.arange(nz)
    zs = zs[zs < nz - 1] if nz > 1 else zs
    if zs.size == 0:
        zs = np.arange(nz)
    pick = np.unique(zs[np.linspace(0, zs.size - 1, min(max_slices, zs.size)).round().astype(int)])
    resid, dx, dy, dz = [], [], [], []
    for z in pick:
        s = hu[z].astype(np.float32)
        homo = (ndi.minimum_filter(s, 5) > -60) & (ndi.maximum_filter(s, 5) < 160)
        if homo.sum() < 20:
            continue
        resid.append((s - ndi.uniform_filter(s, 7))[homo])
        dx.append((s[:, 1:] - s[:, :-1])[homo[:, 1:] & homo[:, :-1]])
        dy.append((s[1:] - s[:-1])[homo[1:] & homo[:-1]])
        if z + 1 < nz:
            s2 = hu[z + 1].astype(np.float32)
            both = homo & (ndi.minimum_filter(s2, 5) > -60) & (ndi.maximum_filter(s2, 5) < 160)
            dz.append((s2 - s)[both])
    resid = np.concatenate(resid) if resid else np.zeros(0)
    if resid.size < 200:
        return Noise(10.0, (0.0, 0.5, 0.5))  # no homogeneous tissue found: a typical CT noise
    # the 7x7 local mean removes ~1/49 of white noise, more of correlated noise: correct for the
    # white part only (the correlation estimate below shows how smooth the noise is)
    var = _robust_var(resid) * 49.0 / 48.0
    sig = []
    for d in (dz, dy, dx):
        d = np.concatenate(d) if d else np.zeros(0)
        sig.append(_rho_to_sigma(1.0 - _robust_var(d) / (2.0 * var)) if d.size >= 200 else 0.0)
    return Noise(float(np.sqrt(var)), tuple(sig))


def _noise_field(shape, noise: Noise, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(shape, dtype=np.float32)
    s = noise.smooth_zyx
    if max(s) > 0:
        white = ndi.gaussian_filter(white, s, mode="reflect")
        gain = 1.0
        for sa in s:  # the filter's exact gain on white noise: sqrt(sum of squared weights) per axis
            if sa > 0:
                delta = np.zeros(2 * int(4 * sa + 1) + 1)
                delta[delta.size // 2] = 1.0
                gain *= float(np.sqrt((ndi.gaussian_filter1d(delta, sa) ** 2).sum()))
        white /= gain
    return white * np.float32(noise.sigma)


def _smooth_field(shape, spacing, scale_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A unit-variance random field smooth over about `scale_mm` (built coarse, then resized)."""
    from skimage.transform import resize

    shape = tuple(int(v) for v in shape)
    step = np.maximum(np.asarray(spacing, float), scale_mm / 2.0)
    cshape = tuple(int(v) for v in np.maximum(np.ceil(np.asarray(shape) * spacing / step) + 2, 3))
    c = ndi.gaussian_filter(rng.standard_normal(cshape), 1.0, mode="wrap")
    f = resize(c, shape, order=1, mode="edge", anti_aliasing=False).astype(np.float32)
    return (f - f.mean()) / (f.std() + 1e-6)


# ---- geometry helpers ----------------------------------------------------------------------------
def _box(centre_vox, half_vox, shape):
    lo = [max(0, int(np.floor(c - h))) for c, h in zip(centre_vox, half_vox)]
    hi = [min(n, int(np.ceil(c + h)) + 1) for c, h, n in zip(centre_vox, half_vox, shape)]
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _bbox(mask: np.ndarray, pad: int = 0):
    out = []
    for ax in range(mask.ndim):
        other = tuple(i for i in range(mask.ndim) if i != ax)
        idx = np.flatnonzero(mask.any(axis=other))
        out.append(slice(max(0, idx[0] - pad), min(mask.shape[ax], idx[-1] + pad + 1)))
    return tuple(out)


def _shrink(box, mask: np.ndarray, pad: int = 2):
    """(the part of `box` around `mask`'s voxels plus `pad`, the mask cropped to it)."""
    inner = _bbox(mask, pad)
    new = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner))
    return new, mask[inner]


def _rel_mm(box, centre_vox, spacing):
    """Broadcastable (z, y, x) offsets in mm of the box's voxels (its slices may have a step)
    from `centre_vox`."""
    out = []
    for k, (b, c, s) in enumerate(zip(box, centre_vox, spacing)):
        v = (np.arange(b.start, b.stop, b.step or 1, dtype=np.float32) - np.float32(c)) * np.float32(s)
        out.append(v.reshape([-1 if i == k else 1 for i in range(3)]))
    return out


def _on_grid(box, centre_vox, spacing, fn, grid_mm: float = 1.5) -> np.ndarray:
    """fn(rel_mm, spacing) for the box's voxels; on fine scans (pixels under grid_mm / 2) it is
    evaluated on a grid of about grid_mm spanning the box and linearly interpolated (corners
    aligned): smooth shapes and fields need no sub-millimetre sampling."""
    steps = [max(1, int(grid_mm // s)) for s in spacing]
    if all(k == 1 for k in steps):
        return fn(_rel_mm(box, centre_vox, spacing), np.asarray(spacing, float))
    full = [b.stop - b.start for b in box]
    m = [max(2, int(np.ceil((n - 1) / k)) + 1) if n > 1 else 1 for n, k in zip(full, steps)]
    rel, eff = [], []
    for ax, (b, c, sp, mm, n) in enumerate(zip(box, centre_vox, spacing, m, full)):
        pos = np.linspace(b.start, b.stop - 1, mm, dtype=np.float32)
        rel.append(((pos - np.float32(c)) * np.float32(sp)).reshape([-1 if i == ax else 1 for i in range(3)]))
        eff.append(sp * (n - 1) / max(mm - 1, 1))
    coarse = fn(rel, np.asarray(eff))
    out = ndi.zoom(coarse, [n / mm for n, mm in zip(full, m)], order=1, grid_mode=False, mode="nearest")
    return out[: full[0], : full[1], : full[2]]


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def _star_score(rel, radii, rot, lobe_dirs, lobe_amp, kappa) -> np.ndarray:
    """Normalised distance of a lobulated, star-shaped blob: <= 1 inside. The blob's radius in
    direction u is radii * (1 + sum_k a_k exp(kappa (u.d_k - 1))), capped at 1.5."""
    rot, radii = np.asarray(rot).tolist(), np.asarray(radii).tolist()  # python floats keep float32 arrays
    u = [sum(rot[j][i] * rel[j] for j in range(3)) / radii[i] for i in range(3)]
    rho = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2) + 1e-6
    r = np.ones_like(rho)
    for d, a in zip(np.asarray(lobe_dirs).tolist(), np.asarray(lobe_amp).tolist()):
        r += a * np.exp(kappa * ((u[0] * d[0] + u[1] * d[1] + u[2] * d[2]) / rho - 1.0))
    return rho / np.minimum(r, 1.5)


def _unit(v):
    v = np.asarray(v, float)
    return v / (np.linalg.norm(v) + 1e-9)


def _sides(labels: np.ndarray) -> tuple[np.ndarray, list]:
    """(labels with right 1 / left 2, the side values present). A volume labelled with one
    value only is split at the median x of its lung voxels (1 = low x = patient's right), for
    choosing the side; the returned labels keep the caller's values."""
    coarse = labels[::4, ::4, ::4]  # both sides are far bigger than 4x4x4 voxels
    if (coarse == 1).any() and (coarse == 2).any():
        return labels, [1, 2]
    present = [v for v in (1, 2) if (labels == v).any()]
    if len(present) == 2:
        return labels, present
    lung = labels > 0
    if not lung.any():
        raise ValueError("no lung in the labels")
    mid = np.median(np.nonzero(lung)[2])
    out = labels.copy()
    xs = np.arange(labels.shape[2])[None, None, :]
    out[lung & (xs <= mid)] = 1
    out[lung & (xs > mid)] = 2
    return out, [1, 2]


def _pick_side(labels, present, rng, side) -> int:
    if side is None:
        return int(present[int(rng.integers(0, len(present)))])
    side = {"right": 1, "left": 2}.get(side, side)
    if side not in present:
        raise ValueError(f"no lung labelled {side}")
    return int(side)


def _medial_sign(labels: np.ndarray, side: int) -> int:
    """+1 when this lung's medial side is toward +x (the right lung in LPS), else -1."""
    sub = labels[::2, ::4, ::4]
    xs = {v: np.nonzero(sub == v)[2] for v in (1, 2)}
    if xs[1].size and xs[2].size:
        me, other = (xs[1], xs[2]) if side == 1 else (xs[2], xs[1])
        return 1 if other.mean() > me.mean() else -1
    return 1 if side == 1 else -1


# ---- painting ------------------------------------------------------------------------------------
def _paint(hu: np.ndarray, labels: np.ndarray, box, lesion_box: np.ndarray, target_box: np.ndarray,
           side: int, kind: str) -> Inserted:
    """Blend `target` into `hu` over the lesion with a ~1-voxel partial-volume edge. Only lung
    and soft tissue change (never bone > 300 HU, never air < -900 HU outside the lungs)."""
    sub = hu[box].astype(np.float32)
    a = ndi.gaussian_filter(lesion_box.astype(np.float32), EDGE_SIGMA, truncate=1.0 / EDGE_SIGMA)  # reach: 1 voxel
    np.maximum(a, 0.5, out=a, where=lesion_box)  # lesion voxels are mostly lesion,
    np.minimum(a, 0.5, out=a, where=~lesion_box)  # their neighbours mostly what they were
    allowed = (labels[box] > 0) | (sub >= SOFT_MIN_HU)
    allowed &= sub <= BONE_HU
    allowed |= lesion_box
    a *= allowed
    target_box = target_box - sub
    target_box *= a
    target_box += sub
    new_hu = hu.astype(np.float32, copy=True)
    new_hu[box] = target_box
    new_labels = labels.copy()
    nl = new_labels[box]
    inside = nl[lesion_box]
    inside = inside[inside > 0]
    value = int(np.bincount(inside).argmax()) if inside.size else side  # the caller's value for this lung
    nl[lesion_box & (nl == 0)] = value
    lesion = np.zeros(hu.shape, dtype=bool)
    lesion[box] = lesion_box
    return Inserted(new_hu, new_labels, lesion, kind)


def _tissue(shape, spacing, base_hu: float, noise: Noise, rng, texture_hu: float = 3.0) -> np.ndarray:
    """base + the volume's noise + a faint low-frequency texture (solid lesions)."""
    out = _noise_field(shape, noise, rng) + np.float32(base_hu)
    if texture_hu > 0:
        out += _smooth_field(shape, spacing, 8.0, rng) * np.float32(texture_hu)
    return out


def _setup(hu, labels, spacing_zyx, rng, side, noise):
    """What every lesion starts from: spacing, mL per voxel, the side labels, the chosen side and the noise."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, present = _sides(labels)
    side = _pick_side(labels_s, present, rng, side)
    return spacing, float(np.prod(spacing)) / 1000.0, labels_s, side, noise or estimate_noise(hu, labels)


# ---- pleural effusion ----------------------------------------------------------------------------
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


# ---- consolidation -------------------------------------------------------------------------------
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


# ---- tumours -------------------------------------------------------------------------------------
def find_carina(hu: np.ndarray, labels: np.ndarray, spacing_zyx) -> dict | None:
    """The carina's slice and the main bronchi (y, x) per side, from the central airway: air
    (< -900 HU) outside the lung labels between the two lungs, the component reaching highest
    with the longest z extent; the carina is the first slice, going down, where it is two parts.
    None when no central airway is found."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, _ = _sides(labels)
    sub = labels_s[:, :: 4, :: 4]
    x = {v: np.nonzero(sub == v)[2] * 4 for v in (1, 2)}
    yl = np.nonzero(sub > 0)[1] * 4
    zl = np.flatnonzero((sub > 0).reshape(sub.shape[0], -1).any(axis=1))
    if not (x[1].size and x[2].size and zl.size):
        return None
    xa, xb = sorted((int(np.median(x[1])), int(np.median(x[2]))))
    box = (slice(int(zl[0]), hu.shape[0]), slice(int(yl.min()), int(yl.max()) + 1), slice(xa, xb + 1))
    step = 2 if min(spacing[1:]) < 1.2 else 1
    cand = (hu[box][:, ::step, ::step] < AIRWAY_HU) & (labels_s[box][:, ::step, ::step] == 0)
    lab, n = ndi.label(cand)
    if n == 0:
        return None
    objs = ndi.find_objects(lab)
    nz = cand.shape[0]
    top_needed = 0.55 * (zl[-1] - zl[0])
    best, best_ext = None, 0
    for i, sl in enumerate(objs):
        if sl is None:
            continue
        ext = sl[0].stop - sl[0].start
        cx = 0.5 * (sl[2].start + sl[2].stop)
        central = 0.2 * cand.shape[2] <= cx <= 0.8 * cand.shape[2]
        if ext >= 3 and sl[0].stop - 1 >= top_needed and central and ext * spacing[0] >= 20 and ext > best_ext:
            best, best_ext = i + 1, ext
    if best is None:
        return None
    comp = lab == best
    zs = np.flatnonzero(comp.reshape(nz, -1).any(axis=1))
    min_sep = 8.0 / (spacing[2] * step)
    for z in zs[::-1]:  # top down
        l2, m = ndi.label(comp[z])
        if m >= 2:
            sizes = np.bincount(l2.ravel())[1:]
            two = np.argsort(sizes)[::-1][:2] + 1
            cents = [np.argwhere(l2 == t).mean(axis=0) for t in two]
            if abs(cents[0][1] - cents[1][1]) >= min_sep:
                cents.sort(key=lambda c: c[1])  # low x = patient's right
                to_full = lambda c: (float(c[0] * step + box[1].start), float(c[1] * step + box[2].start))  # noqa: E731
                right, left = to_full(cents[0]), to_full(cents[1])
                if _medial_sign(labels_s, 1) < 0:  # right lung at high x (not LPS): swap
                    right, left = left, right
                return {"z": int(z + box[0].start), "bronchi": {1: right, 2: left}}
    return {"z": int(zs[0] + box[0].start), "bronchi": {}}


def _tumour_blob(rng, radius_mm):
    radii = radius_mm * np.exp(rng.uniform(np.log(0.85), np.log(1.15), 3))
    k = int(rng.integers(2, 6))
    return dict(radii=radii, rot=_rotation(rng), dirs=np.array([_unit(v) for v in rng.standard_normal((k, 3))]),
                amps=rng.uniform(0.1, 0.3, k), roughness=float(rng.uniform(0.02, 0.06)),
                necrosis=float(rng.uniform(0.35, 0.6)) if rng.random() < 0.4 else 0.0,
                band_mm=float(rng.uniform(*BAND_MM)), hu=float(rng.uniform(*TUMOUR_HU)),
                necrosis_hu=float(rng.uniform(*NECROSIS_HU)))


def _tumour_share(labels_s, side, centre, blob, spacing) -> float:
    """The share of the blob (centred at `centre`, voxels) that lies in this lung, on a grid of
    about 2 mm (a cheap test of a candidate position)."""
    step = np.maximum(1, np.round(2.0 / spacing)).astype(int).tolist()
    box = _box(centre, 1.6 * blob["radii"].max() / spacing + 1, labels_s.shape)
    box = tuple(slice(b.start, b.stop, k) for b, k in zip(box, step))
    rel = _rel_mm(box, centre, spacing)
    inside = _star_score(rel, blob["radii"], blob["rot"], blob["dirs"], blob["amps"], 6.0) <= 1.0
    core = int((inside & (labels_s[box] == side)).sum())
    return core / max(int(inside.sum()), 1) if core >= 2 else 0.0


def _tumour_at(hu, labels, labels_s, side, centre, blob, spacing, rng, noise, kind) -> Inserted | None:
    """The blob at `centre` (voxels) intersected with this lung, plus a band (0-3 mm) of the
    soft tissue it abuts; None when it misses the lung."""
    full = _box(centre, 1.8 * blob["radii"].max() / spacing + 2, hu.shape)
    box = full

    def blob_score(rel, sp):
        sc = _star_score(rel, blob["radii"], blob["rot"], blob["dirs"], blob["amps"], 6.0)
        return sc + blob["roughness"] * _smooth_field(sc.shape, sp, max(4.0, 0.3 * blob["radii"].mean()), rng)

    score = _on_grid(box, centre, spacing, blob_score)
    inside = score <= 1.0
    sub, lab = hu[box], labels_s[box]
    core = inside & (lab == side)
    if core.sum() < 8:
        return None
    lesion = core.copy()
    cand = inside & (lab == 0) & (sub >= SOFT_MIN_HU) & (sub <= BONE_HU)
    if blob["band_mm"] > 0 and cand.any():  # distances only around the candidate soft tissue
        pad = int(np.ceil(blob["band_mm"] / spacing.min())) + 1
        cb = _bbox(cand, pad)
        near = ndi.distance_transform_edt(~core[cb], sampling=spacing) <= blob["band_mm"]
        lesion[cb] |= cand[cb] & near
    target = _tissue(score.shape, spacing, blob["hu"], noise, rng)
    if blob["necrosis"] > 0:
        w = np.clip((blob["necrosis"] + 0.1 - score) / 0.2, 0.0, 1.0)
        target += w * np.float32(blob["necrosis_hu"] - blob["hu"])
    box, lesion_c = _shrink(box, lesion)
    inner = tuple(slice(n.start - o.start, n.stop - o.start) for n, o in zip(box, full))
    return _paint(hu, labels, box, lesion_c, target[inner], side, kind)


def central_tumour(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, diameter_mm=None,
                   noise: Noise | None = None) -> Inserted:
    """A lobulated mass (30-80 mm) at the hilum: on the lung's medial border at the level of the
    carina and main bronchi (or, without a visible carina, at 55 % of the lung's height)."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, present = _sides(labels)
    side = _pick_side(labels_s, present, rng, side)
    noise = noise or estimate_noise(hu, labels)
    diameter = float(np.exp(rng.uniform(*np.log(CENTRAL_MM)))) if diameter_mm is None else float(diameter_mm)
    R = diameter / 2
    blob = _tumour_blob(rng, R)
    lung_full = labels_s == side
    lbox = _bbox(lung_full)
    zs = np.arange(lbox[0].start, lbox[0].stop)
    carina = find_carina(hu, labels, spacing)
    msign = _medial_sign(labels_s, side)
    best = None
    for attempt in range(12):
        if carina is not None:
            zc = carina["z"] - float(rng.uniform(0.0, 25.0)) / spacing[0]
        else:
            zc = zs[0] + float(rng.uniform(0.45, 0.62)) * (zs[-1] - zs[0])
        zc = int(np.clip(round(zc), zs[0], zs[-1]))
        sl = lung_full[zc]
        if sl.sum() < 10:
            continue
        rows = np.flatnonzero(sl.any(axis=1))
        y0, y1 = rows[0], rows[-1]
        band_rows = rows[(rows >= y0 + 0.3 * (y1 - y0)) & (rows <= y0 + 0.72 * (y1 - y0))]
        if band_rows.size == 0:
            band_rows = rows
        bron = carina["bronchi"].get(side) if carina else None
        if bron is not None and attempt < 8:
            yc = bron[0] + rng.normal(0, 6.0) / spacing[1]
            yc = int(band_rows[np.argmin(np.abs(band_rows - yc))])
        else:
            yc = int(band_rows[int(rng.integers(0, band_rows.size))])
        xs = np.flatnonzero(sl[yc])
        xm = xs.max() if msign > 0 else xs.min()
        shift = float(rng.uniform(0.15, 0.5)) * R  # the mass overlaps the mediastinum by (1 - shift) R
        centre = np.array([zc, yc, xm - msign * shift / spacing[2]], float)
        share = _tumour_share(labels_s, side, centre, blob, spacing)
        fit = -abs(share - 0.75) if share > 0 else -np.inf  # mostly lung, but against the mediastinum
        if share > 0 and (best is None or fit > best[1]):
            best = (centre, fit, blob["radii"].copy())
        if best is not None and best[1] >= -0.2:
            break
        if attempt % 3 == 2:  # shrink a mass that does not fit
            blob["radii"] = blob["radii"] * 0.9
    return _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, "central_tumour")


def chest_wall_tumour(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, diameter_mm=None,
                      noise: Noise | None = None) -> Inserted:
    """A lobulated mass (20-60 mm) against the costal pleura (lateral, anterior or posterior
    chest wall, not the mediastinum, apex or diaphragm), with a broad pleural base."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, present = _sides(labels)
    side = _pick_side(labels_s, present, rng, side)
    noise = noise or estimate_noise(hu, labels)
    diameter = float(np.exp(rng.uniform(*np.log(CHEST_WALL_MM)))) if diameter_mm is None else float(diameter_mm)
    blob = _tumour_blob(rng, diameter / 2)
    R = diameter / 2
    lung_full = labels_s == side
    lbox = _bbox(lung_full)
    zs = np.arange(lbox[0].start, lbox[0].stop)
    msign = _medial_sign(labels_s, side)
    best = None
    for attempt in range(12):
        zc = int(round(zs[0] + float(rng.uniform(0.2, 0.85)) * (zs[-1] - zs[0])))
        sl = lung_full[zc]
        if sl.sum() < 10:
            continue
        edge = sl & ~ndi.binary_erosion(sl)
        cols = np.flatnonzero(sl.any(axis=0))
        x_med, x_lat = (cols.max(), cols.min()) if msign > 0 else (cols.min(), cols.max())
        yx = np.argwhere(edge)
        frac = (yx[:, 1] - x_med) / float(x_lat - x_med if x_lat != x_med else 1)
        smooth = ndi.gaussian_filter(sl.astype(np.float32), np.maximum(1.0, 3.0 / spacing[1:]))
        gy, gx = np.gradient(smooth)
        ok = []
        for (y, x), f in zip(yx, frac):
            if f < 0.45:  # the outer part of the lung: lateral, or anterior/posterior away from the mediastinum
                continue
            n_in = _unit([gy[y, x] / spacing[1], gx[y, x] / spacing[2]])
            oy, ox = int(round(y - n_in[0] * 5.0 / spacing[1])), int(round(x - n_in[1] * 5.0 / spacing[2]))
            if 0 <= oy < sl.shape[0] and 0 <= ox < sl.shape[1] and hu[zc, oy, ox] > -500 and not sl[oy, ox]:
                ok.append((y, x, n_in))
        if not ok:
            continue
        y, x, n_in = ok[int(rng.integers(0, len(ok)))]
        shift = float(rng.uniform(0.2, 0.6)) * R
        centre = np.array([zc, y + n_in[0] * shift / spacing[1], x + n_in[1] * shift / spacing[2]], float)
        share = _tumour_share(labels_s, side, centre, blob, spacing)
        if share > 0 and (best is None or share > best[1]):
            best = (centre, share, blob["radii"].copy())
        if best is not None and best[1] >= 0.5:
            break
        if attempt % 3 == 2:
            blob["radii"] = blob["radii"] * 0.9
    return _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, "chest_wall_tumour")


def _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, kind: str) -> Inserted:
    """Draw the tumour at the best placement found (centre, fit, radii), or fail with one message."""
    res = None
    if best is not None:
        blob["radii"] = best[2]
        res = _tumour_at(hu, labels, labels_s, side, best[0], blob, spacing, rng, noise, kind)
    if res is None:
        raise ValueError(f"could not place a {kind.replace('_', ' ')}")
    return res


INSERTERS = {"pleural_effusion": pleural_effusion, "consolidation": consolidation,
             "central_tumour": central_tumour, "chest_wall_tumour": chest_wall_tumour}


def insert_random(hu, labels, spacing_zyx, rng: np.random.Generator, kinds=KINDS,
                  noise: Noise | None = None) -> Inserted:
    """One lesion of a kind drawn uniformly from `kinds`."""
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in INSERTERS]
    if bad or not kinds:
        raise ValueError(f"unknown lesion kinds {bad} (choose from {', '.join(KINDS)})")
    kind = kinds[int(rng.integers(0, len(kinds)))]
    return INSERTERS[kind](hu, labels, spacing_zyx, rng, noise=noise or estimate_noise(hu, labels))
