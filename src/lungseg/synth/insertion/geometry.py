"""What every lesion shares: the result type (`Inserted`), the HU limits of what may be painted,
boxes and grids in mm, star-shaped blob scores, the lung sides, and the painting itself: a lesion
blended in over about one voxel (partial volume), never over bone (> 300 HU) nor air outside the
lungs, with the volume's own noise (`_tissue`); `_setup` is the start common to every inserter."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from .noise import Noise, _noise_field, _smooth_field, estimate_noise

BONE_HU = 300.0  # never painted over
AIRWAY_HU = -900.0  # below this and outside the lung mask: airway or outside air, never painted
SOFT_MIN_HU = -250.0  # soft tissue a tumour may grow into (fat and up)
EDGE_SIGMA = 0.6  # voxels: the partial-volume transition (about one voxel)


class Inserted(NamedTuple):
    hu: np.ndarray  # float32 (z, y, x), the new volume
    labels: np.ndarray  # uint8, lesion voxels are lung (1 right / 2 left)
    lesion: np.ndarray  # bool, the inserted lesion
    kind: str


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
