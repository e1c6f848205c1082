"""Voxel grids in the patient frame and fast separable resampling between them.

Patient frame (mm): X toward the patient's LEFT, Y toward POSTERIOR, Z toward SUPERIOR, i.e. LPS.
World (scanner) coordinates are the patient frame plus a shift, so the CT geometry looks like a
real scan (patient off the isocentre, table position in z). Arrays are (z, y, x) as everywhere in
lungseg. Label fields are computed on a coarse grid and resampled to the fine one with separable
linear interpolation (a few vectorised passes instead of scipy.ndimage.zoom's per-voxel spline).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, int, int]  # (nz, ny, nx)
    spacing: tuple[float, float, float]  # (sx, sy, sz) mm, ITK order like CTImage
    origin: tuple[float, float, float]  # patient-frame (X, Y, Z) of voxel (0, 0, 0)

    # ---- coordinates -------------------------------------------------------------------
    def axis(self, a: int) -> np.ndarray:
        """Patient-frame coordinates (mm, float32) along array axis a (0 = z, 1 = y, 2 = x)."""
        i = 2 - a  # spacing/origin are (x, y, z)
        return (self.origin[i] + self.spacing[i] * np.arange(self.shape[a])).astype(np.float32)

    def coords(self, zsl: slice = slice(None)):
        """Broadcastable X (1,1,nx), Y (1,ny,1), Z (nz,1,1) for a z-range of the grid."""
        return (self.axis(2)[None, None, :], self.axis(1)[None, :, None], self.axis(0)[zsl][:, None, None])

    def index_box(self, lo_mm, hi_mm) -> tuple[slice, slice, slice]:
        """Array slices (z, y, x) covering the patient-frame box [lo, hi] (each (X, Y, Z))."""
        out = []
        for a in (0, 1, 2):
            i = 2 - a
            i0 = int(np.floor((lo_mm[i] - self.origin[i]) / self.spacing[i]))
            i1 = int(np.ceil((hi_mm[i] - self.origin[i]) / self.spacing[i])) + 1
            out.append(slice(max(i0, 0), max(min(i1, self.shape[a]), 0)))
        return tuple(out)

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    # ---- coarse companion grid -----------------------------------------------------------
    def coarse(self, target_mm: float) -> tuple["Grid", tuple[int, int, int]]:
        """A grid with integer factors (z, y, x) so that spacing is about target_mm.

        Coarse voxel j sits at fine index j*f + (f-1)/2, so fine and coarse cover the same extent."""
        f = tuple(max(1, int(round(target_mm / self.spacing[2 - a]))) for a in (0, 1, 2))
        shape = tuple(-(-n // k) for n, k in zip(self.shape, f))
        spacing = tuple(self.spacing[i] * f[2 - i] for i in (0, 1, 2))
        origin = tuple(self.origin[i] + self.spacing[i] * (f[2 - i] - 1) / 2 for i in (0, 1, 2))
        return Grid(shape, spacing, origin), f


def _upsample_axis(arr: np.ndarray, axis: int, f: int, j0: int, j1: int) -> np.ndarray:
    """Coarse cells j0:j1 of `arr` along `axis`, linearly upsampled by integer factor f.

    Fine sample k of cell j sits at coarse coordinate j + (k - (f-1)/2) / f; each of the f phases
    is a weighted sum of two shifted slices (edges clamped), written interleaved."""
    n = arr.shape[axis]
    idx = np.clip(np.arange(j0 - 1, j1 + 1), 0, n - 1)
    src = arr[idx] if axis == 0 else np.take(arr, idx, axis=axis)  # cells j0-1 .. j1 (clamped)
    m = j1 - j0
    shape = list(src.shape)
    shape[axis] = m
    out = np.empty(shape[:axis] + [m, f] + shape[axis + 1:], np.float32)

    def part(start):
        sl = [slice(None)] * src.ndim
        sl[axis] = slice(start, start + m)
        return src[tuple(sl)]

    prev, here, nxt = part(0), part(1), part(2)
    for k in range(f):
        off = (k - (f - 1) / 2) / f
        dst = [slice(None)] * (src.ndim + 1)
        dst[axis + 1] = k
        if off < 0:
            np.add(here * np.float32(1 + off), prev * np.float32(-off), out=out[tuple(dst)])
        elif off > 0:
            np.add(here * np.float32(1 - off), nxt * np.float32(off), out=out[tuple(dst)])
        else:
            out[tuple(dst)] = here
    return out.reshape(shape[:axis] + [m * f] + shape[axis + 1:])


def upsample(arr: np.ndarray, factors, out_shape, z_range: tuple[int, int] | None = None) -> np.ndarray:
    """Linear upsampling of a coarse array to the fine grid (or to fine slices z0:z1 of it)."""
    z0, z1 = z_range if z_range is not None else (0, out_shape[0])
    fz, fy, fx = factors
    j0, j1 = z0 // fz, -(-z1 // fz)
    if fz > 1:
        out = _upsample_axis(arr, 0, fz, j0, j1)[z0 - j0 * fz: z1 - j0 * fz]
    else:
        out = arr[z0:z1]
    if fy > 1:
        out = _upsample_axis(out, 1, fy, 0, out.shape[1])[:, : out_shape[1]]
    if fx > 1:
        out = _upsample_axis(out, 2, fx, 0, out.shape[2])[:, :, : out_shape[2]]
    out = np.ascontiguousarray(out, dtype=np.float32)
    return out.copy() if np.shares_memory(out, arr) else out


def upsample_nearest(arr: np.ndarray, factors, out_shape, z_range: tuple[int, int] | None = None) -> np.ndarray:
    """Nearest-neighbour upsampling (for label fields) matching `upsample`'s alignment."""
    z0, z1 = z_range if z_range is not None else (0, out_shape[0])
    fz, fy, fx = factors
    j0, j1 = z0 // fz, -(-z1 // fz)
    out = np.repeat(arr[j0:j1], fz, axis=0)[z0 - j0 * fz: z1 - j0 * fz] if fz > 1 else arr[z0:z1]
    if fy > 1:
        out = np.repeat(out, fy, axis=1)[:, : out_shape[1]]
    if fx > 1:
        out = np.repeat(out, fx, axis=2)[:, :, : out_shape[2]]
    out = np.ascontiguousarray(out)
    return out.copy() if np.shares_memory(out, arr) else out


def smooth_noise(rng: np.random.Generator, shape, sigma_vox: float) -> np.ndarray:
    """Gaussian-correlated noise with unit std, made at reduced resolution for large sigmas."""
    from scipy import ndimage as ndi

    f = max(1, int(sigma_vox / 1.5))
    small = tuple(-(-n // f) + 1 for n in shape)
    w = rng.standard_normal(small, dtype=np.float32)
    w = ndi.gaussian_filter(w, sigma_vox / f, mode="wrap")
    w /= max(float(w.std()), 1e-6)
    if f > 1:
        w = upsample(w, (f, f, f), tuple(s * f for s in small))[: shape[0], : shape[1], : shape[2]]
    return np.ascontiguousarray(w[: shape[0], : shape[1], : shape[2]])
