"""Per-lesion nodule detection: connected components of reference and prediction, matched by IoU.

Rules (stated once, used everywhere):
- Lesions are connected components with full connectivity (26-neighbours in 3D, 8 in 2D).
- A reference lesion is *hit* when some predicted component overlaps it with IoU >= min_iou
  (default 0.1: a touch is not enough, a prediction ten times the lesion's size is not a hit).
- A predicted component that reaches IoU >= min_iou with no reference lesion is a false positive.
  A lesion split into two predicted pieces that each pass the threshold counts once, no FP.
- Size is the equivalent diameter: of the sphere with the lesion's volume in 3D,
  of the circle with its area when the case is a single slice (z == 1).
- Diameter bins: <3, 3-10, 10-20, 20-30, >=30 mm (half-open [lo, hi)); recall is reported for
  the three clinical bins 3-10, 10-20, 20-30 mm.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

DIAMETER_BINS = ((3.0, 10.0), (10.0, 20.0), (20.0, 30.0))
DEFAULT_MIN_IOU = 0.1
BIN_NAMES = tuple(f"{lo:g}-{hi:g}" for lo, hi in DIAMETER_BINS)


def bin_name(diameter_mm: float) -> str:
    for lo, hi in DIAMETER_BINS:
        if lo <= diameter_mm < hi:
            return f"{lo:g}-{hi:g}"
    return f"<{DIAMETER_BINS[0][0]:g}" if diameter_mm < DIAMETER_BINS[0][0] else f">={DIAMETER_BINS[-1][1]:g}"



def equivalent_diameter(n_voxels: int, spacing_zyx, single_slice: bool) -> float:
    """Diameter (mm) of the sphere (3D) or circle (single slice) with the lesion's size."""
    if single_slice:
        area = n_voxels * spacing_zyx[1] * spacing_zyx[2]
        return float(2.0 * np.sqrt(area / np.pi))
    volume = n_voxels * float(np.prod(spacing_zyx))
    return float((6.0 * volume / np.pi) ** (1.0 / 3.0))


def _components(mask: np.ndarray, single_slice: bool):
    if single_slice:
        lab2d, n = ndimage.label(mask[0], structure=np.ones((3, 3), bool))
        return lab2d[None], n
    return ndimage.label(mask, structure=np.ones((3, 3, 3), bool))


def _crop_to_union(pred, ref):
    """Components lie inside the union's bounding box; labelling only that is much faster."""
    union = pred | ref
    if not union.any():
        return pred[:, :1, :1], ref[:, :1, :1]
    box = tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union))
    return pred[box], ref[box]


def match_lesions(pred: np.ndarray, ref: np.ndarray, spacing_zyx, min_iou: float = DEFAULT_MIN_IOU) -> list[dict]:
    """One row per reference lesion (source='ref') and per predicted component (source='pred').

    Row keys: source, id, voxels, diameter_mm, bin, best_iou, matched (hit for 'ref', true
    positive for 'pred'), n_matches.
    """
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    if pred.ndim == 2:
        pred, ref, spacing_zyx = pred[None], ref[None], (1.0, *tuple(spacing_zyx)[-2:])
    single = pred.shape[0] == 1
    pred, ref = _crop_to_union(pred, ref)
    ref_lab, n_ref = _components(ref, single)
    pred_lab, n_pred = _components(pred, single)
    ref_size = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)
    pred_size = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)
    # intersections of every (ref, pred) pair from the overlapping voxels only
    both = (ref_lab > 0) & (pred_lab > 0)
    pair = ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both]
    inter = np.bincount(pair, minlength=(n_ref + 1) * (n_pred + 1)).reshape(n_ref + 1, n_pred + 1)
    union = ref_size[:, None] + pred_size[None, :] - inter
    iou = np.where(inter > 0, inter / np.maximum(union, 1), 0.0)[1:, 1:]
    match = iou >= min_iou
    rows = []
    for source, sizes, n, axis in (("ref", ref_size, n_ref, 1), ("pred", pred_size, n_pred, 0)):
        for k in range(n):
            d = equivalent_diameter(int(sizes[k + 1]), spacing_zyx, single)
            ious = iou[k] if axis == 1 else iou[:, k]
            matches = match[k] if axis == 1 else match[:, k]
            rows.append({"source": source, "id": k + 1, "voxels": int(sizes[k + 1]), "diameter_mm": d,
                         "bin": bin_name(d), "best_iou": float(ious.max()) if ious.size else 0.0,
                         "matched": bool(matches.any()), "n_matches": int(matches.sum())})
    return rows


def lesion_counts(rows: list[dict]) -> dict[str, float]:
    """Scalar per-case detection counts (go into the nodule row of the per-case table)."""
    ref = [r for r in rows if r["source"] == "ref"]
    pred = [r for r in rows if r["source"] == "pred"]
    n_hit = sum(r["matched"] for r in ref)
    out = {"lesions_ref": float(len(ref)), "lesions_pred": float(len(pred)), "lesions_hit": float(n_hit),
           "lesions_fp": float(sum(not r["matched"] for r in pred)),
           "lesion_recall": n_hit / len(ref) if ref else float("nan")}
    for name in BIN_NAMES:
        in_bin = [r for r in ref if r["bin"] == name]
        out[f"lesions_ref_{name}"] = float(len(in_bin))
        out[f"lesions_hit_{name}"] = float(sum(r["matched"] for r in in_bin))
    return out
