"""The volume's noise, estimated from homogeneous soft tissue (`estimate_noise`), and the random
fields a lesion is textured with: white noise of that level and correlation (`_noise_field`) and a
smooth unit-variance field (`_smooth_field`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class Noise:
    """The volume's noise: standard deviation (HU) and the Gaussian smoothing (voxels, z y x)
    of white noise that gives the same neighbour correlation."""

    sigma: float
    smooth_zyx: tuple[float, float, float]


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
