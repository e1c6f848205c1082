"""Inter-reader agreement: each reader against the consensus of the others (LIDC crops, 4 readers).

A model is only as good as its reference; where radiologists disagree, a model's Dice cannot be
read without the readers' own Dice against the same kind of reference. For every crop and every
reader r, the reference is the consensus of the OTHER readers (a pixel marked by >= 2 of the
other 3), and r's mask is scored against it with MONAI's Dice. A model can be placed on the same
scale with agreement_with_consensus (the model against each leave-one-out consensus).

Empty consensus: when the other readers' consensus is empty (fewer than 2 of them marked any
pixel in the crop), Dice is undefined for reader r: that crop is left out of r's Dice and
counted instead (n_consensus_empty, and n_reader_alone when r marked something there - a
detection disagreement rather than a contour disagreement). When the consensus is non-empty and
r marked nothing, r scores 0 (a miss, counted in n_missed); "Dice if marked" leaves misses out
and measures contour agreement alone. Scores are given per 2D crop and per nodule (all slices of
a nodule stacked as one volume). Reader slots mask-0..3 are NOT the same radiologist across
nodules in LIDC (readers are anonymous per scan), so per-slot numbers describe the pool.
Confidence intervals resample patients.
"""
from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass

import numpy as np

from .bootstrap import describe

MIN_VOTES = 2
_MASK_PATH = re.compile(r"(?P<patient>LIDC-IDRI-\d+)/(?P<nodule>nodule-\d+)/mask-(?P<reader>\d+)/"
                        r"slice-(?P<slice>\d+)\.png$")


@dataclass
class Nodule:
    patient: str
    nodule: str
    slices: list[int]
    masks: np.ndarray  # (readers, slices, H, W) bool


def iter_lidc_nodules(tar_path, max_patients: int | None = None):
    """Nodules of the LIDC crops tarball with every reader's masks, read straight from the archive.

    max_patients stops after that many patients (in archive order) to keep tests short.
    """
    sparse: dict[tuple[str, str], dict[int, dict[int, np.ndarray]]] = {}
    shape, patients = None, []
    from PIL import Image

    with tarfile.open(tar_path, "r:gz") as tf:
        for member in tf:
            m = _MASK_PATH.search(member.name)
            if not m or not member.isfile():
                continue
            if m["patient"] not in patients:
                if max_patients is not None and len(patients) >= max_patients:
                    break
                patients.append(m["patient"])
            with Image.open(io.BytesIO(tf.extractfile(member).read())) as im:
                arr = np.asarray(im.convert("L")) > 127
            shape = shape or arr.shape
            if arr.shape != shape:
                raise ValueError(f"{member.name}: mask shape {arr.shape} differs from {shape}")
            slot = sparse.setdefault((m["patient"], m["nodule"]), {}).setdefault(int(m["slice"]), {})
            slot[int(m["reader"])] = np.flatnonzero(arr).astype(np.int32)
    for (patient, nodule), by_slice in sparse.items():
        n_readers = 1 + max(r for s in by_slice.values() for r in s)
        slices = sorted(by_slice)
        masks = np.zeros((n_readers, len(slices), shape[0] * shape[1]), bool)
        for j, s in enumerate(slices):
            for r, idx in by_slice[s].items():
                masks[r, j, idx] = True
        yield Nodule(patient, nodule, slices, masks.reshape(n_readers, len(slices), *shape))


def consensus(masks: np.ndarray, min_votes: int = MIN_VOTES) -> np.ndarray:
    """Pixels marked by at least min_votes of the given readers (axis 0)."""
    return masks.sum(axis=0) >= min_votes


def _dice_iou(candidate: np.ndarray, reference: np.ndarray):
    """MONAI Dice and IoU of a batch of binary masks (batch axis first)."""
    import torch
    from monai.metrics import compute_dice, compute_iou

    p = torch.from_numpy(np.ascontiguousarray(candidate, np.uint8))[:, None]
    r = torch.from_numpy(np.ascontiguousarray(reference, np.uint8))[:, None]
    dice = compute_dice(p, r, include_background=True, ignore_empty=False)[:, 0].numpy()
    iou = compute_iou(p, r, include_background=True, ignore_empty=False)[:, 0].numpy()
    return dice.astype(float), iou.astype(float)


def reader_vs_consensus(masks: np.ndarray, min_votes: int = MIN_VOTES, per_slice: bool = True) -> dict:
    """Each reader against the consensus of the others.

    masks: (readers, slices, H, W) bool. per_slice=True scores every slice (2D crop) alone,
    False scores the stack as one volume. Returns arrays of shape (readers, items): dice, iou
    (NaN where undefined), defined (consensus non-empty), reader_marked.
    """
    n = masks.shape[0]
    items = masks if per_slice else masks[:, None]  # (readers, items, ...)
    dice = np.full(items.shape[:2], np.nan)
    iou = np.full(items.shape[:2], np.nan)
    axes = tuple(range(2, items.ndim))
    reader_marked = items.any(axis=axes)
    defined = np.zeros(items.shape[:2], bool)
    for r in range(n):
        cons = consensus(np.delete(items, r, axis=0), min_votes)
        defined[r] = cons.any(axis=tuple(range(1, cons.ndim)))
        if defined[r].any():
            dice[r, defined[r]], iou[r, defined[r]] = _dice_iou(items[r][defined[r]], cons[defined[r]])
    return {"dice": dice, "iou": iou, "defined": defined, "reader_marked": reader_marked}


def agreement_with_consensus(candidate: np.ndarray, masks: np.ndarray, min_votes: int = MIN_VOTES) -> dict:
    """Place a model (or anyone) on the readers' scale.

    candidate: (slices, H, W) or (H, W) bool; masks: (readers, slices, H, W) or (readers, H, W).
    Returns the mean Dice of the candidate against each leave-one-reader-out consensus (the same
    references the readers were scored against; undefined ones skipped) and against the
    consensus of all readers, both per slice-stack (volume).
    """
    candidate = np.asarray(candidate, bool)
    masks = np.asarray(masks, bool)
    loo = []
    for r in range(masks.shape[0]):
        cons = consensus(np.delete(masks, r, axis=0), min_votes)
        if cons.any():
            loo.append(_dice_iou(candidate[None], cons[None])[0][0])
    full = consensus(masks, min_votes)
    return {"dice_vs_leave_one_out": float(np.mean(loo)) if loo else float("nan"), "n_defined": len(loo),
            "dice_vs_all_readers": float(_dice_iou(candidate[None], full[None])[0][0]) if full.any()
            else float("nan")}


def reader_agreement(tar_path, n_boot: int = 1000, seed: int = 0, max_patients: int | None = None,
                     min_votes: int = MIN_VOTES) -> dict:
    """Per-reader and pooled agreement tables for the LIDC crops, per crop and per nodule."""
    crop_rows, nodule_rows = [], []
    n_nodules = 0
    for nod in iter_lidc_nodules(tar_path, max_patients):
        n_nodules += 1
        for level, rows, per_slice in (("crop", crop_rows, True), ("nodule", nodule_rows, False)):
            res = reader_vs_consensus(nod.masks, min_votes, per_slice)
            for r in range(nod.masks.shape[0]):
                for j in range(res["dice"].shape[1]):
                    rows.append({"patient": nod.patient, "nodule": nod.nodule,
                                 "slice": nod.slices[j] if per_slice else None, "reader": r,
                                 "dice": res["dice"][r, j], "iou": res["iou"][r, j],
                                 "defined": bool(res["defined"][r, j]),
                                 "reader_marked": bool(res["reader_marked"][r, j])})
    readers_per_crop = _readers_per_crop(crop_rows)
    return {"min_votes": min_votes, "n_patients": len({r["patient"] for r in crop_rows}), "n_nodules": n_nodules,
            "n_crops": len(readers_per_crop), "readers_marking_crop": np.bincount(
                list(readers_per_crop.values()), minlength=5).tolist(),
            "per_crop": _tables(crop_rows, n_boot, seed), "per_nodule": _tables(nodule_rows, n_boot, seed),
            "crop_rows": crop_rows}


def _readers_per_crop(rows) -> dict:
    out: dict = {}
    for r in rows:
        key = (r["patient"], r["nodule"], r["slice"])
        out[key] = out.get(key, 0) + int(r["reader_marked"])
    return out


def _tables(rows, n_boot, seed) -> list[dict]:
    readers = sorted({r["reader"] for r in rows})
    out = []
    groups = [(f"reader {k}", [r for r in rows if r["reader"] == k]) for k in readers] + [("all readers", rows)]
    for name, sub in groups:
        scored = [r for r in sub if r["defined"]]
        dice = np.array([r["dice"] for r in scored])
        patients = [r["patient"] for r in scored]
        d = describe(dice, patients, n_boot, seed)
        per_patient = {}
        for r in scored:
            per_patient.setdefault(r["patient"], []).append(r["dice"])
        marked = [r for r in scored if r["reader_marked"]]
        dm = describe([r["dice"] for r in marked], [r["patient"] for r in marked], n_boot, seed)
        out.append({"reader": name, "n_scored": d["n"], "dice_mean": d["mean"], "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"], "dice_median": d["median"], "dice_std": d["std"],
                    "dice_marked_mean": dm["mean"], "marked_ci_low": dm["ci_low"], "marked_ci_high": dm["ci_high"],
                    "patient_level_mean": float(np.mean([np.mean(v) for v in per_patient.values()]))
                    if per_patient else float("nan"),
                    "iou_mean": float(np.mean([r["iou"] for r in scored])) if scored else float("nan"),
                    "n_missed": int(sum(not r["reader_marked"] for r in scored)),
                    "n_consensus_empty": sum(not r["defined"] for r in sub),
                    "n_reader_alone": sum((not r["defined"]) and r["reader_marked"] for r in sub),
                    "n_patients": d["n_patients"]})
    return out


def format_table(rows: list[dict], title: str) -> str:
    head = (f"{'reader':<12}{'scored':>7}{'Dice mean [95% CI]':>26}{'median':>8}{'pat.mean':>9}{'IoU':>7}"
            f"{'Dice if marked [95% CI]':>27}{'missed':>8}{'cons.empty':>11}{'alone':>7}")
    lines = [title, head]
    for r in rows:
        ci = f"{r['dice_mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        ci_m = f"{r['dice_marked_mean']:.3f} [{r['marked_ci_low']:.3f}, {r['marked_ci_high']:.3f}]"
        lines.append(f"{r['reader']:<12}{r['n_scored']:>7}{ci:>26}{r['dice_median']:>8.3f}"
                     f"{r['patient_level_mean']:>9.3f}{r['iou_mean']:>7.3f}{ci_m:>27}{r['n_missed']:>8}"
                     f"{r['n_consensus_empty']:>11}{r['n_reader_alone']:>7}")
    return "\n".join(lines)

