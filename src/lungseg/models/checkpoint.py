"""Checkpoint files: one dict saved with torch.save, loadable with weights_only=True.

Keys: format, version, model_name, model_kwargs, spec (ModelSpec as a dict), preprocessing
(intensity, input_size, dims, ...), classes (channel index -> class name), epoch, metrics,
state_dict (weights to use: the EMA copy when EMA was on), and for resuming (last.pt only):
raw_state_dict, optimizer, scheduler, ema, trainer (counters and history). Only plain Python
types and tensors go in, so torch.load(weights_only=True) can read every file we write.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import LungsegError
from ..io import atomic_path
from .registry import build_model

FORMAT = "lungseg-checkpoint"
VERSION = 1
# options that only matter at build time and must not be needed to rebuild a trained model
BUILD_ONLY_KWARGS = ("pretrained_encoder",)


def save_checkpoint(path, payload: dict) -> Path:
    """Atomically write a checkpoint dict (a kill during the write leaves the old file intact)."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise LungsegError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise LungsegError(f"cannot read checkpoint {path}: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise LungsegError(f"{path} is not a lungseg checkpoint")
    return ckpt


def model_from_checkpoint(ckpt: dict, weights: str = "best"):
    kwargs = {k: v for k, v in dict(ckpt["model_kwargs"]).items() if k not in BUILD_ONLY_KWARGS}
    model = build_model(ckpt["model_name"], **kwargs)
    state = ckpt["raw_state_dict"] if weights == "raw" and "raw_state_dict" in ckpt else ckpt["state_dict"]
    model.load_state_dict(state)
    return model.eval()


def load_checkpoint(path, map_location="cpu", weights: str = "best"):
    """-> (model in eval mode, meta). weights: "best" (EMA weights when EMA was used) or "raw"."""
    ckpt = read_checkpoint(path, map_location)
    model = model_from_checkpoint(ckpt, weights)
    meta = {k: v for k, v in ckpt.items()
            if k not in ("state_dict", "raw_state_dict", "optimizer", "scheduler", "ema", "trainer")}
    meta["path"] = str(path)
    return model, meta
