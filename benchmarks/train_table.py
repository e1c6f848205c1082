"""The architecture table: parameters, training speed at 256x256 and the val Dice each CPU config
reaches in its budget.

    .venv/bin/python benchmarks/train_table.py            # full: runs every configs/*_cpu.yaml (long)
    .venv/bin/python benchmarks/train_table.py --quick    # params + speed only, a few steps each
    .venv/bin/python benchmarks/train_table.py --no-train # params + speed, no config runs

Speed: median seconds per training step (batch 8, 1 channel, 256x256, Adam, bf16 autocast where
the CPU has it) after 2 warm-up steps, turned into seconds per epoch of 256 slices. Writes
benchmarks/results/train_table.json. The VM is shared and noisy: repeat before trusting 20%.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lungseg.losses import build_loss  # noqa: E402
from lungseg.models import build_model, count_parameters, list_models  # noqa: E402
from lungseg.train import load_config, train  # noqa: E402
from lungseg.train.engine import _bf16_available  # noqa: E402

EPOCH_SLICES = 256
# which CPU config gives each architecture its val Dice (the paper configs are GPU-sized)
CPU_CONFIGS = {"unet": "unet_kaggle_cpu", "attention_unet": "attention_unet_cpu", "resnet34_unet": "resnet34_unet_cpu",
               "efficientnet_b4_unet": "efficientnet_b4_unet_cpu", "se_unet_aux": "se_unet_aux_cpu",
               "fast_unet": "fast_unet_cpu"}


def paper_kwargs(name: str) -> dict:
    """Model options of the full (paper) config, so the table counts what the papers train."""
    stem = CPU_CONFIGS[name].removesuffix("_cpu")
    path = ROOT / "configs" / f"{stem}.yaml"
    return dict(load_config(path).model.kwargs) if path.is_file() else {}


def step_seconds(name: str, kwargs: dict, size: int, steps: int, batch: int = 8) -> float:
    torch.manual_seed(0)
    in_ch = 3 if name.endswith("b4_unet") or name.startswith("resnet34") else 1
    model = build_model(name, in_channels=in_ch, out_channels=4, **kwargs).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = build_loss("dice_ce")
    x = torch.randn(batch, in_ch, size, size)
    y = torch.randint(0, 4, (batch, 1, size, size))
    amp = _bf16_available(torch.device("cpu"))
    times = []
    for i in range(steps + 2):
        t = time.perf_counter()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss_fn(out, y).backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_config(stem: str, quick: bool) -> dict:
    cfg = load_config(ROOT / "configs" / f"{stem}.yaml")
    cfg.progress, cfg.tensorboard, cfg.curves = False, False, False
    if quick:
        cfg.phases = [type(p)(epochs=1, name=p.name, lr=p.lr, freeze=p.freeze) for p in cfg.phase_list()[:1]]
        cfg.data.samples_per_epoch, cfg.data.val_samples = 16, 16
    t = time.perf_counter()
    result = train(cfg, output_dir=ROOT / "runs" / "bench" / stem)
    return {"config": stem, "epochs": len(result.history), "best_val_dice": result.best_metric,
            "best_epoch": result.best_epoch, "seconds_total": round(time.perf_counter() - t, 1),
            "seconds_per_epoch": round(statistics.median(h["seconds_train"] + h["seconds_val"]
                                                         for h in result.history), 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 timed steps at 128x128 and 1-epoch config runs")
    ap.add_argument("--no-train", action="store_true", help="skip the config runs (no val Dice column)")
    ap.add_argument("--models", nargs="*", default=list_models())
    args = ap.parse_args(argv)
    size, steps = (128, 2) if args.quick else (256, 5)
    rows = []
    for name in args.models:
        kw = paper_kwargs(name)
        row = {"model": name, "params_default": count_parameters(build_model(name)),
               "params_paper_config": count_parameters(build_model(name, **kw)), "paper_kwargs": kw}
        sec = step_seconds(name, {}, size, steps)
        row.update({"input": f"{size}x{size}", "step_s_batch8": round(sec, 3),
                    f"epoch_s_{EPOCH_SLICES}_slices": round(sec * EPOCH_SLICES / 8, 1)})
        if not args.no_train and CPU_CONFIGS.get(name):
            try:
                row["cpu_run"] = run_config(CPU_CONFIGS[name], args.quick)
            except Exception as e:  # e.g. synthetic generator missing: keep the rest of the table
                row["cpu_run"] = {"config": CPU_CONFIGS[name], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        run = row.get("cpu_run", {})
        print(f"{name:22s} params {row['params_default'] / 1e6:6.2f} M "
              f"(paper cfg {row['params_paper_config'] / 1e6:6.2f} M)"
              f"  {row[f'epoch_s_{EPOCH_SLICES}_slices']:7.1f} s/epoch@{size}"
              + (f"  val Dice {run['best_val_dice']:.3f} in {run['epochs']} ep ({run['seconds_total']} s)"
                 if "best_val_dice" in run else (f"  {run.get('error', '')}" if run else "")), flush=True)
    out = ROOT / "benchmarks" / "results" / "train_table.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "torch_threads": torch.get_num_threads(),
                               "bf16": _bf16_available(torch.device("cpu")), "epoch_slices": EPOCH_SLICES,
                               "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
