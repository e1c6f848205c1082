"""Nodules (solid, part-solid, ground-glass; free, juxta-pleural, juxta-vascular) and the
placement of consolidation. Effusion, consolidation and emphysema themselves are coarse lung
fields (paint.py); nodules are drawn on the fine grid because they can be 3 mm small. Large
central and chest-wall tumours are in tumours.py.
"""
from __future__ import annotations

import numpy as np

from .anatomy import Anatomy
from .grid import Grid
from .trees import sample_lung_points

LOCATIONS = ("free", "juxta-pleural", "juxta-vascular")


def place_nodules(anat: Anatomy, trees: dict, rng: np.random.Generator, n: int, kinds,
                  avoid: list[dict] = ()) -> list[dict]:
    """Draw n nodules apart from each other and from `avoid` (a tumour); centres in the patient frame (mm)."""
    out: list[dict] = []

    def free_of_others(c, R):  # a mass's lobes reach 1.2 times its nominal radius
        return all(np.linalg.norm(c - np.asarray(o["center_patient"]))
                   > R + o["diameter_mm"] / 2 * (1.2 if o["kind"] == "mass" else 1.0) + 3 for o in [*avoid, *out])

    for _ in range(n):
        diameter = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0))))
        kind = str(kinds[int(rng.integers(0, len(kinds)))])
        location = LOCATIONS[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        R = diameter / 2
        center = None
        for _try in range(30):
            c = _candidate(anat, trees, rng, R, location)
            if c is not None and free_of_others(c, R):
                center = c
                break
        if center is None:  # fall back to a free nodule, away from a tumour if possible
            cand = sample_lung_points(anat, rng, 20 if avoid else 1, inset=R + 3).astype(float)
            location, center = "free", next((c for c in cand if free_of_others(c, R)), cand[0])
        lob_dirs = rng.normal(size=(5, 3))
        lob_dirs /= np.linalg.norm(lob_dirs, axis=1, keepdims=True)
        out.append(dict(
            center_patient=[float(v) for v in center], diameter_mm=diameter, kind=kind, location=location,
            side="left" if anat.is_left(*center) else "right",
            lobe=("RUL", "RML", "RLL", "LUL", "LLL")[int(anat.lobe(center[0:1], center[1:2], center[2:3])[0])],
            solid_fraction=float(rng.uniform(0.3, 0.6)) if kind == "part-solid" else (1.0 if kind == "solid" else 0.0),
            hu_ggo=float(rng.uniform(-700, -420)),
            lobulation=[[*d, float(a), float(f)] for d, a, f in
                        zip(lob_dirs.tolist(), rng.uniform(0.02, 0.12, 5), rng.uniform(1.0, 3.0, 5))],
        ))
    return out


def _candidate(anat: Anatomy, trees: dict, rng, R: float, location: str):
    if location == "free":
        return sample_lung_points(anat, rng, 1, inset=R + 4)[0].astype(float)
    if location == "juxta-pleural":
        p = sample_lung_points(anat, rng, 400, inset=0.0).astype(float)
        d = anat.lung_sdf(p[:, 0], p[:, 1], p[:, 2])
        ok = np.flatnonzero((d < -0.3 * R) & (d > -0.6 * R - 0.5))
        return p[rng.choice(ok)] if ok.size else None
    tree = trees["artery"] if rng.random() < 0.6 else trees["vein"]
    ok = np.flatnonzero((tree["r"] > 1.0) & (tree["r"] < 4.0))
    if ok.size == 0:
        return None
    i = rng.choice(ok)
    a, b, rv = tree["a"][i], tree["b"][i], tree["r"][i]
    mid = a + rng.uniform(0.2, 0.8) * (b - a)
    axis = (b - a) / max(np.linalg.norm(b - a), 1e-6)
    side = np.cross(axis, rng.normal(size=3))
    side /= max(np.linalg.norm(side), 1e-6)
    c = mid + side * (rv + 0.55 * R)
    if anat.lung_sdf(c[0:1], c[1:2], c[2:3])[0] < -(R + 2):
        return c
    return None


def pick_consolidation_point(anat: Anatomy, rng: np.random.Generator, lobe: int) -> list[float]:
    pts = sample_lung_points(anat, rng, 600, inset=10.0)
    lob = anat.lobe(pts[:, 0], pts[:, 1], pts[:, 2])
    cand = pts[lob == lobe] if np.any(lob == lobe) else pts
    dependent = cand[cand[:, 1] >= np.median(cand[:, 1])]  # prefer the posterior (dependent) half
    return [float(v) for v in dependent[int(rng.integers(0, len(dependent)))]]


def render_nodule(nod: dict, grid: Grid, z0: int, z1: int, hu: np.ndarray, lung_alpha: np.ndarray,
                  nodule_hu: float, texture):
    """Blend one nodule into the slab hu (z0:z1); returns (slices, coverage) or None if absent."""
    c = np.asarray(nod["center_patient"])
    R = nod["diameter_mm"] / 2
    reach = R * 1.3 + 2 * max(grid.spacing)
    sl = grid.index_box(c - reach, c + reach)
    zs = slice(max(sl[0].start, z0), min(sl[0].stop, z1))
    if zs.stop <= zs.start or sl[1].stop <= sl[1].start or sl[2].stop <= sl[2].start:
        return None
    X = grid.axis(2)[sl[2]][None, None, :] - c[0]
    Y = grid.axis(1)[sl[1]][None, :, None] - c[1]
    Z = grid.axis(0)[zs][:, None, None] - c[2]
    r = np.sqrt(X * X + Y * Y + Z * Z)
    inv = 1.0 / np.maximum(r, 1e-6)
    ux, uy, uz = X * inv, Y * inv, Z * inv
    lob = 0.0
    for dx, dy, dz, amp, freq in nod["lobulation"]:
        lob = lob + amp * np.cos(np.pi * freq * (ux * dx + uy * dy + uz * dz))
    radius = R * (1.0 + lob - 0.05)
    sx, sy, sz = grid.spacing
    w = np.sqrt((sx * ux) ** 2 + (sy * uy) ** 2 + (sz * uz) ** 2)
    local = (slice(zs.start - z0, zs.stop - z0), sl[1], sl[2])
    occ = np.clip(0.5 + (radius - r) / w, 0, 1) * lung_alpha[local]
    view = hu[local]
    tex = texture(X + c[0], Y + c[1], Z + c[2])
    if nod["kind"] == "solid":
        target = nodule_hu + 15 * tex
        view += occ * (target - view)
    else:
        ggo = nod["hu_ggo"] + 40 * tex
        view[:] = np.maximum(view, view + occ * (ggo - view))
        if nod["kind"] == "part-solid":
            core = np.clip(0.5 + (radius * nod["solid_fraction"] - r) / w, 0, 1) * lung_alpha[local]
            view += core * (nodule_hu + 15 * tex - view)
    return local, occ
