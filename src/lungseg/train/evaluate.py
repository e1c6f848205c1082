"""Validation: loss, pooled Dice/IoU and mean Dice per case of a model on a dataset (2D batches, or whole volumes with
optional sliding-window inference)."""
from __future__ import annotations

import torch

from ..data.datasets import VolumeDataset
from .metrics import CaseDice, OverlapCounter, predict_labels


@torch.no_grad()
def evaluate(model, dataset, loss_fn, classes: list[str], device, amp: bool = False, batch_size: int = 16,
             roi_size=None) -> dict:
    """Loss, pooled Dice/IoU (mean over foreground classes, and per class) and the mean Dice per case
    (sample: a slice/crop, or a whole volume) on a dataset."""
    model.eval()
    counter, cases = OverlapCounter(len(classes)), CaseDice(len(classes))
    whole_volumes = isinstance(dataset, VolumeDataset)  # sizes may differ between cases
    loader = torch.utils.data.DataLoader(dataset, batch_size=1 if whole_volumes else batch_size, shuffle=False)
    total, n = 0.0, 0
    for batch in loader:
        x, y = batch["image"].to(device), batch["label"].to(device).long()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            if roi_size is not None:
                from monai.inferers import sliding_window_inference

                logits = sliding_window_inference(x, tuple(roi_size), sw_batch_size=2, predictor=model, overlap=0.25)
            else:
                logits = model(x)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        total += float(loss_fn(logits.float(), y)) * x.shape[0]
        n += x.shape[0]
        labels = predict_labels(logits)
        counter.update(labels, y)
        cases.update(labels, y)
    m, pc = counter.mean(), counter.per_class()
    out = {"val_loss": total / max(n, 1), "val_dice": m["dice"], "val_iou": m["iou"], "val_dice_per_case": cases.mean()}
    for name, d in zip(classes[1:], pc["dice"][1:]):
        out[f"val_dice_{name}"] = d
    return out
