"""Per-case, per-class segmentation metrics (MONAI underneath) with a stated empty-mask convention.

Arrays are canonical label maps (see classes.py) in (z, y, x) order; `spacing_zyx` in mm in the
same order. A single slice (z == 1) is scored in 2D (so its surfaces are in-plane contours);
its volume uses the slice thickness spacing_zyx[0].

Empty-mask convention (MONAI returns NaN for empty-vs-empty Dice unless ignore_empty=False,
MONAI #7504; we pass ignore_empty=False and fix every other metric the same way):
    both empty      Dice = IoU = F1 = precision = recall = surface Dice = 1, HD95 = ASSD = 0
    ref empty only  Dice = IoU = F1 = surface Dice = 0, precision = 0, recall undefined (NaN),
                    HD95 = ASSD = NaN
    pred empty only Dice = IoU = F1 = surface Dice = 0, recall = 0, precision undefined (NaN),
                    HD95 = ASSD = NaN
A NaN distance means "infinitely far" and is never averaged silently: summaries report how many
cases were undefined next to the mean over the defined ones, and the flags empty_ref /
empty_pred travel with every row.

Definitions: HD95 is MONAI's percentile Hausdorff distance, the larger of the two directed 95th
percentiles of boundary-voxel distances; ASSD is the mean of all boundary distances in both
directions; surface Dice (NSD) is the fraction of boundary voxels of both masks lying within
the tolerance of the other boundary. recall is sensitivity. Specificity and accuracy count the
true negatives of the whole image, so they flatter large images: report them, rank by the rest.
"""
from __future__ import annotations

import warnings

import numpy as np

from .classes import ALL_CLASSES, check_classes, class_mask

DEFAULT_TOLERANCE_MM = 2.0
OVERLAP_METRICS = ("dice", "iou", "precision", "recall", "specificity", "accuracy", "f1")
SURFACE_METRICS = ("hd95_mm", "assd_mm", "surface_dice")
VOLUME_METRICS = ("vol_pred_ml", "vol_ref_ml", "vol_diff_ml", "vol_diff_pct")
FLAG_COLUMNS = ("empty_ref", "empty_pred")
METRICS = OVERLAP_METRICS + SURFACE_METRICS + VOLUME_METRICS
# the MONAI confusion-matrix names behind our column names
_CM_NAMES = {"precision": "precision", "recall": "sensitivity", "specificity": "specificity",
             "accuracy": "accuracy", "f1": "f1 score"}


def evaluate_case(pred: np.ndarray, ref: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0), classes=ALL_CLASSES,
                  tolerance_mm: "float | dict[str, float]" = DEFAULT_TOLERANCE_MM, min_iou: float = 0.1,
                  return_lesions: bool = False):
    """Metrics of one case: {class: {metric: value}} for the requested classes.

    pred, ref: canonical label maps on the same grid ((z, y, x) or (y, x)); ask only for classes
    both label conventions provide (LabelMap.provides): a binary lung reference cannot score the
    sides, and a lung-only reference would score every predicted nodule as a false positive.
    The nodule class also gets per-lesion detection counts (lesions.py: hit at IoU >= min_iou).
    With return_lesions=True returns (metrics, lesion_rows) where lesion_rows lists every
    reference lesion and predicted component.
    """
    pred, ref, spacing = _as_3d(pred, ref, spacing_zyx)
    out, lesion_rows = {}, []
    for name in check_classes(classes):
        p, r = class_mask(pred, name), class_mask(ref, name)
        tol = tolerance_mm.get(name, DEFAULT_TOLERANCE_MM) if isinstance(tolerance_mm, dict) else tolerance_mm
        out[name] = binary_metrics(p, r, spacing, tol)
        if name == "nodule":
            from .lesions import lesion_counts, match_lesions

            rows = match_lesions(p, r, spacing, min_iou=min_iou)
            out[name].update(lesion_counts(rows))
            lesion_rows = rows
    return (out, lesion_rows) if return_lesions else out


def binary_metrics(pred: np.ndarray, ref: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0),
                   tolerance_mm: float = DEFAULT_TOLERANCE_MM) -> dict[str, float]:
    """All metrics of one binary prediction against one binary reference (3D or 2D arrays)."""
    pred, ref, spacing = _as_3d(np.asarray(pred, bool), np.asarray(ref, bool), spacing_zyx)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    n_pred, n_ref = int(pred.sum()), int(ref.sum())
    vol_pred, vol_ref = n_pred * voxel_ml, n_ref * voxel_ml
    res = {
        "vol_pred_ml": vol_pred, "vol_ref_ml": vol_ref, "vol_diff_ml": vol_pred - vol_ref,
        "vol_diff_pct": 100.0 * (vol_pred - vol_ref) / vol_ref if n_ref else float("nan"),
        "empty_ref": float(n_ref == 0), "empty_pred": float(n_pred == 0),
    }
    if n_pred == 0 and n_ref == 0:
        res.update({m: 1.0 for m in OVERLAP_METRICS}, hd95_mm=0.0, assd_mm=0.0, surface_dice=1.0)
        return res
    p, r, n_outside, surf_spacing = _crop_to_union(pred, ref, spacing)
    res.update(_overlap(p, r, n_outside))
    if n_pred == 0 or n_ref == 0:  # one side empty: distances are infinite -> undefined
        res.update(hd95_mm=float("nan"), assd_mm=float("nan"), surface_dice=0.0)
    else:
        res.update(_surface(p, r, surf_spacing, tolerance_mm))
    return res


# ---- helpers -----------------------------------------------------------------------------------
def _as_3d(pred, ref, spacing_zyx):
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    spacing = tuple(float(s) for s in spacing_zyx)
    if pred.ndim == 2:
        pred, ref = pred[None], ref[None]
        spacing = (1.0, *spacing[-2:]) if len(spacing) == 2 else spacing
    if pred.ndim != 3 or len(spacing) != 3:
        raise ValueError(f"expected (z, y, x) or (y, x) arrays with matching spacing, got {pred.shape}, {spacing}")
    return pred, ref, spacing


def _crop_to_union(pred, ref, spacing):
    """Crop to the union's bounding box (+1 voxel) so metrics cost what the objects cost.

    Voxels outside the box are true negatives; their count is returned to complete the confusion
    matrix. A single slice is returned as 2D so MONAI finds in-plane contours.
    """
    union = pred | ref
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        box.append(slice(max(idx[0] - 1, 0), min(idx[-1] + 2, union.shape[axis])))
    p, r = pred[tuple(box)], ref[tuple(box)]
    n_outside = union.size - p.size
    if pred.shape[0] == 1:
        return p[0], r[0], n_outside, spacing[1:]
    return p, r, n_outside, spacing


def _tensor(mask):
    import torch

    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None, None]


def _overlap(p, r, n_outside) -> dict[str, float]:
    from monai.metrics import compute_confusion_matrix_metric, compute_dice, compute_iou, get_confusion_matrix

    tp_, tr_ = _tensor(p), _tensor(r)
    out = {"dice": float(compute_dice(tp_, tr_, include_background=True, ignore_empty=False)),
           "iou": float(compute_iou(tp_, tr_, include_background=True, ignore_empty=False))}
    cm = get_confusion_matrix(tp_.float(), tr_.float(), include_background=True).double()  # [1, 1, (tp, fp, tn, fn)]
    cm[..., 2] += n_outside
    for ours, monai_name in _CM_NAMES.items():
        out[ours] = float(compute_confusion_matrix_metric(monai_name, cm))
    return out


def _surface(p, r, spacing, tolerance_mm) -> dict[str, float]:
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    tp_, tr_ = _tensor(p).float(), _tensor(r).float()
    with warnings.catch_warnings():  # MONAI's own deprecation notices are not the user's business
        warnings.simplefilter("ignore", FutureWarning)
        hd95 = compute_hausdorff_distance(tp_, tr_, include_background=True, percentile=95, spacing=list(spacing))
        assd = compute_average_surface_distance(tp_, tr_, include_background=True, symmetric=True,
                                                spacing=list(spacing))
        nsd = compute_surface_dice(tp_, tr_, [float(tolerance_mm)], include_background=True, spacing=list(spacing))
    return {"hd95_mm": float(hd95), "assd_mm": float(assd), "surface_dice": float(nsd)}



def dice_scores(pred: np.ndarray, ref: np.ndarray, classes=ALL_CLASSES) -> dict[str, float]:
    """Dice only (MONAI compute_dice, ignore_empty=False: both empty -> 1), for loops that need speed."""
    from monai.metrics import compute_dice

    out = {}
    for name in check_classes(classes):
        p, r = class_mask(pred, name), class_mask(ref, name)
        if not (p.any() or r.any()):
            out[name] = 1.0
            continue
        p, r, _, _ = _crop_to_union(*_as_3d(p, r, (1.0, 1.0, 1.0)))
        out[name] = float(compute_dice(_tensor(p), _tensor(r), include_background=True, ignore_empty=False))
    return out
