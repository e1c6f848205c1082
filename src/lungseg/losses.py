"""Segmentation losses by name, built from MONAI's terms (DiceLoss, FocalLoss, TverskyLoss).

Every loss takes (output, target): output = logits (B, C, ...) or (logits, aux_logits) from a
model with an auxiliary classifier; target = integer labels (B, 1, ...) with values 0..C-1.
C == 1 means binary (sigmoid) mode; C > 1 means multi-class (softmax) mode, where "bce" is the
categorical cross-entropy and region terms (Dice, IoU, Tversky) leave out the background channel
unless include_background=True. Names: dice, iou, bce, focal, tversky, dice_focal (Dice +
lambda * Focal), dice_bce, bce_iou, dice_ce (= dice_bce). Auxiliary outputs add
aux_weight * BCE(aux_logits, which foreground classes are present).
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import LungsegError

# name -> [(term, weight key or fixed weight)]
COMPOSITES = {
    "dice": [("dice", 1.0)], "iou": [("iou", 1.0)], "bce": [("bce", 1.0)], "focal": [("focal", 1.0)],
    "tversky": [("tversky", 1.0)], "dice_focal": [("dice", 1.0), ("focal", "lambda")],
    "dice_bce": [("dice", 1.0), ("bce", 1.0)], "dice_ce": [("dice", 1.0), ("bce", 1.0)],
    "bce_iou": [("bce", 1.0), ("iou", 1.0)],
}
LOSS_NAMES = tuple(COMPOSITES)
_OPTIONS = {"include_background", "batch", "gamma", "alpha", "beta", "lambda", "lambda_focal", "smooth"}


class CrossEntropy(nn.Module):
    """BCE-with-logits for one channel, categorical cross-entropy for several."""

    def forward(self, logits, target):
        if logits.shape[1] == 1:
            return nn.functional.binary_cross_entropy_with_logits(logits, target.float())
        return nn.functional.cross_entropy(logits, target[:, 0].long())


def _term(name: str, channels: int, opts: dict) -> nn.Module:
    from monai.losses import DiceLoss, FocalLoss, TverskyLoss

    binary = channels == 1
    region = dict(sigmoid=binary, softmax=not binary, to_onehot_y=not binary,
                  include_background=opts.get("include_background", binary), batch=opts.get("batch", True),
                  smooth_nr=opts.get("smooth", 1e-5), smooth_dr=opts.get("smooth", 1e-5))
    if name == "dice":
        return DiceLoss(**region)
    if name == "iou":
        return DiceLoss(jaccard=True, **region)
    if name == "tversky":
        return TverskyLoss(alpha=opts.get("alpha", 0.3), beta=opts.get("beta", 0.7), **region)
    if name == "bce":
        return CrossEntropy()
    if name == "focal":  # background stays in: focal acts per pixel, like cross-entropy
        return FocalLoss(gamma=opts.get("gamma", 2.0), use_softmax=not binary, to_onehot_y=not binary,
                         include_background=True)
    raise AssertionError(name)


def class_presence(target: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, C-1) float: 1 where foreground class c (1..C-1) occurs in the sample's label map."""
    t = target.reshape(target.shape[0], -1).long()
    return torch.stack([(t == c).any(dim=1) for c in range(1, max(channels, 2))], dim=1).float()


class SegLoss(nn.Module):
    def __init__(self, name: str, aux_weight: float = 0.5, **opts):
        super().__init__()
        if name not in COMPOSITES:
            raise LungsegError(f"unknown loss '{name}' (available: {', '.join(LOSS_NAMES)})")
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise LungsegError(f"loss '{name}': unknown option(s) {sorted(unknown)} (known: {sorted(_OPTIONS)})")
        self.name, self.aux_weight, self.opts = name, float(aux_weight), opts
        self._terms: dict[int, list] = {}  # built lazily: the channel count fixes sigmoid vs softmax

    def terms(self, channels: int) -> list:
        if channels not in self._terms:
            lam = self.opts.get("lambda", self.opts.get("lambda_focal", 1.0))
            self._terms[channels] = [(_term(t, channels, self.opts), lam if w == "lambda" else w)
                                     for t, w in COMPOSITES[self.name]]
        return self._terms[channels]

    def forward(self, output, target):
        logits, aux = output if isinstance(output, (tuple, list)) else (output, None)
        channels = logits.shape[1]
        if target.ndim == logits.ndim - 1:
            target = target.unsqueeze(1)
        if int(target.max()) >= max(channels, 2):
            raise LungsegError(f"label value {int(target.max())} but the model has {channels} output channels")
        loss = sum(w * term(logits.float(), target) for term, w in self.terms(channels))
        if aux is not None and self.aux_weight:
            presence = class_presence(target, channels)[:, : aux.shape[1]]
            loss = loss + self.aux_weight * nn.functional.binary_cross_entropy_with_logits(aux.float(), presence)
        return loss


def build_loss(name: str, aux_weight: float = 0.5, **kwargs) -> SegLoss:
    """A loss module by name (see LOSS_NAMES). kwargs: include_background, batch, gamma (focal),
    alpha/beta (tversky), lambda (focal weight in dice_focal), smooth; aux_weight for models
    that return (logits, aux_logits)."""
    return SegLoss(name, aux_weight=aux_weight, **kwargs)
