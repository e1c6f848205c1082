"""Training engine: config parsing, a short run of every architecture, a tiny overfit, frozen
phases, early stopping, EMA, logs, the shipped configs, the CLI."""
import copy
import csv
from pathlib import Path

import pytest
import torch
import yaml

from lungseg.data import SOURCES
from lungseg.errors import LungsegError
from lungseg.models import build_model, list_models, load_checkpoint, model_spec
from lungseg.train import load_config, train
from lungseg.train.config import TrainConfig, from_dict, validate

REPO = Path(__file__).resolve().parents[1]
FAKE = "test_data:fake_case"


def tiny(tmp_path, **over) -> TrainConfig:
    raw = {
        "name": "tiny", "seed": 0, "output_dir": str(tmp_path / "run"),
        "model": {"name": "fast_unet", "kwargs": {"channels": [8, 16, 32], "num_res_units": 1}},
        "data": {"sources": [{"type": "synthetic", "n_cases": 4, "generator": FAKE}], "input_size": [32, 32],
                 "batch_size": 4, "samples_per_epoch": 8, "val_samples": 8,
                 "split": {"fractions": [0.5, 0.5, 0.0]}},
        "loss": {"name": "dice_ce"}, "optim": {"lr": 0.01}, "epochs": 1, "amp": "off",
        "progress": False, "verbose": False, "tensorboard": False, "curves": False,
    }
    for key, value in over.items():
        node = raw
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    cfg = from_dict(TrainConfig, raw)
    validate(cfg)
    return cfg


# ---- config ----------------------------------------------------------------------------------
def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"optim": {"lr": 1e-3, "weight_decy": 1e-4}}))
    with pytest.raises(LungsegError, match="optim.weight_decy.*weight_decay"):
        load_config(path)
    path.write_text(yaml.safe_dump({"epochs": 3, "amp": "off"}))
    cfg = load_config(path, ["optim.lr=1e-4", "data.input_size=[64, 64]"])
    assert cfg.name == "c" and cfg.optim.lr == 1e-4 and cfg.data.input_size == [64, 64] and cfg.amp == "off"
    path.write_text(yaml.safe_dump({"phases": [{"epochs": 2, "freeze": ["encoder"]}, {"epochs": 3, "lr": 1e-4}]}))
    cfg = load_config(path)
    assert cfg.total_epochs() == 5 and cfg.phases[0].freeze == ["encoder"]


def test_shipped_configs_are_valid():
    paths = sorted((REPO / "configs").glob("*.yaml"))
    assert len(paths) >= 12
    seen, classifiers = set(), set()
    for p in paths:
        cfg = load_config(p)
        if cfg.task == "classification":  # malignancy classifiers: their own registry and sources
            from lungseg.classification.samples import SOURCES as NODULE_SOURCES

            classifiers.add(cfg.model.name)
            assert cfg.notes and all(src["type"] in NODULE_SOURCES for src in cfg.data.sources), p.name
            continue
        seen.add(cfg.model.name)
        spec = model_spec(cfg.model.name, spatial_dims=cfg.data.dims)
        size = cfg.data.patch_size or cfg.data.input_size
        assert all(s % spec.divisibility == 0 for s in size), p.name
        assert cfg.notes, f"{p.name}: say where the settings come from"
        assert all(src["type"] in SOURCES for src in cfg.data.sources), p.name
    assert seen == set(list_models())
    from lungseg.classification.networks import list_classifiers

    assert classifiers == set(list_classifiers())  # every classifier has a config to compare it with
    cpu = [p for p in paths if p.stem.endswith("_cpu")]
    assert len(cpu) >= 6


# ---- short runs ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(set(list_models()) - {"fast_unet"}))
def test_every_architecture_trains_briefly(tmp_path, name):
    small = {"unet": {"base_features": 4}, "attention_unet": {"channels": [4, 8, 16], "strides": [2, 2]},
             "se_unet_aux": {"features": [4, 8, 16], "separable": True},
             "resnet34_unet": {"decoder_channels": [32, 16, 16, 8, 8]},
             "efficientnet_b4_unet": {"decoder_channels": [32, 16, 16, 8, 8], "dilated_bottleneck": False}}[name]
    cfg = tiny(tmp_path, **{"model.name": name, "model.kwargs": small, "data.samples_per_epoch": 4})
    result = train(cfg)
    assert len(result.history) == 1 and result.best_checkpoint.is_file()
    model, meta = load_checkpoint(result.best_checkpoint)
    assert meta["model_name"] == name and meta["classes"] == ["background", "right_lung", "left_lung", "nodule"]
    assert meta["preprocessing"]["intensity"] == {"mode": "window", "windows": ["lung"]}
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 4, 32, 32)


def test_3d_training_with_patches_and_sliding_window_validation(tmp_path):
    cfg = tiny(tmp_path, **{"data.dims": 3, "data.input_size": None, "data.patch_size": [4, 16, 16],
                            "data.samples_per_epoch": 4, "data.batch_size": 2, "data.classes": ["background", "lung"],
                            "model.kwargs": {"channels": [4, 8], "num_res_units": 0}})
    result = train(cfg)
    row = result.history[0]
    assert row["train_samples"] == 4 and 0 <= row["val_dice"] <= 1
    _, meta = load_checkpoint(result.best_checkpoint)
    assert meta["preprocessing"]["patch_size"] == [4, 16, 16] and meta["spec"]["spatial_dims"] == 3


def test_tiny_overfit_reaches_high_dice(tmp_path):
    src = {"type": "synthetic", "n_cases": 2, "generator": FAKE}
    cfg = tiny(tmp_path, **{"data.sources": [dict(src, role="train"), dict(src, role="val")],
                            "data.classes": ["background", "right_lung", "left_lung"], "data.samples_per_epoch": 12,
                            "data.val_samples": None, "optim.lr": 0.01, "epochs": 8,
                            # instance norm: no running statistics, so eval behaves as training does
                            "model.kwargs": {"channels": [8, 16, 32], "num_res_units": 1, "norm": "instance"}})
    result = train(cfg)
    assert result.best_metric > 0.9, [round(h["val_dice"], 3) for h in result.history]


def test_frozen_encoder_phase_then_unfrozen(tmp_path):
    kwargs = {"features": [4, 8, 16]}
    cfg = tiny(tmp_path, **{"model.name": "se_unet_aux", "model.kwargs": kwargs, "data.samples_per_epoch": 8,
                            "phases": [{"epochs": 1, "freeze": ["encoder"], "name": "frozen"},
                                       {"epochs": 1, "lr": 0.001, "name": "all"}]})
    torch.manual_seed(cfg.seed)
    init = build_model("se_unet_aux", out_channels=4, **kwargs).state_dict()
    frozen_cfg = copy.deepcopy(cfg)
    frozen_cfg.phases = frozen_cfg.phases[:1]
    frozen_cfg.output_dir = str(tmp_path / "frozen")
    after_frozen = torch.load(train(frozen_cfg).last_checkpoint, weights_only=True)["raw_state_dict"]
    enc = [k for k in init if k.startswith("encoder.")]
    dec = [k for k in init if k.startswith("decoder.") and k.endswith("weight")]
    assert all(torch.equal(init[k], after_frozen[k]) for k in enc)  # weights and BN statistics
    assert any(not torch.equal(init[k], after_frozen[k]) for k in dec)
    result = train(cfg)
    final = torch.load(result.last_checkpoint, weights_only=True)
    assert [h["phase"] for h in result.history] == ["frozen", "all"]
    assert result.history[1]["lr"] == 0.001
    assert any(not torch.equal(init[k], final["raw_state_dict"][k]) for k in enc if k.endswith("weight"))


def test_encoder_unets_expose_a_freezable_encoder():
    from lungseg.train.engine import _apply_freeze, _frozen_modules

    for name in ("resnet34_unet", "efficientnet_b4_unet"):
        model = build_model(name, dilated_bottleneck=False, decoder_se=False)
        _apply_freeze(model, _frozen_modules(model, ["encoder"]))
        trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
        assert trainable == {"decoder", "segmentation_head"}, name
    with pytest.raises(LungsegError, match="no such submodule"):
        _frozen_modules(model, ["backbone"])


def test_early_stopping_ema_and_logs(tmp_path):
    cfg = tiny(tmp_path, **{"epochs": 6, "monitor": "val_loss", "early_stopping": {"patience": 2, "min_delta": 10},
                            "ema_decay": 0.5, "tensorboard": True, "optim.name": "sgd", "grad_clip": 1.0})
    result = train(cfg)
    assert result.stopped_early and len(result.history) == 3  # best at 1, no gain of 10 at 2 and 3
    out = result.output_dir
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert {"train_loss", "train_dice", "train_iou", "val_loss", "val_dice", "val_iou", "seconds_train"} <= set(rows[0])
    assert (out / "curves.png").stat().st_size > 1000 and list((out / "tensorboard").glob("events.*"))
    assert (out / "config.yaml").is_file() and (out / "summary.json").is_file()
    last = torch.load(result.last_checkpoint, weights_only=True)
    assert last["ema"] is not None and last["trainer"]["bad_epochs"] == 2


def test_bf16_autocast_trains(tmp_path):
    result = train(tiny(tmp_path, amp="bf16"))
    assert result.history[0]["train_loss"] > 0


def test_cli_train(tmp_path, capsys):
    from lungseg.cli import main

    cfg_path = tmp_path / "c.yaml"
    cfg = tiny(tmp_path)
    from lungseg.train.config import config_to_dict

    raw = config_to_dict(cfg)
    raw.pop("output_dir")
    cfg_path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(cfg_path), "-o", str(tmp_path / "cli"), "--set", "epochs=2"]) == 0
    assert (tmp_path / "cli" / "best.pt").is_file()
    assert len(list(csv.DictReader(open(tmp_path / "cli" / "history.csv")))) == 2
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert main(["train", "--list-models"]) == 0
    listed = capsys.readouterr().out
    assert "fast_unet" in listed and "resnet34" in listed and "radiomics" in listed  # segmenters and classifiers


def test_case_dice_weighs_every_case_alike():
    from lungseg.train.metrics import CaseDice, OverlapCounter

    target = torch.zeros(3, 10, 10, dtype=torch.long)
    target[0, :2, :2] = 1  # 4 px, missed entirely
    target[1, :, :5] = 1  # 50 px, found exactly
    pred = target.clone()
    pred[0] = 0
    pred[2, 0, 0] = 1  # a false positive in a case with no nodule: not scored per case
    cases, pooled = CaseDice(2), OverlapCounter(2)
    cases.update(pred, target)
    pooled.update(pred, target)
    assert cases.mean() == pytest.approx(0.5)  # (0 + 1) / 2
    assert pooled.mean()["dice"] == pytest.approx(2 * 50 / (2 * 50 + 1 + 4))
    assert CaseDice(2).mean() != CaseDice(2).mean()  # no case: NaN, not 0


def test_cosine_schedule_and_per_case_monitor(tmp_path):
    cfg = tiny(tmp_path, **{"epochs": 4, "optim.lr": 0.01, "scheduler": {"name": "cosine", "min_lr": 0.001},
                            "monitor": "val_dice_per_case"})
    result = train(cfg)
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] == pytest.approx(0.01)
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] > 0.001  # stepped once per epoch, ends at min_lr
    assert lrs[2] == pytest.approx(0.001 + 0.009 * 0.5)  # half way: the mean of the two
    assert result.best_metric == max(row["val_dice_per_case"] for row in result.history)
    phased = tiny(tmp_path, **{"phases": [{"epochs": 2}, {"epochs": 2, "lr": 0.002}], "optim.lr": 0.01,
                               "scheduler": {"name": "cosine", "min_lr": 0.0}})
    lrs = [row["lr"] for row in train(phased).history]
    assert lrs == pytest.approx([0.01, 0.005, 0.002, 0.001])  # each phase decays from its own lr
    with pytest.raises(LungsegError, match="monitor must be one of.*val_dice_per_case"):
        tiny(tmp_path, monitor="dice")
    with pytest.raises(LungsegError, match="scheduler must be plateau, cosine or none"):
        tiny(tmp_path, scheduler={"name": "step"})
