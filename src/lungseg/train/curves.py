"""Training curves (loss, Dice, IoU per epoch, train and val) as one PNG."""
from __future__ import annotations

from pathlib import Path


def plot_curves(history: list[dict], path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("loss", "dice", "iou"), ("Loss", "Dice (foreground mean)", "IoU")):
        for split, style in (("train", "-o"), ("val", "-s")):
            ys = [h.get(f"{split}_{key}") for h in history]
            ax.plot(epochs, ys, style, ms=3, label=split)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
