"""Training configuration: YAML file -> TrainConfig dataclass (unknown keys are errors).

One YAML per experiment under configs/. `load_config(path, overrides=["optim.lr=1e-4"])` applies
dotted overrides (values parsed as YAML) before validation.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.augment import AugmentConfig
from ..data.config import DataConfig, SplitConfig
from ..errors import LungsegError


@dataclass
class ModelConfig:
    name: str = "fast_unet"
    kwargs: dict = field(default_factory=dict)  # builder options; in/out channels and dims come from data
    init_from: str | None = None  # a lungseg checkpoint whose weights start this run (fine-tuning)


@dataclass
class LossConfig:
    name: str = "dice_ce"
    kwargs: dict = field(default_factory=dict)  # e.g. {lambda: 0.5} for dice_focal, {alpha, beta} for tversky
    aux_weight: float = 0.5  # weight of the auxiliary classifier loss (models returning aux logits)


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0  # L2 (adam/sgd) or decoupled (adamw)
    betas: tuple = (0.9, 0.999)
    momentum: float = 0.9  # sgd
    nesterov: bool = False


@dataclass
class SchedulerConfig:
    name: str = "plateau"  # plateau (halve when the monitor stalls) | cosine (to min_lr over each phase) | none
    factor: float = 0.5
    patience: int = 5
    min_lr: float = 1e-7


@dataclass
class EarlyStopConfig:
    patience: int | None = 10  # epochs without improvement of the monitored metric; None = off
    min_delta: float = 0.0


@dataclass
class PhaseConfig:
    epochs: int = 1
    name: str = ""
    lr: float | None = None  # set at the start of the phase (the scheduler restarts)
    freeze: list = field(default_factory=list)  # submodule names, e.g. [encoder]


@dataclass
class TrainConfig:
    name: str = "experiment"
    task: str = "segmentation"  # segmentation | classification (a malignancy classifier, lungseg.classification)
    notes: str = ""  # provenance of the settings (e.g. which paper; what is unknown)
    seed: int = 0
    output_dir: str | None = None  # default runs/<name>
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    early_stopping: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    epochs: int = 10  # ignored when phases are given (their epochs add up)
    phases: list = field(default_factory=list)  # list of PhaseConfig
    # best checkpoint, plateau scheduler, early stop: val_dice | val_iou (pooled over the validation set),
    # val_dice_per_case (mean Dice of the cases whose reference has the class: how crops are scored) | val_loss
    monitor: str = "val_dice"
    ema_decay: float | None = None  # e.g. 0.99: validate and ship an exponential moving average
    amp: str = "auto"  # auto (bf16 where the CPU/GPU has it) | bf16 | off
    grad_clip: float | None = None  # max gradient norm
    deterministic: bool = True
    threads: int | None = None  # torch CPU threads (default: torch's choice)
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True  # a tqdm bar per epoch
    tensorboard: bool = True
    curves: bool = True  # redraw curves.png after every epoch (about 0.5 s each)
    verbose: bool = True  # one summary line per epoch on stdout
    keep_epochs: bool = False  # also save every epoch's weights (epoch_N.pt): choose one later on another figure

    def phase_list(self) -> list[PhaseConfig]:
        return self.phases or [PhaseConfig(epochs=self.epochs)]

    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phase_list())


_NESTED = {"phases": PhaseConfig}
MONITORS = ("val_dice", "val_iou", "val_dice_per_case", "val_loss", "val_auc")
TASKS = ("segmentation", "classification")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 1e-4 (no dot) as a string; configs mean a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from a dict; unknown keys raise LungsegError with a suggestion."""
    if not isinstance(data, dict):
        raise LungsegError(f"config section '{where or cls.__name__}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            raise LungsegError(f"unknown config key '{path}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            value = from_dict(hint, value or {}, path)
        elif key in _NESTED and cls is TrainConfig:
            value = [from_dict(_NESTED[key], v, f"{path}[{i}]") for i, v in enumerate(value or [])]
        kwargs[key] = value
    return cls(**kwargs)


def apply_overrides(raw: dict, overrides) -> dict:
    for item in overrides or []:
        if "=" not in item:
            raise LungsegError(f"override '{item}' must look like key.sub=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise LungsegError(f"override '{item}': '{p}' is not a section")
        node[parts[-1]] = parse_yaml(value)
    return raw


def load_config(path, overrides=None) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise LungsegError(f"config file not found: {path}")
    try:
        raw = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise LungsegError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None
    raw = apply_overrides(raw, overrides)
    raw.setdefault("name", path.stem)
    cfg = from_dict(TrainConfig, raw)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    if isinstance(cfg.amp, bool):  # YAML reads a bare off/on as a boolean
        cfg.amp = "bf16" if cfg.amp else "off"
    if cfg.task not in TASKS:
        raise LungsegError(f"task must be one of {', '.join(TASKS)} (got {cfg.task})")
    if cfg.task == "classification":
        cfg.monitor = "val_auc"  # the only figure a classifier is chosen by
    elif cfg.monitor == "val_auc":
        raise LungsegError("monitor val_auc is for task: classification")
    if cfg.monitor not in MONITORS:
        raise LungsegError(f"monitor must be one of {', '.join(MONITORS)} (got {cfg.monitor})")
    if cfg.amp not in ("auto", "bf16", "off"):
        raise LungsegError(f"amp must be auto, bf16 or off (got {cfg.amp})")
    if cfg.optim.name not in ("adam", "adamw", "sgd"):
        raise LungsegError(f"optimiser must be adam, adamw or sgd (got {cfg.optim.name})")
    if cfg.scheduler.name not in ("plateau", "cosine", "none"):
        raise LungsegError(f"scheduler must be plateau, cosine or none (got {cfg.scheduler.name})")
    if cfg.total_epochs() < 1:
        raise LungsegError("training needs at least one epoch")


def config_to_dict(cfg: TrainConfig) -> dict:
    """Plain JSON-compatible dict (tuples -> lists), safe for torch.load(weights_only=True)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))  # e.g. a generator function


def save_config(cfg: TrainConfig, path) -> None:
    from ..io import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


__all__ = ["DataConfig", "EarlyStopConfig", "LossConfig", "ModelConfig", "OptimConfig", "PhaseConfig",
           "SchedulerConfig", "SplitConfig", "TrainConfig", "config_to_dict", "from_dict", "load_config"]
