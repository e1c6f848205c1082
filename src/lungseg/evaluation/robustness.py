"""Robustness to intensity changes: Dice when the input CT is shifted, rescaled or made noisy.

Scanners and reconstruction kernels move HU values (calibration offsets, contrast gain, noise),
so a segmenter's Dice under such changes makes "robust to intensity variance" a number:
the mean and standard deviation of Dice over all perturbations of one type, and the drop from
the unperturbed Dice.

Perturbations (magnitudes in HU for HU input):
    shift   add a constant (calibration offset)
    scale   multiply about 0 HU (water), i.e. a contrast gain: -1000 HU x 0.9 -> -900 HU
    noise   add Gaussian noise with this standard deviation (seeded, reproducible)
For image-mode (non-HU) input, shift and noise are converted to image units assuming the image's
0.5..99.5 percentile range spans 1500 HU (a lung window), and scaling pivots about the median.
"""
from __future__ import annotations

import numpy as np

from .classes import CLASS_CODES, LEFT, LUNG, NODULE, RIGHT

DEFAULT_PERTURBATIONS = {
    "shift": (-200.0, -100.0, -50.0, 50.0, 100.0, 200.0),
    "scale": (0.8, 0.9, 1.1, 1.2),
    "noise": (10.0, 25.0, 50.0, 100.0),
}
UNITS = {"shift": "HU", "scale": "gain", "noise": "sigma HU"}
IMAGE_MODE_WINDOW_HU = 1500.0


def perturb(ct, kind: str, magnitude: float, rng: np.random.Generator | None = None):
    """A copy of the CTImage with one perturbation applied (see the module docstring)."""
    arr = ct.array.astype(np.float32, copy=True)
    if ct.is_hu:
        hu, pivot = 1.0, 0.0
    else:
        lo, hi = np.percentile(arr, [0.5, 99.5])
        hu, pivot = float(hi - lo) / IMAGE_MODE_WINDOW_HU or 1.0, float(np.median(arr))
    if kind == "shift":
        arr += magnitude * hu
    elif kind == "scale":
        arr = (arr - pivot) * magnitude + pivot
    elif kind == "noise":
        rng = rng or np.random.default_rng(0)
        arr += rng.normal(0.0, magnitude * hu, arr.shape).astype(np.float32)
    else:
        raise ValueError(f"unknown perturbation '{kind}' (use shift, scale or noise)")
    return ct.with_array(arr)


def default_classes(ref: np.ndarray) -> tuple[str, ...]:
    """Classes present in a canonical reference (sides only when both sides are labelled)."""
    codes = set(np.unique(ref).tolist())
    out = []
    if {RIGHT, LEFT} <= codes:
        out += ["right_lung", "left_lung"]
    if codes & {RIGHT, LEFT, LUNG}:
        out.append("both_lungs")
    if NODULE in codes:
        out.append("nodule")
    return tuple(out)


def robustness_curve(segment_fn, ct, ref, perturbations=None, classes=None, seed: int = 0, log=None) -> dict:
    """Dice of segment_fn(perturbed CT) against ref for every perturbation.

    segment_fn: any callable CTImage -> canonical label map on the CT's grid.
    ct, ref: one CTImage and its canonical reference, or equal-length lists of both.
    perturbations: {kind: magnitudes}, default DEFAULT_PERTURBATIONS.
    Returns {"baseline": {class: Dice}, "points": [{case, kind, magnitude, class: Dice...}],
    "summary": {kind: {class: {mean, std, min, drop}}}, "overall": {class: {...}}, "units", ...};
    baseline and the summaries average over cases.
    """
    from .metrics import dice_scores

    cts, refs = (list(ct), list(ref)) if isinstance(ct, (list, tuple)) else ([ct], [ref])
    if len(cts) != len(refs):
        raise ValueError(f"{len(cts)} CTs but {len(refs)} references")
    perturbations = perturbations or DEFAULT_PERTURBATIONS
    classes = tuple(classes or default_classes(refs[0]))
    unknown = [c for c in classes if c not in CLASS_CODES]
    if unknown:
        raise ValueError(f"unknown classes {unknown}")
    rng = np.random.default_rng(seed)
    base, points = [], []
    for i, (c, r) in enumerate(zip(cts, refs)):
        base.append(dice_scores(segment_fn(c), r, classes))
        for kind, mags in perturbations.items():
            for m in mags:
                d = dice_scores(segment_fn(perturb(c, kind, float(m), rng)), r, classes)
                points.append({"case": i, "kind": kind, "magnitude": float(m), **d})
                if log:
                    log(f"case {i} {kind} {m:g}: " + ", ".join(f"{k} {v:.3f}" for k, v in d.items()))
    baseline = {k: float(np.mean([b[k] for b in base])) for k in classes}
    summary = {kind: _stats([p for p in points if p["kind"] == kind], classes, baseline) for kind in perturbations}
    return {"baseline": baseline, "points": points, "summary": summary,
            "overall": _stats(points, classes, baseline), "units": {k: UNITS.get(k, "") for k in perturbations},
            "perturbations": {k: [float(m) for m in v] for k, v in perturbations.items()},
            "n_cases": len(cts), "classes": list(classes)}


def _stats(points, classes, baseline) -> dict:
    out = {}
    for k in classes:
        v = np.array([p[k] for p in points], float)
        out[k] = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
                  "drop": float(baseline[k] - v.mean())}
    return out
