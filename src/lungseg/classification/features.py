"""The radiomics baseline's features of one nodule (scikit-image; pyradiomics does not build here):
size, density and shape, the things radiologists' malignancy ratings follow. Size alone is
the first baseline any learnt classifier has to beat (larger nodules are rated more suspicious)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import measure

from .patches import WINDOW_HU

FEATURES = ("diameter_mm", "volume_ml", "slices_mm", "mean_hu", "std_hu", "solid_fraction",
            "calcified_fraction", "sphericity", "solidity", "eccentricity", "compactness")


def diameter_mm(mask: np.ndarray, spacing_zyx) -> float:
    """Largest in-plane Feret diameter over the slices (the LIDC size: longest axial diameter)."""
    best = 0.0
    sy, sx = float(spacing_zyx[1]), float(spacing_zyx[2])
    for plane in mask:
        if plane.sum() < 2:
            best = max(best, float(plane.any()) * min(sy, sx))
            continue
        ys, xs = np.nonzero(plane)
        pts = np.stack([ys * sy, xs * sx], 1)
        hull = pts if len(pts) < 64 else pts[_hull_indices(plane)]
        d = np.sqrt(((hull[:, None] - hull[None]) ** 2).sum(-1)).max()
        best = max(best, float(d) + min(sy, sx))  # + one pixel: centre-to-centre -> edge-to-edge
    return best


def _hull_indices(plane: np.ndarray) -> np.ndarray:
    """Indices (into np.nonzero order) of the pixels on the mask's outline: the diameter's ends lie there."""
    edge = plane & ~ndimage.binary_erosion(plane)
    return np.nonzero(edge[plane])[0]


def nodule_features(hu: np.ndarray, mask: np.ndarray, spacing_zyx) -> dict:
    """Feature name -> value for a nodule mask on a HU volume (z, y, x)."""
    mask = np.asarray(mask, bool)
    sz, sy, sx = (float(s) for s in spacing_zyx)
    # clipped to the window the LIDC crops were stored in, so whole scans and crops agree
    values = np.clip(np.asarray(hu, np.float32)[mask], *WINDOW_HU)
    n = int(mask.sum())
    volume = n * sz * sy * sx
    zs = np.nonzero(mask.reshape(mask.shape[0], -1).any(1))[0]
    largest = mask[int(np.argmax(mask.reshape(mask.shape[0], -1).sum(1)))]
    props = measure.regionprops(largest.astype(np.uint8), spacing=(sy, sx))[0]
    return {
        "diameter_mm": diameter_mm(mask, spacing_zyx),
        "volume_ml": volume / 1000.0,
        "slices_mm": float((zs[-1] - zs[0] + 1) * sz),
        "mean_hu": float(values.mean()),
        "std_hu": float(values.std()),
        "solid_fraction": float((values > -300).mean()),  # part-solid / ground glass vs solid
        "calcified_fraction": float((values > 200).mean()),  # calcification: a benign pattern
        "sphericity": _sphericity(mask, (sz, sy, sx), volume),
        "solidity": float(props.solidity),
        "eccentricity": float(props.eccentricity),
        "compactness": float(props.perimeter ** 2 / (4 * np.pi * max(props.area, 1e-6))),  # lobulated/spiculated > 1
    }


def _sphericity(mask: np.ndarray, spacing, volume: float) -> float:
    """pi^(1/3) (6V)^(2/3) / surface area (1 for a ball), surface from marching cubes."""
    padded = np.pad(mask, 1).astype(np.float32)
    try:
        verts, faces, _, _ = measure.marching_cubes(padded, 0.5, spacing=spacing)
    except (ValueError, RuntimeError):
        return 0.0
    area = measure.mesh_surface_area(verts, faces)
    return float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area) if area > 0 else 0.0


def feature_matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[r[k] for k in FEATURES] for r in rows], np.float64)
