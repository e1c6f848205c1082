"""What the scanner adds: correlated quantum noise, reconstruction blur (in-plane kernel and slice
profile) and padding outside the reconstruction circle."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .grid import Grid


def _kernel(sigma_px: float) -> np.ndarray:
    if sigma_px < 0.05:
        return np.ones(1)
    r = max(1, int(np.ceil(3 * sigma_px)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_px) ** 2)
    return k / k.sum()


def z_weights(acq: dict, grid: Grid) -> tuple[float, float]:
    """3-tap slice-profile weights (centre, neighbour); thin slices share signal with neighbours."""
    sigma = acq["blur_mm"] / grid.spacing[2]
    if sigma < 0.3:
        return 1.0, 0.0
    k = _kernel(min(sigma, 1.0))
    c = len(k) // 2
    nb = float(k[c - 1])
    return 1.0 - 2 * nb, nb


def noise_amplitude(acq: dict, grid: Grid) -> float:
    """White-noise std that gives the requested std after in-plane blur and slice mixing."""
    sx, sy = grid.spacing[0], grid.spacing[1]
    gain = np.sqrt((_kernel(acq["blur_mm"] / sx) ** 2).sum() * (_kernel(acq["blur_mm"] / sy) ** 2).sum())
    c, nb = z_weights(acq, grid)
    gain *= np.sqrt(c * c + 2 * nb * nb)
    return float(acq["noise"] / gain)


def blur_and_noise(slab: np.ndarray, acq: dict, grid: Grid, rng: np.random.Generator, amplitude: float) -> None:
    """In place: add white noise, then blur in-plane (noise and anatomy share the kernel)."""
    noise = rng.standard_normal(slab.shape, dtype=np.float32)
    noise *= amplitude
    slab += noise
    for axis, s in ((2, grid.spacing[0]), (1, grid.spacing[1])):
        sig = acq["blur_mm"] / s
        if sig >= 0.05:
            ndi.gaussian_filter1d(slab, sig, axis=axis, output=slab, mode="nearest", truncate=3.0)


def mix_slices(vol: np.ndarray, centre: float, nb: float) -> None:
    """In place 3-tap filter along z, one slice at a time (no full-size temporary)."""
    if nb <= 0 or vol.shape[0] < 2:
        return
    prev = vol[0].copy()
    for k in range(vol.shape[0]):
        cur = vol[k].copy()
        nxt = vol[k + 1] if k + 1 < vol.shape[0] else cur
        vol[k] = centre * cur + nb * (prev + nxt)
        prev = cur


def fov_mask(grid: Grid, fov_center_xy) -> np.ndarray:
    """(ny, nx) True inside the reconstruction circle (inscribed in the image)."""
    X = grid.axis(2)[None, :] - fov_center_xy[0]
    Y = grid.axis(1)[:, None] - fov_center_xy[1]
    r = min(grid.shape[2] * grid.spacing[0], grid.shape[1] * grid.spacing[1]) / 2
    return X * X + Y * Y <= r * r
