"""A REAL nodule moved into a real scan's lung: an LIDC crop stack's nodule (its readers'
consensus mask and its own HU) resampled to the scan's spacing and blended into lung parenchyma.
Whole real scans with nodule reads are scarce (lungseg has one); this gives whole-scan detection
figures on many real nodules of every size and texture, in a real scan's context.

Only the nodule's own voxels move (the mask, softened over about one voxel: partial volume), so
the scan keeps its own vessels, noise and anatomy around it; the place is drawn where the nodule's
footprint lies in parenchyma (no vessel it would paint over), inside the lung and away from given
points (the scan's own nodules, the nodules already placed)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from ...postprocess import lung_voxels
from .geometry import EDGE_SIGMA

PARENCHYMA_HU = -700.0  # the footprint's voxels must lie below this before the nodule goes in


class RealNodule(NamedTuple):
    hu: np.ndarray  # (z, y, x) the nodule's HU on the scan's grid, around it
    weight: np.ndarray  # (z, y, x) 0..1: how much of each voxel is nodule


def resample_nodule(hu: np.ndarray, mask: np.ndarray, spacing_zyx, target_zyx, margin: int = 2) -> RealNodule:
    """The nodule of a crop stack (hu, mask at spacing_zyx) on a grid of target_zyx spacing. Axes
    made coarser are first smoothed (a thin slice averages into a thick one), then interpolated."""
    idx = np.nonzero(mask)
    box = tuple(slice(max(0, int(i.min()) - margin), int(i.max()) + margin + 1) for i in idx)
    h, m = hu[box].astype(np.float32), mask[box].astype(np.float32)
    factors = np.asarray(spacing_zyx, float) / np.asarray(target_zyx, float)
    for axis, f in enumerate(factors):
        if f < 0.8:
            h = ndi.gaussian_filter1d(h, 0.4 / f, axis=axis, mode="nearest")
            m = ndi.gaussian_filter1d(m, 0.4 / f, axis=axis, mode="constant")
    h = ndi.zoom(h, factors, order=1, mode="nearest", grid_mode=True)
    m = ndi.zoom(m, factors, order=1, mode="grid-constant", grid_mode=True)
    weight = np.clip(ndi.gaussian_filter(m, EDGE_SIGMA), 0.0, 1.0)
    return RealNodule(h, np.where(m >= 0.5, 1.0, weight).astype(np.float32))


def place_nodule(scan_hu: np.ndarray, lung_labels: np.ndarray, nodule: RealNodule, spacing_zyx, rng,
                 avoid_mm: list | None = None, min_distance_mm: float = 30.0, tries: int = 400):
    """A corner (z, y, x) for the nodule's box where its footprint (weight > 0.05) lies inside one
    lung, entirely in parenchyma (< PARENCHYMA_HU), and its centre at least min_distance_mm from
    every point of avoid_mm (z, y, x in mm). None when no place is found, or when nothing of the
    nodule reaches half a voxel on this grid (one thin slice of it spread over a thick one)."""
    if not (nodule.weight >= 0.5).any():
        return None
    foot = nodule.weight > 0.05
    size = np.array(foot.shape)
    centre_off = np.array([c.mean() for c in np.nonzero(nodule.weight >= 0.5)])
    lungs = lung_voxels(lung_labels)
    candidates = np.argwhere(lungs[::2, ::4, ::4]) * [2, 4, 4]  # a coarse draw is plenty
    if not len(candidates):
        return None
    avoid = np.asarray(avoid_mm or [], float).reshape(-1, 3)
    for _ in range(tries):
        corner = candidates[rng.integers(len(candidates))] - size // 2
        if (corner < 0).any() or (corner + size > np.array(scan_hu.shape)).any():
            continue
        box = tuple(slice(c, c + s) for c, s in zip(corner, size))
        side = lung_labels[box][foot]
        if not ((side == side[0]).all() and side[0] in (1, 2)) or (scan_hu[box][foot] >= PARENCHYMA_HU).any():
            continue
        centre_mm = (corner + centre_off) * np.asarray(spacing_zyx)
        if len(avoid) and (np.linalg.norm(avoid - centre_mm, axis=1) < min_distance_mm).any():
            continue
        return tuple(int(c) for c in corner)
    return None


class Placed(NamedTuple):
    mask: np.ndarray  # (z, y, x) bool on the scan: the nodule (weight >= 0.5)
    centre: np.ndarray  # its centre, voxel indices (z, y, x)


def move_nodules_in(scan_hu: np.ndarray, lung_labels: np.ndarray, nodules, spacing_zyx, rng, avoid_mm: list):
    """Resample, place and paste (in place) each (hu, mask, spacing_zyx) of `nodules` in turn, each
    away from the points of avoid_mm and from the nodules placed before it (their centres, in mm,
    are appended to avoid_mm). Yields a Placed per nodule, or None where no place was found; the
    caller may change lung_labels between nodules (e.g. mark the last one)."""
    sp = np.asarray(spacing_zyx, float)
    for hu, mask, spacing in nodules:
        nodule = resample_nodule(hu, mask, spacing, spacing_zyx)
        corner = place_nodule(scan_hu, lung_labels, nodule, spacing_zyx, rng, avoid_mm)
        if corner is None:
            yield None
            continue
        placed = paste_nodule(scan_hu, nodule, corner)
        centre = np.array([c.mean() for c in np.nonzero(placed)])
        avoid_mm.append(centre * sp)
        yield Placed(placed, centre)


def paste_nodule(scan_hu: np.ndarray, nodule: RealNodule, corner) -> np.ndarray:
    """Blend the nodule in at `corner` (in place); returns its mask (weight >= 0.5) on the scan."""
    box = tuple(slice(c, c + s) for c, s in zip(corner, nodule.weight.shape))
    w = nodule.weight
    scan_hu[box] = scan_hu[box] * (1 - w) + nodule.hu * w
    mask = np.zeros(scan_hu.shape, bool)
    mask[box] = w >= 0.5
    return mask
