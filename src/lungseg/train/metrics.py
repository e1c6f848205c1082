"""Per-class overlap counts pooled over a whole epoch.

Dice and IoU are computed from true/false positive counts summed over every sample (slices of a
volume pool into the volume's score), so empty slices never produce NaN and small structures
are not drowned by averaging per slice. The mean leaves the background out.
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
