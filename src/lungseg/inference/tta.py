"""Test-time mirroring shared by every runtime: which in-plane mirrorings to average, and how a
mirrored prediction's right and left lungs go back to their sides."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mirroring:
    mirrors: tuple[tuple[int, ...], ...] = ()  # axes of each mirrored pass, besides the plain one
    swap: tuple[int, ...] | None = None  # channel order after a left/right mirror (None: unchanged)

    @classmethod
    def for_classes(cls, classes: list[str], tta: bool) -> "Mirroring":
        """Lung models: the left/right mirror, whose right and left lungs swap back (an up/down
        mirror makes an anatomy they never saw). Models whose classes have no side (the nodule
        model): every in-plane mirroring (x, y, both; nnU-Net's 2D mirroring), which lifts the
        LIDC validation crop Dice of the shipped one from 0.794 to 0.802 (left/right alone: 0.799)."""
        if not tta:
            return cls()
        if any("lung" in c for c in classes):
            return cls(((-1,),), _swap_lr(classes))
        return cls(((-1,), (-2,), (-2, -1)))

    def average(self, run, x, flip):
        """Mean of run(x) over the plain pass and the mirrorings (run: batch -> probabilities;
        flip(a, axes) mirrors an array of the runtime's own type)."""
        probs = run(x)
        for axes in self.mirrors:
            p = flip(run(flip(x, axes)), axes)
            probs = probs + (p[:, list(self.swap)] if self.swap and -1 in axes else p)
        return probs / (1 + len(self.mirrors)) if self.mirrors else probs


def _swap_lr(classes: list[str]) -> tuple[int, ...] | None:
    if "right_lung" not in classes or "left_lung" not in classes:
        return None
    order = list(range(len(classes)))
    r, l_ = classes.index("right_lung"), classes.index("left_lung")
    order[r], order[l_] = l_, r
    return tuple(order)
