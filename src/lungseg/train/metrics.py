"""Per-class overlap counts pooled over a whole epoch, and the mean Dice per case.

Dice and IoU are computed from true/false positive counts summed over every sample (slices of a
volume pool into the volume's score), so empty slices never produce NaN and small structures
are not drowned by averaging per slice. The mean leaves the background out.
`CaseDice` scores each sample on its own (the mean over samples whose reference has the class):
how nodule crops are reported, where a 20-pixel nodule counts as much as a 2000-pixel one.
"""
from __future__ import annotations

import math

import torch


def predict_labels(logits: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) logits -> (B, ...) label indices (sigmoid threshold when C == 1)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


class OverlapCounter:
    def __init__(self, num_classes: int):
        self.c = max(num_classes, 2)
        self.counts = torch.zeros(3, self.c, dtype=torch.float64)  # tp, fp, fn per class

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred, target = pred.reshape(-1), target.reshape(-1).long()
        idx = target * self.c + pred
        cm = torch.bincount(idx.cpu(), minlength=self.c * self.c).reshape(self.c, self.c).double()
        tp = cm.diag()
        self.counts[0] += tp
        self.counts[1] += cm.sum(0) - tp
        self.counts[2] += cm.sum(1) - tp

    def per_class(self) -> dict[str, list[float]]:
        tp, fp, fn = self.counts
        dice = [float(2 * t / (2 * t + p + n)) if (2 * t + p + n) > 0 else math.nan for t, p, n in zip(tp, fp, fn)]
        iou = [float(t / (t + p + n)) if (t + p + n) > 0 else math.nan for t, p, n in zip(tp, fp, fn)]
        return {"dice": dice, "iou": iou}

    def mean(self) -> dict[str, float]:
        pc = self.per_class()
        out = {}
        for k, vals in pc.items():
            fg = [v for v in vals[1:] if not math.isnan(v)]
            out[k] = sum(fg) / len(fg) if fg else math.nan
        return out


class CaseDice:
    """Mean Dice over (sample, foreground class) pairs whose reference has the class."""

    def __init__(self, num_classes: int):
        self.c = max(num_classes, 2)
        self.total, self.n = 0.0, 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred, target = pred.reshape(pred.shape[0], -1), target.reshape(target.shape[0], -1).long()
        for c in range(1, self.c):
            p, t = pred == c, target == c
            ref = t.sum(1)
            present = ref > 0
            if not bool(present.any()):
                continue
            tp = (p & t).sum(1)
            dice = 2 * tp.double() / (p.sum(1) + ref).double().clamp(min=1)
            self.total += float(dice[present].sum())
            self.n += int(present.sum())

    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan
