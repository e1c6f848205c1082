"""Large tumours: a central mass (30-100 mm, at the hilum against the mediastinum) and a chest-wall
mass (20-60 mm, against the costal pleura). Lobulated soft tissue (20-60 HU), some with a
low-density necrotic centre.

A tumour replaces lung: it is drawn where the lung is, plus a thin band (0-3 mm) of the soft
tissue it abuts (mediastinal fat, hilar nodes, chest-wall muscle), so no fat plane is left
between them as on real scans; never into bone, the heart, great vessels or the central airways.
Its voxels are label 3 like nodules and belong to the lung mask (SynthCase.lung_labels): the
convention for tumours inside or against the lung. Each is listed with the nodules (kind "mass",
location "central" or "chest-wall").
"""
from __future__ import annotations

import numpy as np

from ..errors import LungsegError
from .anatomy import Anatomy
from .grid import Grid
from .params import TUMOURS
from .shapes import smooth_min
from .tissue import Tissue as T
from .trees import sample_lung_points

TUMOUR_LOCATIONS = TUMOURS
DIAMETER_MM = {"central": (35.0, 100.0), "chest-wall": (22.0, 60.0)}
NECROSIS_PROB = {"central": 0.5, "chest-wall": 0.3}
MIN_LUNG_SHARE = 0.6  # of the tumour's body, checked at placement
MEDIASTINAL = (T.FAT, T.LYMPH_NODE, T.GREAT_VESSEL, T.HEART, T.ESOPHAGUS)
CHEST_WALL = (T.MUSCLE, T.BONE, T.MARROW, T.CARTILAGE)

_INVADABLE = np.zeros(256, bool)  # soft tissue a tumour may grow into by a few mm
_INVADABLE[[int(T.FAT), int(T.MUSCLE), int(T.LYMPH_NODE)]] = True
_NEVER = np.zeros(256, bool)  # the central airways stay open through a mass (they are not lung)
_NEVER[[int(T.TRACHEA), int(T.TRACHEA_WALL)]] = True
# fixed points filling the unit ball: the share of a candidate tumour that lies in the lung
_BALL = np.random.default_rng(12345).uniform(-1, 1, (900, 3))
_BALL = _BALL[np.linalg.norm(_BALL, axis=1) <= 1][:256]


def place_tumour(anat: Anatomy, rng: np.random.Generator, where: str) -> dict:
    """Draw one tumour (centre in the patient frame, mm) at `where` ('central' or 'chest-wall')."""
    lo, hi = DIAMETER_MM[where]
    R = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) / 2
    side = "right" if rng.random() < 0.55 else "left"
    centre = None
    for _ in range(8):  # shrink a mass that does not fit its lung
        centre = _central_centre(anat, rng, R, side) if where == "central" else _wall_centre(anat, rng, R, side)
        if centre is not None or R < lo / 2 * 0.7:
            break
        R *= 0.9
    if centre is None:
        raise LungsegError(f"could not place a {where} tumour in this anatomy")  # not seen in 300 tries
    necrosis = float(rng.uniform(0.35, 0.6)) if rng.random() < NECROSIS_PROB[where] else 0.0
    dirs = rng.normal(size=(7, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    bumps = rng.normal(size=(int(rng.integers(2, 5)), 3))
    bumps /= np.linalg.norm(bumps, axis=1, keepdims=True)
    return dict(
        center_patient=[float(v) for v in centre], diameter_mm=2 * R, kind="mass", location=where, side=side,
        lobe=("RUL", "RML", "RLL", "LUL", "LLL")[int(anat.lobe(*(np.asarray(centre)[:, None]))[0])],
        solid_fraction=1.0, hu=float(rng.uniform(28, 50)), necrosis=necrosis, necrosis_hu=float(rng.uniform(-5, 15)),
        invasion_mm=float(rng.uniform(0, 3)),
        lobulation=[[*d, float(a), float(f)] for d, a, f in
                    zip(dirs.tolist(), rng.uniform(0.02, 0.07, 7), rng.uniform(1.0, 2.5, 7))],
        bumps=[[*(0.55 * u).tolist(), float(r)] for u, r in zip(bumps, rng.uniform(0.35, 0.55, len(bumps)))],
    )


def _central_centre(anat: Anatomy, rng, R: float, side: str):
    """A centre by the hilum (within 0.7 R + 8 mm) whose ball crosses the mediastinal pleura by 0.4-0.75 R."""
    hilum = anat.bronchus_l if side == "left" else anat.bronchus_r
    p = hilum + rng.uniform(-1, 1, (3000, 3)) * (0.7 * R + 8)
    X, Y, Z = p.T
    med = anat.mediastinum_sdf(X, Y, Z)
    ok = ((anat.lung_sdf(X, Y, Z, med) < 0) & (anat.is_left(X, Y, Z) == (side == "left"))
          & (med > 0.25 * R) & (med < 0.6 * R) & (np.linalg.norm(p - hilum, axis=1) < 0.7 * R + 8))
    return _best_fit(anat, p[ok][:40], R)


def _wall_centre(anat: Anatomy, rng, R: float, side: str):
    """A centre whose ball crosses the costal pleura by 0.4-0.75 R, away from the mediastinum."""
    p = sample_lung_points(anat, rng, 3000, inset=0.0).astype(float)
    X, Y, Z = p.T
    inside = -anat.cavity_sdf(X, Y, Z)
    ok = ((anat.is_left(X, Y, Z) == (side == "left")) & (inside > 0.25 * R) & (inside < 0.6 * R)
          & (anat.mediastinum_sdf(X, Y, Z) > R + 5) & (anat.diaphragm_sdf(X, Y, Z) < -0.6 * R))
    return _best_fit(anat, p[ok][:40], R)


def _best_fit(anat: Anatomy, cand: np.ndarray, R: float):
    """The candidate whose ball lies most in the lung, if at least MIN_LUNG_SHARE does."""
    if len(cand) == 0:
        return None
    pts = (cand[:, None, :] + R * _BALL[None]).reshape(-1, 3)
    share = (anat.lung_sdf(pts[:, 0], pts[:, 1], pts[:, 2]) < 0).reshape(len(cand), -1).mean(1)
    best = int(np.argmax(share))
    return cand[best] if share[best] >= MIN_LUNG_SHARE else None


def tumour_sdf(t: dict, X, Y, Z):
    """Distance-like field (mm, negative inside) of a lobulated mass; X, Y, Z relative to its centre."""
    R = t["diameter_mm"] / 2
    r = np.sqrt(X * X + Y * Y + Z * Z)
    inv = 1.0 / np.maximum(r, 1e-6)
    lob = 0.0
    for dx, dy, dz, amp, freq in t["lobulation"]:
        lob = lob + amp * np.cos(np.pi * freq * (X * dx + Y * dy + Z * dz) * inv)
    d = r - R * (0.9 + lob)
    for bx, by, bz, rb in t["bumps"]:  # knobs that make the outline lobulated, not just wavy
        db = np.sqrt((X - R * bx) ** 2 + (Y - R * by) ** 2 + (Z - R * bz) ** 2) - R * rb
        d = smooth_min(d, db, 0.15 * R)
    return d, r


def render_tumour(t: dict, grid: Grid, z0: int, z1: int, hu, lung_alpha, lung_dist, tissue, texture):
    """Blend one tumour into the slab hu (z0:z1); returns (slices, coverage) or None if absent."""
    c = np.asarray(t["center_patient"])
    R = t["diameter_mm"] / 2
    reach = 1.25 * R + 2 * max(grid.spacing)
    sl = grid.index_box(c - reach, c + reach)
    zs = slice(max(sl[0].start, z0), min(sl[0].stop, z1))
    if zs.stop <= zs.start or sl[1].stop <= sl[1].start or sl[2].stop <= sl[2].start:
        return None
    local = (slice(zs.start - z0, zs.stop - z0), sl[1], sl[2])
    X = grid.axis(2)[sl[2]][None, None, :] - c[0]
    Y = grid.axis(1)[sl[1]][None, :, None] - c[1]
    Z = grid.axis(0)[zs][:, None, None] - c[2]
    d, r = tumour_sdf(t, X, Y, Z)
    sx, sy, sz = grid.spacing
    inv = 1.0 / np.maximum(r, 1e-6)
    w = np.sqrt((sx * X * inv) ** 2 + (sy * Y * inv) ** 2 + (sz * Z * inv) ** 2)  # voxel width along the radius
    occ = np.clip(0.5 - d / w, 0, 1) * _room(lung_alpha[local], lung_dist[local], tissue[local], t["invasion_mm"])
    tex = texture(X + c[0], Y + c[1], Z + c[2])
    target = t["hu"] + 8 * tex
    if t["necrosis"] > 0:  # an irregular, non-enhancing low-density core
        core = np.clip(0.5 + (t["necrosis"] * R * (1 + 0.2 * tex) - r) / w, 0, 1)
        target += core * (t["necrosis_hu"] + 4 * tex - target)
    view = hu[local]
    view += occ * (target - view)
    return local, occ


def _room(lung_alpha, lung_dist, tissue, invasion_mm: float):
    """Where a tumour may be: the lung (anti-aliased) and a thin band of soft tissue beside it."""
    band = (lung_dist >= 0) & (lung_dist < invasion_mm) & _INVADABLE[tissue]
    room = np.maximum(lung_alpha, band.astype(np.float32))
    room[_NEVER[tissue]] = 0
    return room
