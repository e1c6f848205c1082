"""What a checkpoint holds and how a run picks up from one (see lungseg.models.checkpoint for the
file format). `ctx` is the engine's run context: cfg, model, optimizer, scheduler, ema, state."""
from __future__ import annotations

from pathlib import Path

from ..errors import LungsegError
from ..models.checkpoint import read_checkpoint
from .config import TrainConfig, config_to_dict, parse_yaml


def payload(ctx, epoch: int, row: dict, full: bool) -> dict:
    """The checkpoint dict: inference metadata + weights (+ everything a resume needs when full)."""
    model, ema = ctx["model"], ctx["ema"]
    eval_model = ema.module if ema is not None else model
    cfg = ctx["cfg"]
    data = cfg.data
    out = {
        "model_name": cfg.model.name,
        "model_kwargs": ctx["model_kwargs"],
        "spec": ctx["spec"].to_dict(),
        "preprocessing": {"dims": data.dims, "input_size": data.input_size, "patch_size": data.patch_size,
                          "context_slices": data.context_slices, "intensity": data.intensity, "resize_method": data.resize_method},
        "classes": list(ctx["classes"]),
        "epoch": epoch + 1,
        "metrics": {k: v for k, v in row.items() if isinstance(v, (int, float))},
        "config": config_to_dict(cfg),
        "state_dict": eval_model.state_dict(),
    }
    if full:
        out.update({
            "raw_state_dict": model.state_dict(),
            "optimizer": ctx["optimizer"].state_dict(),
            "scheduler": ctx["scheduler"].state_dict() if ctx["scheduler"] is not None else None,
            "ema": ema.state_dict() if ema is not None else None,
            "trainer": dict(ctx["state"]),
        })
    return out


def restore(ctx, path: Path) -> None:
    """Load model, optimiser, scheduler, EMA and trainer counters from last.pt into ctx."""
    ckpt = read_checkpoint(path, map_location=ctx["info"].device)
    if ckpt.get("model_name") != ctx["cfg"].model.name:
        raise LungsegError(f"cannot resume: {path} holds model '{ckpt.get('model_name')}', "
                           f"the config trains '{ctx['cfg'].model.name}'")
    ctx["model"].load_state_dict(ckpt["raw_state_dict"])
    ctx["optimizer"].load_state_dict(ckpt["optimizer"])
    if ctx["scheduler"] is not None and ckpt.get("scheduler"):
        ctx["scheduler"].load_state_dict(ckpt["scheduler"])
    if ctx["ema"] is not None and ckpt.get("ema"):
        ctx["ema"].load_state_dict(ckpt["ema"])
    ctx["state"].update(ckpt["trainer"])


def warn_if_config_changed(cfg: TrainConfig, saved_path: Path, say) -> None:
    """Resuming with other settings is allowed (e.g. more epochs) but breaks exact reproducibility."""
    if not saved_path.is_file():
        return
    volatile = {"output_dir", "progress", "verbose", "tensorboard", "curves", "threads", "device"}
    old = {k: v for k, v in (parse_yaml(saved_path.read_text()) or {}).items() if k not in volatile}
    new = {k: v for k, v in config_to_dict(cfg).items() if k not in volatile}
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        say(f"note: resuming with changed settings ({', '.join(changed)}); the run will differ from an "
            "uninterrupted one", flush=True)
