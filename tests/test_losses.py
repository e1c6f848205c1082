"""Losses against hand-computed values (binary sigmoid and multi-class softmax modes)."""
import math

import pytest
import torch
import torch.nn.functional as F

from lungseg.errors import LungsegError
from lungseg.losses import LOSS_NAMES, build_loss, class_presence

# one-channel case: 4 pixels with known probabilities
P = torch.tensor([0.9, 0.8, 0.3, 0.1])
T = torch.tensor([1, 1, 1, 0])
LOGITS = torch.log(P / (1 - P)).view(1, 1, 2, 2)
TARGET = T.view(1, 1, 2, 2)


def test_binary_dice_and_iou_match_the_formula():
    inter, total = float((P * T).sum()), float(P.sum() + T.sum())
    assert math.isclose(float(build_loss("dice", smooth=0)(LOGITS, TARGET)), 1 - 2 * inter / total, rel_tol=1e-5)
    assert math.isclose(float(build_loss("iou", smooth=0)(LOGITS, TARGET)), 1 - inter / (total - inter),
                        rel_tol=1e-5)


def test_tversky_with_equal_weights_is_dice_and_weights_false_negatives():
    dice = float(build_loss("dice", smooth=0)(LOGITS, TARGET))
    assert math.isclose(float(build_loss("tversky", alpha=0.5, beta=0.5, smooth=0)(LOGITS, TARGET)), dice,
                        rel_tol=1e-5)
    fp, fn, tp = float((P * (1 - T)).sum()), float(((1 - P) * T).sum()), float((P * T).sum())
    expected = 1 - tp / (tp + 0.3 * fp + 0.7 * fn)
    assert math.isclose(float(build_loss("tversky", alpha=0.3, beta=0.7, smooth=0)(LOGITS, TARGET)), expected,
                        rel_tol=1e-5)


def test_bce_and_focal():
    bce = float(F.binary_cross_entropy(P, T.float()))
    assert math.isclose(float(build_loss("bce")(LOGITS, TARGET)), bce, rel_tol=1e-5)
    assert math.isclose(float(build_loss("focal", gamma=0.0)(LOGITS, TARGET)), bce, rel_tol=1e-4)
    pt = torch.where(T == 1, P, 1 - P)
    focal = float((-(1 - pt) ** 2 * torch.log(pt)).mean())
    assert math.isclose(float(build_loss("focal", gamma=2.0)(LOGITS, TARGET)), focal, rel_tol=1e-4)


def test_composites_add_their_terms():
    dice = float(build_loss("dice")(LOGITS, TARGET))
    focal = float(build_loss("focal")(LOGITS, TARGET))
    bce = float(build_loss("bce")(LOGITS, TARGET))
    iou = float(build_loss("iou")(LOGITS, TARGET))
    assert math.isclose(float(build_loss("dice_focal", **{"lambda": 0.25})(LOGITS, TARGET)), dice + 0.25 * focal,
                        rel_tol=1e-5)
    assert math.isclose(float(build_loss("dice_bce")(LOGITS, TARGET)), dice + bce, rel_tol=1e-5)
    assert math.isclose(float(build_loss("bce_iou")(LOGITS, TARGET)), bce + iou, rel_tol=1e-5)


def test_multiclass_mode_uses_softmax_cross_entropy_and_ignores_background_in_dice():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    target = torch.randint(0, 4, (2, 1, 8, 8))
    assert math.isclose(float(build_loss("bce")(logits, target)), float(F.cross_entropy(logits, target[:, 0])),
                        rel_tol=1e-5)
    perfect = F.one_hot(target[:, 0], 4).permute(0, 3, 1, 2).float() * 50
    for name in ("dice", "iou", "tversky", "dice_ce", "dice_focal"):
        assert float(build_loss(name)(perfect, target)) < 1e-3, name
    # a perfect background but no foreground at all: background excluded -> high loss
    all_bg = torch.zeros(2, 4, 8, 8)
    all_bg[:, 0] = 50
    assert float(build_loss("dice")(all_bg, target)) > 0.99
    assert float(build_loss("dice", include_background=True)(all_bg, target)) < 0.9


def test_auxiliary_classifier_loss_is_added():
    target = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    target[0, 0, 0, 0], target[0, 0, 1, 1], target[1, 0, 2, 2] = 1, 3, 2
    assert class_presence(target, 4).tolist() == [[1, 0, 1], [0, 1, 0]]
    logits = torch.randn(2, 4, 4, 4)
    aux = torch.tensor([[2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    seg = float(build_loss("dice")(logits, target))
    bce = float(F.binary_cross_entropy_with_logits(aux, class_presence(target, 4)))
    assert math.isclose(float(build_loss("dice", aux_weight=0.4)((logits, aux), target)), seg + 0.4 * bce,
                        rel_tol=1e-5)
    assert math.isclose(float(build_loss("dice", aux_weight=0)((logits, aux), target)), seg, rel_tol=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_gives_gradients(name):
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 1, 8, 8))
    build_loss(name)(logits, target).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_bad_names_and_labels_are_clear_errors():
    with pytest.raises(LungsegError, match="unknown loss"):
        build_loss("hinge")
    with pytest.raises(LungsegError, match="unknown option"):
        build_loss("dice", gama=2)
    with pytest.raises(LungsegError, match="label value 5"):
        build_loss("dice")(torch.randn(1, 3, 4, 4), torch.full((1, 1, 4, 4), 5))
