"""The training engine: data -> model -> loss -> optimiser, validated, checkpointed, resumable.

Determinism: the model is initialised from the seed, each epoch's sample order and every
sample's augmentation derive from (seed, epoch, index), and torch's RNG (dropout) is reseeded at
each epoch start. Together with the optimiser/scheduler/EMA/early-stopping state in last.pt, a
run killed at any point and resumed ends with exactly the weights of an uninterrupted run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.datasets import DataBundle, build_datasets, sample_seed
from ..errors import LungsegError
from ..losses import build_loss
from ..models import build_model, model_spec
from ..models.checkpoint import read_checkpoint, save_checkpoint
from . import ddp
from .config import PhaseConfig, TrainConfig, load_config, save_config
from .curves import plot_curves
from .logs import TensorBoard, write_csv
from .evaluate import evaluate
from .metrics import OverlapCounter, predict_labels
from .resume import payload, restore, warn_if_config_changed
from .sampler import EpochSampler

LAST, BEST = "last.pt", "best.pt"


@dataclass
class TrainResult:
    output_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: list = field(default_factory=list)
    best_metric: float = math.nan
    best_epoch: int = 0
    stopped_early: bool = False
    data: dict = field(default_factory=dict)


# ---- set-up helpers --------------------------------------------------------------------------
def _bf16_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32 - 1))
    torch.manual_seed(seed)


def _model_kwargs(cfg: TrainConfig, bundle: DataBundle) -> dict:
    kwargs = {"spatial_dims": cfg.data.dims, "in_channels": bundle.in_channels,
              "out_channels": len(bundle.classes), **cfg.model.kwargs}
    return json.loads(json.dumps(kwargs))  # tuples -> lists: safe for weights_only loading


def _check_sizes(cfg: TrainConfig, spec) -> None:
    size = cfg.data.patch_size or cfg.data.input_size
    if size and any(int(s) % spec.divisibility for s in size):
        raise LungsegError(f"model {spec.name} needs input sides divisible by {spec.divisibility}; "
                           f"got {list(size)} (data.input_size / data.patch_size)")


def _make_optimizer(cfg: TrainConfig, model: torch.nn.Module, lr: float):
    o = cfg.optim
    params = list(model.parameters())
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _make_scheduler(cfg: TrainConfig, optimizer, epochs: int):
    """The scheduler of one phase of `epochs` epochs (stepped once per epoch)."""
    s = cfg.scheduler
    if s.name == "none":
        return None
    if s.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1), eta_min=s.min_lr)
    mode = "min" if cfg.monitor == "val_loss" else "max"
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=s.factor, patience=s.patience,
                                                      min_lr=s.min_lr)


def _make_ema(cfg: TrainConfig, model: torch.nn.Module):
    if not cfg.ema_decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


def _phase_at(phases: list[PhaseConfig], epoch: int) -> tuple[int, PhaseConfig, int]:
    """(phase index, phase, first epoch of that phase) for a 0-based epoch."""
    start = 0
    for i, p in enumerate(phases):
        if epoch < start + p.epochs:
            return i, p, start
        start += p.epochs
    return len(phases) - 1, phases[-1], start - phases[-1].epochs


def _frozen_modules(model: torch.nn.Module, names: list[str]) -> list[torch.nn.Module]:
    mods = []
    for name in names:
        try:
            mods.append(model.get_submodule(name))
        except AttributeError:
            children = ", ".join(n for n, _ in model.named_children())
            raise LungsegError(f"cannot freeze '{name}': the model has no such submodule "
                               f"(top-level modules: {children})") from None
    return mods


def _apply_freeze(model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    for p in model.parameters():
        p.requires_grad_(True)
    for m in frozen:
        for p in m.parameters():
            p.requires_grad_(False)


def _set_train_mode(model: torch.nn.Module, frozen: list[torch.nn.Module]) -> None:
    model.train()
    for m in frozen:  # a frozen encoder keeps its normalisation statistics too
        m.eval()


# ---- one epoch -------------------------------------------------------------------------------
def _forward_loss(model, loss_fn, x, y, amp: bool, device):
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    return loss_fn(out, y), logits


def _train_epoch(ctx, epoch: int, desc: str) -> dict:
    from tqdm import tqdm

    model, loader, info = ctx["train_model"], ctx["train_loader"], ctx["info"]
    counter = OverlapCounter(ctx["num_classes"])
    loss_sum, n_seen = torch.zeros(2, dtype=torch.float64), 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not (ctx["cfg"].progress and info.is_main),
               dynamic_ncols=True)
    for batch in bar:
        x = batch["image"].to(info.device, non_blocking=True)
        y = batch["label"].to(info.device, non_blocking=True).long()
        ctx["optimizer"].zero_grad(set_to_none=True)
        loss, logits = _forward_loss(model, ctx["loss"], x, y, ctx["amp"], info.device)
        if not torch.isfinite(loss):
            raise LungsegError(f"training diverged: loss is {float(loss)} at epoch {epoch + 1} "
                               "(lower optim.lr or set grad_clip)")
        loss.backward()
        if ctx["cfg"].grad_clip:
            torch.nn.utils.clip_grad_norm_(ctx["model"].parameters(), ctx["cfg"].grad_clip)
        ctx["optimizer"].step()
        if ctx["ema"] is not None:
            ctx["ema"].update_parameters(ctx["model"])
        counter.update(predict_labels(logits.detach()), y)
        loss_sum += torch.tensor([float(loss.detach()) * x.shape[0], x.shape[0]], dtype=torch.float64)
        n_seen += x.shape[0]
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    loss_sum = ddp.all_reduce_sum(loss_sum, info)
    counter.counts = ddp.all_reduce_sum(counter.counts, info)
    m = counter.mean()
    return {"train_loss": float(loss_sum[0] / max(loss_sum[1], 1)), "train_dice": m["dice"], "train_iou": m["iou"],
            "train_samples": int(loss_sum[1])}


# ---- the loop ------------------------------------------------------------------------------
def _run_epoch(ctx, bundle: DataBundle, phases: list[PhaseConfig], epoch: int, total: int) -> dict:
    """Phase set-up, one pass over the training data, validation (rank 0, broadcast) -> a history row."""
    cfg, info, model, optimizer = ctx["cfg"], ctx["info"], ctx["model"], ctx["optimizer"]
    pi, phase, phase_start = _phase_at(phases, epoch)
    frozen = _frozen_modules(model, phase.freeze)
    _apply_freeze(model, frozen)
    if epoch == phase_start and pi > 0:  # entering a new phase: its lr, a fresh scheduler
        for g in optimizer.param_groups:
            g["lr"] = phase.lr or g["lr"]
        ctx["scheduler"] = _make_scheduler(cfg, optimizer, phase.epochs)
    if ctx["wrapped_for"] != pi:  # DDP registers only trainable parameters: re-wrap per phase
        ctx["train_model"] = ddp.wrap(model, info)
        ctx["wrapped_for"] = pi
    torch.manual_seed(sample_seed(cfg.seed, epoch, 2**20))  # dropout etc.: independent of history
    bundle.train.set_epoch(epoch)
    ctx["train_loader"].sampler.set_epoch(epoch)
    _set_train_mode(model, frozen)
    t0 = time.perf_counter()
    row = {"epoch": epoch + 1, "phase": phase.name or str(pi), "lr": optimizer.param_groups[0]["lr"]}
    row.update(_train_epoch(ctx, epoch, f"epoch {epoch + 1}/{total}"))
    t1 = time.perf_counter()
    keys = ["val_loss", "val_dice", "val_iou", "val_dice_per_case"] + [f"val_dice_{c}" for c in bundle.classes[1:]]
    val = {}
    if info.is_main:
        eval_model = ctx["ema"].module if ctx["ema"] is not None else model
        roi = cfg.data.patch_size if cfg.data.dims == 3 and cfg.data.patch_size else None
        val = evaluate(eval_model, bundle.val, ctx["loss"], bundle.classes, info.device, ctx["amp"],
                       cfg.data.val_batch_size, roi_size=roi)
    row.update(zip(keys, ddp.broadcast_values([val.get(k, 0.0) for k in keys], info)))
    row.update({"seconds_train": round(t1 - t0, 3), "seconds_val": round(time.perf_counter() - t1, 3),
                "samples_per_s": round(row["train_samples"] / max(t1 - t0, 1e-9), 2)})
    return row


def _update_state(ctx, row: dict) -> bool:
    """Scheduler step, best metric, early-stopping counter; returns whether the epoch improved."""
    cfg, state = ctx["cfg"], ctx["state"]
    metric = row[cfg.monitor]
    scheduler = ctx["scheduler"]
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if not math.isnan(metric):
            scheduler.step(metric)
    elif scheduler is not None:
        scheduler.step()
    best, delta = state["best"], cfg.early_stopping.min_delta
    improved = not math.isnan(metric) and (
        best is None or (metric < best - delta if cfg.monitor == "val_loss" else metric > best + delta))
    if improved:
        state.update(best=metric, best_epoch=row["epoch"], bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    patience = cfg.early_stopping.patience
    state["stopped"] = bool(patience is not None and state["bad_epochs"] >= patience)
    state["epoch"] = row["epoch"]
    state["history"] = state["history"] + [row]
    return improved


def _record_epoch(ctx, row: dict, improved: bool, out: Path, tb: TensorBoard) -> None:
    """Checkpoints (best when improved, last always: the resume point), CSV, TensorBoard, curves."""
    epoch = row["epoch"] - 1
    if improved:
        save_checkpoint(out / BEST, payload(ctx, epoch, row, full=False))
    save_checkpoint(out / LAST, payload(ctx, epoch, row, full=True))
    if ctx["cfg"].keep_epochs:
        save_checkpoint(out / f"epoch_{row['epoch']}.pt", payload(ctx, epoch, row, full=False))
    write_csv(ctx["state"]["history"], out / "history.csv")
    tb.log(row)
    if ctx["cfg"].curves:
        plot_curves(ctx["state"]["history"], out / "curves.png")


def train(config, resume: bool = False, output_dir=None) -> TrainResult:
    """Train from a TrainConfig (or a YAML path). resume=True continues from output_dir/last.pt
    when it exists (otherwise starts fresh). Returns best/last checkpoint paths and history."""
    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    info = ddp.init_distributed(cfg.device)
    # process-wide torch settings are restored afterwards: train() may run inside a larger program
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.get_num_threads())
    try:
        return _train(cfg, info, resume, output_dir)
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.set_num_threads(saved[2])
        ddp.shutdown(info)


def _train(cfg: TrainConfig, info: ddp.DistInfo, resume: bool, output_dir) -> TrainResult:
    out = Path(output_dir or cfg.output_dir or Path("runs") / cfg.name)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    _seed_everything(cfg.seed)
    say = print if (cfg.verbose and info.is_main) else (lambda *a, **k: None)

    bundle = build_datasets(cfg.data, cfg.augment, seed=cfg.seed)
    say(f"data: {json.dumps(bundle.summary())}", flush=True)
    model_kwargs = _model_kwargs(cfg, bundle)
    spec = model_spec(cfg.model.name, **model_kwargs)
    _check_sizes(cfg, spec)
    torch.manual_seed(cfg.seed)  # identical initial weights whatever happened before
    model = build_model(cfg.model.name, **model_kwargs)
    if cfg.model.init_from:  # fine-tuning: start from a trained checkpoint's weights
        model.load_state_dict(read_checkpoint(cfg.model.init_from)["state_dict"])
    model = model.to(info.device)
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and _bf16_available(info.device))
    phases = cfg.phase_list()
    total = cfg.total_epochs()
    optimizer = _make_optimizer(cfg, model, phases[0].lr or cfg.optim.lr)
    ctx = {
        "cfg": cfg, "info": info, "model": model, "model_kwargs": model_kwargs, "spec": spec,
        "classes": bundle.classes, "num_classes": len(bundle.classes), "amp": amp,
        "loss": build_loss(cfg.loss.name, aux_weight=cfg.loss.aux_weight, **cfg.loss.kwargs),
        "optimizer": optimizer, "scheduler": _make_scheduler(cfg, optimizer, phases[0].epochs),
        "ema": _make_ema(cfg, model),
        "state": {"epoch": 0, "history": [], "best": None, "best_epoch": 0, "bad_epochs": 0, "stopped": False},
    }
    if resume and (out / LAST).is_file():
        restore(ctx, out / LAST)
        warn_if_config_changed(cfg, out / "config.yaml", say)
        say(f"resuming from {out / LAST} after epoch {ctx['state']['epoch']}", flush=True)
    state = ctx["state"]
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    sampler = EpochSampler(len(bundle.train), seed=cfg.seed,
                           num_samples=cfg.data.samples_per_epoch if cfg.data.dims == 2 else None,
                           rank=info.rank, world_size=info.world_size)
    batch = cfg.data.batch_size
    ctx["train_loader"] = torch.utils.data.DataLoader(
        bundle.train, batch_size=batch, sampler=sampler, num_workers=cfg.data.num_workers,
        drop_last=len(sampler) > batch)  # BN cannot train on a last batch of one
    tb = TensorBoard(out / "tensorboard", state["epoch"], enabled=cfg.tensorboard and info.is_main)
    say(f"model {cfg.model.name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{'bf16' if amp else 'fp32'}, {info.world_size} process(es), device {info.device}", flush=True)
    ctx["wrapped_for"] = None
    try:
        for epoch in range(state["epoch"], total):
            if state["stopped"]:
                break
            row = _run_epoch(ctx, bundle, phases, epoch, total)
            improved = _update_state(ctx, row)
            if info.is_main:
                _record_epoch(ctx, row, improved, out, tb)
                say(f"epoch {epoch + 1}/{total} [{row['phase']}] lr {row['lr']:.2e} "
                    f"train loss {row['train_loss']:.4f} dice {row['train_dice']:.4f} | "
                    f"val loss {row['val_loss']:.4f} dice {row['val_dice']:.4f} iou {row['val_iou']:.4f} | "
                    f"{row['seconds_train']:.1f}s train, {row['seconds_val']:.1f}s val"
                    + (" *" if improved else ""), flush=True)
            ddp.barrier(info)
        if info.is_main and state["history"] and not cfg.curves:
            plot_curves(state["history"], out / "curves.png")
        if state["stopped"]:
            say(f"early stop: no improvement of {cfg.monitor} for {state['bad_epochs']} epochs", flush=True)
    finally:
        tb.close()
    result = TrainResult(out, out / BEST if (out / BEST).is_file() else None,
                         out / LAST if (out / LAST).is_file() else None, state["history"],
                         state["best"] if state["best"] is not None else math.nan, state["best_epoch"],
                         state["stopped"], bundle.summary())
    if info.is_main:
        summary = {"best_metric": result.best_metric, "best_epoch": result.best_epoch, "monitor": cfg.monitor,
                   "stopped_early": result.stopped_early, "epochs_run": state["epoch"], "data": bundle.summary(),
                   "splits": bundle.splits, "duplicates": bundle.duplicates, "history": state["history"]}
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return result
