"""A longer training run of two architectures on the same real data: train/val Dice and seconds
per epoch, epoch by epoch.

    .venv/bin/python benchmarks/train_compare.py            # 2 x 20 epochs at 128x128 (~tens of minutes)
    .venv/bin/python benchmarks/train_compare.py --quick    # 2 x 2 short epochs (a minute)

Both models train on configs/attention_unet_cpu.yaml's data (imlab3d + CIP volumes, lung
window, patient-level split) with identical budget and seed: the plain U-Net and the Attention
U-Net. Runs go to runs/bench/ (git-ignored); writes benchmarks/results/train_compare.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lungseg.train import load_config, train  # noqa: E402

MODELS = {"unet": {"base_features": 16}, "attention_unet": {"channels": [16, 32, 64, 128, 256],
                                                            "strides": [2, 2, 2, 2]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args(argv)
    results = {}
    for name, kwargs in MODELS.items():
        cfg = load_config(ROOT / "configs" / "attention_unet_cpu.yaml")
        cfg.name = f"compare_{name}"
        cfg.model.name, cfg.model.kwargs = name, kwargs
        cfg.epochs = 2 if args.quick else args.epochs
        cfg.early_stopping.patience = None  # same budget for both
        cfg.progress, cfg.tensorboard = False, False
        if args.quick:
            cfg.data.samples_per_epoch, cfg.data.val_samples = 32, 32
        print(f"== {name}", flush=True)
        res = train(cfg, output_dir=ROOT / "runs" / "bench" / cfg.name)
        results[name] = [{k: h[k] for k in ("epoch", "train_loss", "train_dice", "val_dice", "val_iou",
                                             "seconds_train", "seconds_val")} for h in res.history]
    print(f"\n{'epoch':>5} " + " ".join(f"{n + ' train/val Dice':>34s} {'s/ep':>6s}" for n in MODELS))
    for i in range(max(len(v) for v in results.values())):
        cells = []
        for n in MODELS:
            h = results[n][i] if i < len(results[n]) else None
            secs = h["seconds_train"] + h["seconds_val"] if h else 0.0
            cells.append(f"{h['train_dice']:>16.3f} / {h['val_dice']:<15.3f} {secs:6.1f}" if h else " " * 41)
        print(f"{i + 1:>5} " + " ".join(cells))
    out = ROOT / "benchmarks" / "results" / "train_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "config": "configs/attention_unet_cpu.yaml (data)",
                               "results": results}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
