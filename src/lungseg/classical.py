"""A lung segmenter that needs no weights: thresholds, connected components, morphology.

It is the fallback when no model is available and the baseline every trained model must beat.
Works on 3D volumes, single slices and image-mode (non-HU) input. On clean lungs it is accurate;
dense pathology (effusion, consolidation) is above the air threshold and is missed by design,
which is why the trained models exist.

Steps: smooth -> air/tissue threshold (-400 HU, or Otsu in image mode) -> body = largest tissue
component with axial holes filled -> air inside the body -> remove trachea/main bronchi (small,
round, central, pure-air 2D components stacked from the top) -> keep lung-sized components ->
split into right/left by the patient's left axis from the direction matrix -> fill holes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .io import CTImage
from .postprocess import fill_lung_holes

log = logging.getLogger(__name__)

HU_AIR_THRESHOLD = -400.0
PURE_AIR_HU = -920.0
ASSUMED_FOV_MM = 350.0  # trachea lumen is darker than lung parenchyma (-900..-700)


@dataclass
class ClassicalParams:
    smooth_mm: float = 1.0
    trachea_max_area_cm2: float = 6.0
    trachea_max_body_fraction: float = 0.015  # of the slice's body area
    trachea_central_fraction: float = 0.22  # of body width, each side of the body centre
    trachea_min_extent_mm: float = 12.0
    min_lung_cm2: float = 4.0  # per slice of the scan's extent (15 mL at most)
    min_lung_ml: float = 15.0
    min_lung_body_fraction: float = 0.02  # less air than this inside the body: no lungs in view
    min_piece_fraction: float = 0.02  # smaller pieces (vs the largest lung) are dropped


def segment_classical(ct: CTImage, params: ClassicalParams | None = None) -> np.ndarray:
    """Label map (z, y, x) uint8 with 1 = right lung, 2 = left lung, on the CT's canonical grid."""
    p = params or ClassicalParams()
    single = ct.shape[0] == 1
    arr = ct.array[0] if single else ct.array
    spacing = ct.spacing_zyx[1:] if single else ct.spacing_zyx
    if not ct.is_hu and ct.spacing[:2] == (1.0, 1.0):
        # a picture without geometry: assume the width spans a typical 350 mm field of view
        spacing = tuple(spacing[:-2]) + (ASSUMED_FOV_MM / arr.shape[-1],) * 2

    smooth = ndi.gaussian_filter(arr, sigma=[p.smooth_mm / s for s in spacing])
    if ct.is_hu:
        thresholds = [HU_AIR_THRESHOLD]
    else:  # image mode: Otsu parts air+lungs from tissue, unless a dark padding outside the
        # field of view takes the lowest class; then a second Otsu above it does
        first = _otsu(smooth)
        thresholds = [first, _otsu(smooth[smooth > first])]
    for threshold in thresholds:
        dense = smooth > threshold
        body = _body_mask(dense, spacing)
        air = body & ~dense
        air &= ~_trachea(air, body, arr, ct.is_hu, spacing, p)
        lungs = _lung_components(air, spacing, p)
        if lungs.sum() >= p.min_lung_body_fraction * body.sum():
            break
    else:
        lungs = np.zeros_like(lungs)  # stomach or bowel gas only: no lungs in view
    labels = _split_left_right(lungs, body, ct, single)
    labels = fill_lung_holes(labels)
    return labels[None] if single else labels


# ---- steps ------------------------------------------------------------------------------------
def _otsu(values: np.ndarray) -> float:
    """Otsu threshold for non-HU input, robust to a few extreme values."""
    from skimage.filters import threshold_otsu

    lo, hi = np.percentile(values, [0.5, 99.5])
    return float(threshold_otsu(np.clip(values, lo, hi)))


def _disk(radius: int, ndim: int) -> np.ndarray:
    """In-plane disk (2D) or a flat in-plane disk inside a 3D structure."""
    r = max(1, radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy**2 + xx**2) <= r * r
    return disk if ndim == 2 else disk[None]


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (1 + int(np.argmax(sizes)))


def _fill_axial(mask: np.ndarray) -> np.ndarray:
    if mask.ndim == 2:
        return ndi.binary_fill_holes(mask)
    return np.stack([ndi.binary_fill_holes(s) for s in mask])


def _body_mask(dense: np.ndarray, spacing) -> np.ndarray:
    """Largest tissue component (an opening first detaches the table), axial holes filled."""
    r = int(round(3.0 / min(spacing[-2:])))
    opened = ndi.binary_opening(dense, structure=_disk(r, dense.ndim)) if r >= 1 else dense
    body = _largest(opened if opened.any() else dense)
    body = ndi.binary_dilation(body, structure=_disk(r, dense.ndim)) & dense | body
    return _fill_axial(body)


def _trachea(air, body, arr, is_hu, spacing, p: ClassicalParams) -> np.ndarray:
    """Trachea and main bronchi: small, round, pure-air 2D components near the body centre line,
    stacked into a vertical tube that reaches the top of the lungs."""
    from skimage.measure import regionprops

    slices = air[None] if air.ndim == 2 else air
    bodies = body[None] if body.ndim == 2 else body
    values = arr[None] if arr.ndim == 2 else arr
    pixel_cm2 = spacing[-1] * spacing[-2] / 100.0
    candidate = np.zeros_like(slices)
    for k in range(slices.shape[0]):
        if not slices[k].any():
            continue
        xs = np.nonzero(bodies[k].any(axis=0))[0]
        centre, width = (xs[0] + xs[-1]) / 2.0, xs[-1] - xs[0] + 1
        max_area = min(p.trachea_max_area_cm2 / pixel_cm2, p.trachea_max_body_fraction * bodies[k].sum())
        lab, n = ndi.label(slices[k])
        for region in regionprops(lab, intensity_image=values[k]):
            if region.area > max_area or region.area < 2:
                continue
            if abs(region.centroid[1] - centre) > p.trachea_central_fraction * width:
                continue
            if region.solidity < 0.8:
                continue
            if is_hu and region.intensity_mean > PURE_AIR_HU:
                continue
            candidate[k][lab == region.label] = True
    if air.ndim == 2:
        return candidate[0]
    # keep only tubes: 3D-connected stacks of candidates long enough to be an airway
    lab, n = ndi.label(candidate)
    keep = np.zeros_like(candidate)
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if (sl[0].stop - sl[0].start) * spacing[0] >= p.trachea_min_extent_mm:
            keep[sl] |= lab[sl] == i
    return ndi.binary_dilation(keep, structure=_disk(1, 3)) & air


def _lung_components(air, spacing, p: ClassicalParams) -> np.ndarray:
    lab, n = ndi.label(air)
    if n == 0:
        return air
    idx = np.arange(1, n + 1)
    sizes = ndi.sum_labels(np.ones_like(lab, dtype=np.float32), lab, idx)
    unit = float(np.prod(spacing)) / (1000.0 if air.ndim == 3 else 100.0)  # mL or cm^2
    minimum = p.min_lung_cm2
    if air.ndim == 3:  # thin slabs hold little lung: scale the minimum with the z extent
        minimum = min(p.min_lung_ml, p.min_lung_cm2 * air.shape[0] * spacing[0] / 10.0)
    keep = (sizes * unit >= minimum) & (sizes >= p.min_piece_fraction * sizes.max())
    return np.isin(lab, idx[keep])


def split_left_right(lungs: np.ndarray, ct: CTImage) -> np.ndarray:
    """Right (1) / left (2) labels for a (z, y, x) both-lungs mask, e.g. from a binary model."""
    single = ct.shape[0] == 1
    arr = ct.array[0] if single else ct.array
    threshold = HU_AIR_THRESHOLD if ct.is_hu else _otsu(arr)
    spacing = ct.spacing_zyx[1:] if single else ct.spacing_zyx
    body = _body_mask(arr > threshold, spacing) | (lungs[0] if single else lungs)
    labels = _split_left_right(lungs[0] if single else lungs, body, ct, single)
    return labels[None] if single else labels


def _split_left_right(lungs: np.ndarray, body: np.ndarray, ct: CTImage, single: bool) -> np.ndarray:
    labels = np.zeros(lungs.shape, dtype=np.uint8)
    if not lungs.any():
        return labels
    zyx = lambda m: np.argwhere(m if not single else m[None])  # noqa: E731
    midline = float(np.mean(ct.left_coordinate(zyx(body)[:: 97])))
    lab, n = ndi.label(lungs)
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    two_lungs = n >= 2 and sizes[order[1]] >= 0.15 * sizes[order[0]]
    if not two_lungs:
        main = lab == (1 + order[0])
        halves = _separate(main)
        if halves is not None:
            lab = np.where(lungs & ~main, lab, 0)
            lab[halves == 1] = n + 1
            lab[halves == 2] = n + 2
            n += 2
        elif _spans_midline(ct, zyx(main), midline):
            left = _left_of(ct, zyx(main), midline)
            labels_main = np.zeros(lungs.shape, dtype=np.int32)
            coords = np.nonzero(main)
            labels_main[coords] = np.where(left, n + 2, n + 1)
            lab = np.where(main, labels_main, lab)
            n += 2
    # assign every remaining component by which side of the midline its centroid lies on
    for i in range(1, n + 1):
        comp = lab == i
        if not comp.any():
            continue
        x = float(np.mean(ct.left_coordinate(zyx(comp)[:: 13])))
        labels[comp] = 2 if x > midline else 1
    return labels


def _separate(mask: np.ndarray, max_iter: int = 12) -> np.ndarray | None:
    """Touching lungs: erode until two large parts appear, then grow them back (watershed)."""
    from skimage.segmentation import watershed

    structure = _disk(1, mask.ndim)
    eroded = mask
    for _ in range(max_iter):
        eroded = ndi.binary_erosion(eroded, structure=structure)
        lab, n = ndi.label(eroded)
        if n < 2:
            if not eroded.any():
                return None
            continue
        sizes = np.bincount(lab.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        if sizes[order[1]] >= 0.15 * sizes[order[0]]:
            markers = np.zeros(mask.shape, dtype=np.int32)
            markers[lab == 1 + order[0]] = 1
            markers[lab == 1 + order[1]] = 2
            dist = ndi.distance_transform_edt(mask)
            return watershed(-dist, markers, mask=mask)
    return None


def _spans_midline(ct: CTImage, coords: np.ndarray, midline: float) -> bool:
    left = _left_of(ct, coords, midline)
    return 0.2 < float(left.mean()) < 0.8


def _left_of(ct: CTImage, coords: np.ndarray, midline: float) -> np.ndarray:
    return ct.left_coordinate(coords) > midline
