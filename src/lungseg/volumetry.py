"""Numbers a radiologist reads off a label map: lung volumes, density, emphysema, nodules."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .io import CTImage
from .postprocess import box_mask, component_voxels, foreground_box, voxels

EMPHYSEMA_HU = -950.0  # LAA-950: the standard low-attenuation-area threshold on inspiration CT
LUNG_NAMES = {1: "right", 2: "left"}


def lung_statistics(ct: CTImage, labels: np.ndarray, nearest: np.ndarray | None = None) -> dict:
    """Per lung (and both): volume in mL, mean HU and emphysema index (% voxels < -950 HU).
    Nodules (label 3) count toward the lung they sit in for volumes (`nearest`: _nearest_lung)."""
    box = foreground_box(labels, margin=0)  # lungs fill a third of a chest CT's grid
    sub, hu = labels[box], ct.array[box]
    nodule = voxels(sub == 3)
    if len(nodule[0]):  # give each nodule voxel to the nearer lung so lung volumes include tumours
        nearest = _nearest_lung(labels) if nearest is None else nearest
        nodule_side, nodule_hu = nearest[box][nodule], hu[nodule]
    tallies = {}
    for value, name in LUNG_NAMES.items():
        values = hu[sub == value]
        if len(nodule[0]):
            values = np.concatenate([values, nodule_hu[nodule_side == value]])
        tallies[name] = _tally(values)
    tallies["total"] = tallies["right"] + tallies["left"]
    return {name: _lung_entry(ct, *tally) for name, tally in tallies.items()}


def _tally(values: np.ndarray) -> np.ndarray:
    """Voxel count, HU sum and count below the emphysema threshold: sums, so both lungs add up."""
    return np.array([values.size, values.sum(dtype=np.float64), np.count_nonzero(values < EMPHYSEMA_HU)])


def _lung_entry(ct: CTImage, n: float, hu_sum: float, emphysema: float) -> dict:
    n = int(n)
    entry = {"volume_ml": round(n * ct.voxel_volume_ml, 2), "voxels": n}
    if ct.is_hu and n:
        entry["mean_hu"] = round(float(hu_sum / n), 1)
        entry["emphysema_index_pct"] = round(100.0 * float(emphysema / n), 2)
    return entry


def _nearest_lung(labels: np.ndarray) -> np.ndarray:
    """For each nodule voxel, the lung (1 or 2) nearest to it; 0 elsewhere (and where there is no
    lung). Computed nodule by nodule on its own bounding box, not on the whole grid."""
    out = np.zeros_like(labels)
    far = []
    for pts in component_voxels(labels == 3):
        side = _nearest_lung_near(labels, pts)
        if side is None:
            far.append(pts)
        else:
            out[pts] = side
    if far:  # stray blobs away from the lungs (no post-processing): one search for all of them
        pts = tuple(np.concatenate(c) for c in zip(*far))
        out[pts] = _nearest_lung_far(labels, pts)
    return out


def _nearest_lung_near(labels: np.ndarray, pts: tuple[np.ndarray, ...], margin: int = 4,
                       slack: int = 16) -> np.ndarray | None:
    """The label of the lung voxel nearest to each of `pts` (one nodule), from a distance transform
    on their bounding box plus a margin. The box is widened until the margin covers the distances
    found: then no lung voxel outside it can be nearer, so the answer is that of the whole grid.
    None once the margin would pass the nodule's size plus `slack`: its box would cost more than
    _nearest_lung_far."""
    lo = np.array([c.min() for c in pts])
    hi = np.array([c.max() for c in pts]) + 1
    while margin <= (hi - lo).max() + slack:
        start, stop = np.maximum(lo - margin, 0), np.minimum(hi + margin, labels.shape)
        sub = labels[tuple(slice(a, b) for a, b in zip(start, stop))]
        lungs = (sub == 1) | (sub == 2)
        whole = not start.any() and (stop == labels.shape).all()
        if not lungs.any():
            if whole:
                return np.zeros(len(pts[0]), dtype=labels.dtype)
            margin *= 2
            continue
        idx = ndi.distance_transform_edt(~lungs, return_distances=False, return_indices=True)
        local = tuple(c - a for c, a in zip(pts, start))
        near = idx[(slice(None),) + local]
        reach = np.sqrt(((near - np.array(local)) ** 2).sum(axis=0)).max()
        if reach <= margin or whole:
            return sub[tuple(near)]
        margin = max(2 * margin, int(np.ceil(reach)))
    return None


def _nearest_lung_far(labels: np.ndarray, pts: tuple[np.ndarray, ...]) -> np.ndarray:
    """The label of the lung voxel nearest to each of `pts`, by a KD-tree over the lungs' surface
    voxels (a nearest lung voxel always has a non-lung neighbour: the step towards the point)."""
    from scipy.spatial import cKDTree  # imported here: ~0.4 s, needed only for far nodules

    lungs = (labels == 1) | (labels == 2)
    if not lungs.any():
        return np.zeros(len(pts[0]), dtype=labels.dtype)
    box = foreground_box(lungs, margin=1)
    sub = lungs[box]
    surface = voxels(sub & ~ndi.binary_erosion(sub, structure=ndi.generate_binary_structure(sub.ndim, 1)))
    start = np.array([s.start for s in box])
    _, j = cKDTree(np.stack(surface, axis=1)).query(np.stack(pts, axis=1) - start)
    return labels[box][tuple(c[j] for c in surface)]


def nodule_statistics(ct: CTImage, labels: np.ndarray, nearest: np.ndarray | None = None,
                      score_of=None, malignancy_of=None) -> list[dict]:
    """One entry per connected nodule: size, density, position (side, slices, LPS centroid), and
    its detection_score when score_of (voxel index arrays -> score or None) is given, its
    malignancy_score and malignancy_class when malignancy_of (voxel index arrays -> dict or None) is."""
    components = component_voxels(labels == 3)
    if not components:
        return []
    nearest = _nearest_lung(labels) if nearest is None else nearest
    spacing = np.asarray(ct.spacing_zyx)
    out = []
    for i, pts in enumerate(components, start=1):
        coords = np.stack(pts, axis=1)
        volume_mm3 = len(coords) * float(np.prod(spacing))
        side_value = int(np.bincount(nearest[pts], minlength=3)[1:3].argmax()) + 1
        entry = {
            "id": i,
            "side": LUNG_NAMES[side_value],
            "volume_ml": round(volume_mm3 / 1000.0, 3),
            "diameter_mm": round(float((6.0 * volume_mm3 / np.pi) ** (1 / 3)), 1),  # equivalent sphere
            "max_axial_diameter_mm": round(_max_axial_extent(box_mask(coords), spacing), 1),
            "slice_range": [int(coords[:, 0].min()), int(coords[:, 0].max())],
            "centroid_index_zyx": [round(float(c), 1) for c in coords.mean(axis=0)],
            "centroid_mm_lps": [round(float(c), 1) for c in ct.physical_points(coords.mean(axis=0)[None])[0]],
        }
        if ct.is_hu:
            entry["mean_hu"] = round(float(ct.array[pts].mean()), 1)
        score = score_of(pts) if score_of is not None else None
        if score is not None:
            entry["detection_score"] = round(float(score), 3)
        malignancy = malignancy_of(pts) if malignancy_of is not None else None
        if malignancy is not None:
            entry["malignancy_score"] = round(float(malignancy["malignancy_score"]), 3)
            entry["malignancy_class"] = str(malignancy["malignancy_class"])
        out.append(entry)
    out.sort(key=lambda e: -e["volume_ml"])
    return out


def _max_axial_extent(comp: np.ndarray, spacing: np.ndarray) -> float:
    """Longest in-plane distance across the nodule on any slice (a RECIST-like diameter): between
    pixel centres, plus one pixel. A farthest pair lies at the ends of rows (a point inside a row
    is between its ends, and distance to a segment peaks at an end), so only those are compared."""
    best = 0.0
    step = spacing[1:]
    for plane in comp:
        rows = np.flatnonzero(plane.any(axis=1))
        if not len(rows):
            continue
        first = plane[rows].argmax(axis=1)
        last = plane.shape[1] - 1 - plane[rows, ::-1].argmax(axis=1)
        if len(rows) == 1 and first[0] == last[0]:  # a single pixel
            best = max(best, float(step.min()))
            continue
        pts = np.concatenate([np.stack([rows, first], axis=1), np.stack([rows, last], axis=1)]) * step
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max() + float(step.mean())
        best = max(best, float(d))
    return best


def build_report(ct: CTImage, labels: np.ndarray, model: str, warnings: list[str], score_of=None,
                 malignancy_of=None) -> dict:
    nearest = _nearest_lung(labels)  # shared by the lung volumes and the nodule sides
    return {
        "input": {
            "source": ct.source,
            "format": ct.format,
            "shape_zyx": list(ct.shape),
            "spacing_xyz_mm": [round(s, 4) for s in ct.spacing],
            "hounsfield_units": ct.is_hu,
        },
        "model": model,
        "labels": {"1": "right lung", "2": "left lung", "3": "nodule"},
        "lungs": lung_statistics(ct, labels, nearest),
        "nodules": nodule_statistics(ct, labels, nearest, score_of, malignancy_of),
        "warnings": list(warnings),
    }
