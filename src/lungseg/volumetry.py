"""Numbers a radiologist reads off a label map: lung volumes, density, emphysema, nodules."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .io import CTImage

EMPHYSEMA_HU = -950.0  # LAA-950: the standard low-attenuation-area threshold on inspiration CT
LUNG_NAMES = {1: "right", 2: "left"}


def lung_statistics(ct: CTImage, labels: np.ndarray, nearest: np.ndarray | None = None) -> dict:
    """Per lung (and both): volume in mL, mean HU and emphysema index (% voxels < -950 HU).
    Nodules (label 3) count toward the lung they sit in for volumes (`nearest`: _nearest_lung)."""
    out = {}
    nodule = labels == 3
    sides = {name: labels == value for value, name in LUNG_NAMES.items()}
    if nodule.any():  # give each nodule voxel to the nearer lung so lung volumes include tumours
        nearest = _nearest_lung(labels) if nearest is None else nearest
        for value, name in LUNG_NAMES.items():
            sides[name] = sides[name] | (nodule & (nearest == value))
    sides["total"] = sides["right"] | sides["left"]
    for name, mask in sides.items():
        n = int(mask.sum())
        entry = {"volume_ml": round(n * ct.voxel_volume_ml, 2), "voxels": n}
        if ct.is_hu and n:
            values = ct.array[mask]
            entry["mean_hu"] = round(float(values.mean()), 1)
            entry["emphysema_index_pct"] = round(100.0 * float((values < EMPHYSEMA_HU).mean()), 2)
        out[name] = entry
    return out


def _nearest_lung(labels: np.ndarray) -> np.ndarray:
    """For each nodule voxel, the lung (1 or 2) nearest to it; 0 elsewhere. Computed on the
    nodules' bounding box (plus a margin), not the whole grid."""
    from .postprocess import foreground_box

    out = np.zeros_like(labels)
    nodule = labels == 3
    lungs_all = np.isin(labels, (1, 2))
    if not nodule.any() or not lungs_all.any():
        return out
    box = foreground_box(nodule, margin=20)
    sub = labels[box]
    lungs = np.isin(sub, (1, 2))
    if not lungs.any():
        box, sub, lungs = tuple(slice(None) for _ in labels.shape), labels, lungs_all
    idx = ndi.distance_transform_edt(~lungs, return_distances=False, return_indices=True)
    nearest = sub[tuple(idx)]
    out[box] = np.where(sub == 3, nearest, 0)
    return out


def nodule_statistics(ct: CTImage, labels: np.ndarray, nearest: np.ndarray | None = None) -> list[dict]:
    """One entry per connected nodule: size, density, position (side, slices, LPS centroid)."""
    nodule = labels == 3
    if not nodule.any():
        return []
    lab, n = ndi.label(nodule, structure=np.ones((3, 3, 3)))
    nearest = _nearest_lung(labels) if nearest is None else nearest
    spacing = np.asarray(ct.spacing_zyx)
    out = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        comp = lab[sl] == i
        coords = np.argwhere(comp) + np.array([s.start for s in sl])
        volume_mm3 = comp.sum() * float(np.prod(spacing))
        side_value = int(np.bincount(nearest[tuple(coords.T)], minlength=3)[1:3].argmax()) + 1
        entry = {
            "id": i,
            "side": LUNG_NAMES[side_value],
            "volume_ml": round(volume_mm3 / 1000.0, 3),
            "diameter_mm": round(float((6.0 * volume_mm3 / np.pi) ** (1 / 3)), 1),  # equivalent sphere
            "max_axial_diameter_mm": round(_max_axial_extent(comp, spacing), 1),
            "slice_range": [int(sl[0].start), int(sl[0].stop - 1)],
            "centroid_index_zyx": [round(float(c), 1) for c in coords.mean(axis=0)],
            "centroid_mm_lps": [round(float(c), 1) for c in ct.physical_points(coords.mean(axis=0)[None])[0]],
        }
        if ct.is_hu:
            entry["mean_hu"] = round(float(ct.array[sl][comp].mean()), 1)
        out.append(entry)
    out.sort(key=lambda e: -e["volume_ml"])
    return out


def _max_axial_extent(comp: np.ndarray, spacing: np.ndarray) -> float:
    """Longest in-plane distance across the nodule on any slice (a RECIST-like diameter)."""
    best = 0.0
    for k in range(comp.shape[0]):
        pts = np.argwhere(comp[k]) * spacing[1:]
        if len(pts) < 2:
            best = max(best, float(spacing[1:].min()) if len(pts) else 0.0)
            continue
        if len(pts) > 400:
            pts = pts[np.random.default_rng(0).choice(len(pts), 400, replace=False)]
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max() + float(spacing[1:].mean())
        best = max(best, float(d))
    return best


def build_report(ct: CTImage, labels: np.ndarray, model: str, warnings: list[str]) -> dict:
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
        "nodules": nodule_statistics(ct, labels, nearest),
        "warnings": list(warnings),
    }
