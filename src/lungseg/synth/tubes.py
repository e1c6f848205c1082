"""Rasterise many tubes (capsules) into partial-volume coverage, vectorised over voxels.

Each segment is cut into short pieces so that its bounding box stays tight. Pieces whose boxes
have the same (rounded-up) shape are stacked into one dense (G, bz, by, bx) block, so the
distance of every voxel to its own piece is computed with broadcasting instead of gathers.

Coverage is the fraction of the voxel inside the tube, approximated separably in the plane
across the tube: along the direction to the axis (width w1 of the voxel in that direction, exact
for thick tubes) and across it (width w2): a 1 mm vessel lying in a 5 mm slice covers about a
fifth of its voxels and fades, as on real thick-slice CT. Overlaps keep the maximum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid

CHUNK = 2_000_000  # voxels per dense block
_BUCKETS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
                     160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024])


@dataclass
class TubeSet:
    a: np.ndarray  # (M, 3) float32 patient-frame start (X, Y, Z)
    d: np.ndarray  # (M, 3) end - start
    inv_len2: np.ndarray  # (M,)
    wu2: np.ndarray  # (M,) squared voxel width along the tube axis
    radii: np.ndarray  # (M, K) one column per output
    lo: np.ndarray  # (M, 3) int32 voxel box (z, y, x), inclusive start
    hi: np.ndarray  # (M, 3) exclusive end

    def __len__(self):
        return len(self.a)


def prepare(a, b, radii, grid: Grid, min_radius: float = 0.0) -> TubeSet:
    """Cut segments into pieces no longer than ~2 voxels or 1.5 radii and box them on the grid."""
    a, b = np.asarray(a, np.float64).reshape(-1, 3), np.asarray(b, np.float64).reshape(-1, 3)
    radii = np.asarray(radii, np.float64)
    if radii.ndim == 1:
        radii = radii[:, None]
    keep = radii.max(axis=1) >= min_radius
    a, b, radii = a[keep], b[keep], radii[keep]
    sp = np.asarray(grid.spacing, np.float64)  # (x, y, z)
    L = np.linalg.norm(b - a, axis=1)
    max_len = np.maximum(2.0 * sp.min(), 1.5 * radii.max(axis=1))
    n = np.maximum(1, np.ceil(L / max_len)).astype(np.int64)
    idx = np.repeat(np.arange(len(a)), n)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
    t0 = (k / n[idx])[:, None]
    t1 = ((k + 1) / n[idx])[:, None]
    pa = a[idx] + t0 * (b - a)[idx]
    pb = a[idx] + t1 * (b - a)[idx]
    pr = radii[idx]
    reach = pr.max(axis=1)[:, None] + sp[None, :] * 0.6
    lo_mm = np.minimum(pa, pb) - reach
    hi_mm = np.maximum(pa, pb) + reach
    org = np.asarray(grid.origin)
    lo_i = np.ceil((lo_mm - org) / sp).astype(np.int64)[:, ::-1]  # -> (z, y, x)
    hi_i = np.floor((hi_mm - org) / sp).astype(np.int64)[:, ::-1] + 1
    shape = np.asarray(grid.shape)
    lo_i = np.clip(lo_i, 0, shape)
    hi_i = np.clip(hi_i, 0, shape)
    ok = np.all(hi_i > lo_i, axis=1)
    d = (pb - pa)[ok]
    L2 = (d * d).sum(1)
    u2 = d * d / np.maximum(L2, 1e-12)[:, None]
    return TubeSet(pa[ok].astype(np.float32), d.astype(np.float32),
                   (1.0 / np.maximum(L2, 1e-9)).astype(np.float32), (u2 @ (sp * sp)).astype(np.float32),
                   pr[ok].astype(np.float32), lo_i[ok].astype(np.int32), hi_i[ok].astype(np.int32))


def rasterize(ts: TubeSet, grid: Grid, z0: int, z1: int, outs: list[np.ndarray]) -> None:
    """Max-accumulate the coverage of every radius column into outs[k] (slab arrays z0:z1)."""
    if len(ts) == 0:
        return
    sel = np.flatnonzero((ts.lo[:, 0] < z1) & (ts.hi[:, 0] > z0))
    if sel.size == 0:
        return
    lo = ts.lo[sel].copy()
    hi = ts.hi[sel].copy()
    lo[:, 0] = np.maximum(lo[:, 0], z0)
    hi[:, 0] = np.minimum(hi[:, 0], z1)
    size = hi - lo
    bucket = _BUCKETS[np.searchsorted(_BUCKETS, size)]
    key = (bucket[:, 0].astype(np.int64) * 2048 + bucket[:, 1]) * 2048 + bucket[:, 2]
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    flats = [o.reshape(-1) for o in outs]
    for s0, s1 in zip(starts, ends):
        bz, by, bx = (int(v) for v in bucket[order[s0]])
        per = max(1, CHUNK // (bz * by * bx))
        for c0 in range(s0, s1, per):
            rows = order[c0:min(s1, c0 + per)]
            _block(ts, grid, sel[rows], lo[rows], hi[rows], (bz, by, bx), z0, flats)


def _block(ts: TubeSet, grid: Grid, seg, lo, hi, bshape, z0: int, flats) -> None:
    bz, by, bx = bshape
    ny, nx = grid.shape[1], grid.shape[2]
    sx, sy, sz = (np.float32(v) for v in grid.spacing)
    S = sx * sx + sy * sy + sz * sz
    iz = lo[:, 0:1] + np.arange(bz, dtype=np.int32)  # (G, bz)
    iy = lo[:, 1:2] + np.arange(by, dtype=np.int32)
    ix = lo[:, 2:3] + np.arange(bx, dtype=np.int32)
    vz, vy, vx = iz < hi[:, 0:1], iy < hi[:, 1:2], ix < hi[:, 2:3]
    iz, iy, ix = np.minimum(iz, hi[:, 0:1] - 1), np.minimum(iy, hi[:, 1:2] - 1), np.minimum(ix, hi[:, 2:3] - 1)
    A, D = ts.a[seg], ts.d[seg]
    px = (grid.axis(2)[ix] - A[:, 0:1])[:, None, None, :]
    py = (grid.axis(1)[iy] - A[:, 1:2])[:, None, :, None]
    pz = (grid.axis(0)[iz] - A[:, 2:3])[:, :, None, None]
    e = (slice(None), None, None, None)
    t = px * D[:, 0][e] + py * D[:, 1][e] + pz * D[:, 2][e]
    t *= ts.inv_len2[seg][e]
    np.clip(t, 0, 1, out=t)
    qx = px - t * D[:, 0][e]
    qy = py - t * D[:, 1][e]
    qz = pz - t * D[:, 2][e]
    d2 = qx * qx + qy * qy + qz * qz
    dist = np.sqrt(d2)
    # voxel widths along the direction to the axis (w1) and across it in the tube's normal plane (w2)
    w1sq = (sx * sx) * qx * qx
    w1sq += (sy * sy) * qy * qy
    w1sq += (sz * sz) * qz * qz
    w1sq /= np.maximum(d2, 1e-12)
    wu2 = ts.wu2[seg][e]
    near = d2 < 1e-6
    w1sq = np.where(near, (S - wu2) / 2, w1sq)
    w1 = np.sqrt(w1sq)
    w2 = np.sqrt(np.maximum(S - wu2 - w1sq, 0.05 * S))
    valid = vz[:, :, None, None] & vy[:, None, :, None] & vx[:, None, None, :]
    flat = ((iz - z0)[:, :, None, None] * ny + iy[:, None, :, None]) * nx + ix[:, None, None, :]
    half = 0.5 * w1
    for k, out in enumerate(flats):
        r = ts.radii[seg, k][e]
        f1 = (np.minimum(dist + r, half) - np.maximum(dist - r, -half)) / w1
        f1 *= np.minimum(1.0, 1.5708 * r / w2)
        pos = (f1 > 0.004) & valid
        np.maximum.at(out, flat[pos], np.minimum(f1[pos], 1.0))


def sheet_coverage(dist, thickness: float, width) -> np.ndarray:
    """Fraction of voxels (width along the sheet normal) covered by a sheet of `thickness` mm."""
    half = 0.5 * width
    f = (np.minimum(dist + thickness / 2, half) - np.maximum(dist - thickness / 2, -half)) / width
    return np.clip(f, 0, 1)
