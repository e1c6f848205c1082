"""Signed-distance-like primitives (mm, negative inside) that broadcast over coordinate arrays.

A `Prim` pairs such a function with the box where it can be negative, so a grid evaluation only
touches the voxels near the structure while a point evaluation (tree attractors, nodule
placement) uses the same function on 1-D arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Prim:
    fn: Callable  # (X, Y, Z) -> distance-like values (mm), negative inside
    lo: tuple[float, float, float]  # bounding box (X, Y, Z) of the negative part
    hi: tuple[float, float, float]
    name: str = ""
    box_fn: Callable | None = None  # (X, Y, Z, grid slices) -> values; may reuse cached grid fields


def rotation(z_deg: float = 0.0, y_deg: float = 0.0) -> np.ndarray:
    """Matrix taking world offsets to a body's local axes: turn about Z, then tilt about local Y."""
    cz, sz = np.cos(np.radians(z_deg)), np.sin(np.radians(z_deg))
    cy, sy = np.cos(np.radians(y_deg)), np.sin(np.radians(y_deg))
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    return ry @ rz


def ellipsoid(c, radii, R: np.ndarray | None = None) -> Prim:
    """Ellipsoid centred at c with semi-axes `radii` along the local axes given by R."""
    c = np.asarray(c, float)
    r = np.asarray(radii, float)

    def fn(X, Y, Z):
        x, y, z = X - c[0], Y - c[1], Z - c[2]
        if R is not None:
            x, y, z = (R[0, 0] * x + R[0, 1] * y + R[0, 2] * z, R[1, 0] * x + R[1, 1] * y + R[1, 2] * z,
                       R[2, 0] * x + R[2, 1] * y + R[2, 2] * z)
        q = (x / r[0]) ** 2 + (y / r[1]) ** 2 + (z / r[2]) ** 2
        return (np.sqrt(q) - 1.0) * r.min()

    ext = r.max()
    return Prim(fn, tuple(c - ext), tuple(c + ext))


def capsule(a, b, ra: float, rb: float | None = None) -> Prim:
    """Tube from a to b with radius going linearly from ra to rb (round caps)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rb = ra if rb is None else rb
    ab = b - a
    L2 = max(float(ab @ ab), 1e-9)

    def fn(X, Y, Z):
        px, py, pz = X - a[0], Y - a[1], Z - a[2]
        t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / L2, 0.0, 1.0)
        dx, dy, dz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
        return np.sqrt(dx * dx + dy * dy + dz * dz) - (ra + (rb - ra) * t)

    r = max(ra, rb)
    return Prim(fn, tuple(np.minimum(a, b) - r), tuple(np.maximum(a, b) + r))


def polyline(points, radii) -> list[Prim]:
    pts = [np.asarray(p, float) for p in points]
    return [capsule(pts[i], pts[i + 1], radii[i], radii[i + 1]) for i in range(len(pts) - 1)]


def smooth_min(a, b, k: float):
    """Union with a rounded seam of size k (mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def pwl(x, xs, ys):
    """Piecewise-linear interpolation whose node values ys may be broadcastable arrays."""
    out = ys[0] + 0 * x
    for i in range(len(xs) - 1):
        t = np.clip((x - xs[i]) / (xs[i + 1] - xs[i]), 0.0, 1.0)
        out = out + (ys[i + 1] - ys[i]) * t
    return out


def eval_min(prims: list[Prim], X, Y, Z, init=None):
    """Minimum over primitives at arbitrary broadcastable coordinates."""
    out = init
    for p in prims:
        v = p.fn(X, Y, Z)
        out = v if out is None else np.minimum(out, v)
    return out


def eval_min_grid(prims: list[Prim], grid, out: np.ndarray, margin: float = 15.0) -> np.ndarray:
    """In-place minimum over primitives on a grid, each computed inside its own box only."""
    for p in prims:
        lo = tuple(v - margin for v in p.lo)
        hi = tuple(v + margin for v in p.hi)
        sz, sy, sx = grid.index_box(lo, hi)
        if sz.stop <= sz.start or sy.stop <= sy.start or sx.stop <= sx.start:
            continue
        X = grid.axis(2)[sx][None, None, :]
        Y = grid.axis(1)[sy][None, :, None]
        Z = grid.axis(0)[sz][:, None, None]
        v = p.box_fn(X, Y, Z, (sz, sy, sx)) if p.box_fn is not None else p.fn(X, Y, Z)
        np.minimum(out[sz, sy, sx], v, out=out[sz, sy, sx])
    return out
