"""Per-epoch logs: a CSV rewritten from the full history (so a resumed run never duplicates
rows) and TensorBoard scalars (optional: skipped with a note when tensorboard is missing)."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from ..io import atomic_path


def write_csv(history: list[dict], path) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow(row)


class TensorBoard:
    def __init__(self, log_dir, start_epoch: int = 0, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("lungseg train: tensorboard is not installed; skipping TensorBoard logs", file=sys.stderr)
            return
        # purge_step drops events a killed run wrote after its last checkpoint
        self.writer = SummaryWriter(str(log_dir), purge_step=start_epoch + 1 if start_epoch else None)

    def log(self, row: dict) -> None:
        if self.writer is None:
            return
        step = row["epoch"]
        for k, v in row.items():
            if k != "epoch" and isinstance(v, (int, float)):
                group = "loss" if k.endswith("loss") else ("lr" if k == "lr" else "metrics")
                self.writer.add_scalar(f"{group}/{k}", v, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
