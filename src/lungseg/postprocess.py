"""Post-processing of a model's label map, after lungmask's: keep each lung's main component,
merge stray pieces into the lung they touch most, drop isolated blobs, fill holes, and keep only
nodules that sit in or against a lung. Plus the low-confidence map shown in previews."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

LUNGS = (1, 2)
NODULE = 3


def _structure(ndim: int) -> np.ndarray:
    return ndi.generate_binary_structure(ndim, 1)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D and then in every axial slice (vessels leave 2D holes near the hilum)."""
    filled = ndi.binary_fill_holes(mask)
    if filled.ndim == 3:
        filled = np.stack([ndi.binary_fill_holes(s) for s in filled])
    return filled


def fill_lung_holes(labels: np.ndarray) -> np.ndarray:
    """Fill each lung's holes (vessels, nodules) without merging the two lungs."""
    out = labels.copy()
    for value in LUNGS:
        mask = labels == value
        if mask.any():
            out[fill_holes(mask) & (out == 0)] = value
    return out


def foreground_box(labels: np.ndarray, margin: int = 2) -> tuple[slice, ...]:
    """Bounding box of the non-zero voxels plus a margin (the whole array when empty)."""
    nz = [np.nonzero(labels.any(axis=tuple(a for a in range(labels.ndim) if a != ax)))[0] for ax in range(labels.ndim)]
    if any(len(n) == 0 for n in nz):
        return tuple(slice(None) for _ in range(labels.ndim))
    return tuple(slice(max(0, n[0] - margin), min(size, n[-1] + margin + 1)) for n, size in zip(nz, labels.shape))


def postprocess_labels(labels: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0), min_piece_ml: float = 2.0,
                       min_nodule_mm: float = 3.0) -> np.ndarray:
    """Clean a (z, y, x) label map of 0/1/2/3. Works for single slices (z = 1) too.
    Runs on the labels' bounding box only: lungs fill a third of a chest CT's grid."""
    box = foreground_box(labels)
    out = np.zeros_like(labels)
    out[box] = _postprocess(labels[box], spacing_zyx, min_piece_ml, min_nodule_mm)
    return out


def _postprocess(labels: np.ndarray, spacing_zyx, min_piece_ml: float, min_nodule_mm: float) -> np.ndarray:
    single = labels.shape[0] == 1
    lab = labels[0] if single else labels
    spacing = np.asarray(spacing_zyx[1:] if single else spacing_zyx, dtype=float)
    voxel = float(np.prod(spacing)) / (100.0 if single else 1000.0)  # cm^2 per pixel or mL per voxel
    out = lab.copy()
    st = _structure(lab.ndim)
    for value in LUNGS:
        comps, n = ndi.label(lab == value, structure=st)
        if n <= 1:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        main = 1 + int(np.argmax(sizes))
        for i, sl in enumerate(ndi.find_objects(comps), start=1):
            if i == main:
                continue
            sl = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
            piece = comps[sl] == i
            ring = ndi.binary_dilation(piece, structure=st) & ~piece
            touching = out[sl][ring]
            touching = touching[np.isin(touching, LUNGS) & (touching != value)]
            region = out[sl]
            if touching.size:  # a piece of the other lung's colour inside that lung: merge
                region[piece] = np.bincount(touching).argmax()
            elif sizes[i - 1] * voxel < min_piece_ml:
                region[piece] = 0  # an isolated blob (e.g. bowel gas, noise)
    out = fill_lung_holes(out)
    out = clean_nodules(out, spacing, min_nodule_mm)
    return out[None] if single else out


def clean_nodules(out: np.ndarray, spacing: np.ndarray, min_nodule_mm: float = 3.0) -> np.ndarray:
    """Drop nodule components smaller than min_nodule_mm or away from the lungs (in place)."""
    nodules = out == NODULE
    if not nodules.any():
        return out
    lungs = np.isin(out, LUNGS)
    near_lung = ndi.binary_dilation(lungs, structure=_structure(out.ndim), iterations=2)
    comps, n = ndi.label(nodules, structure=np.ones((3,) * out.ndim))
    min_size = (np.pi / 6 * min_nodule_mm**3) if out.ndim == 3 else (np.pi / 4 * min_nodule_mm**2)
    unit = float(np.prod(spacing))
    for i, sl in enumerate(ndi.find_objects(comps), start=1):
        comp = comps[sl] == i
        if comp.sum() * unit < min_size or not (near_lung[sl] & comp).any():
            out[sl][comp] = 0
    return out


def low_confidence_map(probabilities: np.ndarray, threshold: float = 0.7) -> np.ndarray:
    """Voxels where the winning class has probability below `threshold` while some structure
    (not background) is plausible: the borders and regions a reader should check."""
    p = np.asarray(probabilities, dtype=np.float32)
    winner = p.max(axis=0)
    foreground = 1.0 - p[0]
    return (winner < threshold) & (foreground > 1.0 - threshold)
