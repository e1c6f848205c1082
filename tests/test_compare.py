"""`lungseg compare`: three tiny architectures trained on the same fake data, scored on the same
cases, one table with CIs; label mapping between class lists; --reuse; the fairness rule."""
import contextlib
import io
import json

import numpy as np
import pytest
import yaml

from lungseg.cli import main
from lungseg.compare import (budget_epochs, model_classes, prediction_codes, prepare_configs, provided_classes,
                             reference_lut, with_epochs)
from lungseg.errors import LungsegError

FAKE = "test_data:fake_case"  # tests/test_data.py: 6x32x32 phantom, right/left lung and a nodule
DATA = {"sources": [{"type": "synthetic", "n_cases": 4, "generator": FAKE}], "input_size": [32, 32],
        "batch_size": 4, "samples_per_epoch": 8, "val_samples": 8, "split": {"fractions": [0.5, 0.5, 0.0]}}
QUIET = {"epochs": 1, "amp": "off", "progress": False, "verbose": False, "tensorboard": False, "curves": False,
         "threads": 1}  # one thread: steadier on a shared 2-core machine
MODELS = {
    "a_fast": ("fast_unet", {"channels": [4, 8, 16], "num_res_units": 1},
               ["background", "right_lung", "left_lung", "nodule"]),
    "b_attention": ("attention_unet", {"channels": [4, 8, 16], "strides": [2, 2]}, ["background", "lung"]),
    "c_unet": ("unet", {"base_features": 4}, ["background", "right_lung", "left_lung"]),
}


def write_configs(folder):
    paths = []
    for i, (name, (arch, kwargs, classes)) in enumerate(MODELS.items()):
        data = dict(DATA, classes=classes)
        if i:  # later configs ask for other data: the first config's sources must win
            data["sources"] = [{"type": "synthetic", "n_cases": 9, "seed": 50, "generator": FAKE}]
            data["batch_size"] = 2
        raw = {"name": name, "seed": i, "model": {"name": arch, "kwargs": kwargs}, "data": data,
               "loss": {"name": "dice_ce"}, "optim": {"lr": 0.01}, **QUIET}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    paths = write_configs(folder)
    out = folder / "out"
    # --epochs 3 within a budget far below one epoch: every model stops after its first epoch
    argv = ["compare", *paths, "-o", str(out), "--epochs", "3", "--budget-minutes", "0.0001", "--n-boot", "200",
            "--timing-slices", "2", "--device", "cpu", "--threads", "1"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return paths, out, argv, json.loads((out / "compare.json").read_text()), printed.getvalue()


def test_table_has_one_row_per_model_with_cis(compared):
    _, out, _, result, _ = compared
    table = result["table"]
    assert [r["name"] for r in table] == list(MODELS) and {r["split"] for r in table} == {"val"}
    assert [r["architecture"] for r in table] == [m[0] for m in MODELS.values()]
    for r in table:
        assert r["epochs"] == 1 and r["train_minutes"] > 0 and r["ms_per_slice"] > 0
        assert r["precision"] in ("bf16", "fp32")
        for key in [k[: -len("_ci_low")] for k in r if k.endswith("_ci_low")]:
            lo, mean, hi = r[f"{key}_ci_low"], r[key], r[f"{key}_ci_high"]
            assert lo <= mean + 1e-9 and mean <= hi + 1e-9, (r["name"], key, lo, mean, hi)
        assert 0 <= r["both_lungs_dice"] <= 1 and r["both_lungs_iou"] <= r["both_lungs_dice"] + 1e-9
    assert (out / "compare.csv").read_text().count("\n") == 4
    assert (out / "per_case.csv").is_file() and (out / "compare.png").stat().st_size > 5000
    assert result["settings"]["epochs"] == 3 and result["settings"]["budget_minutes"] == 0.0001


def test_printed_table(compared):
    printed = compared[4].splitlines()
    rows = [line for line in printed if line.split() and line.split()[0] in MODELS]
    assert len(rows) == 3 and all("[" in line for line in rows)
    assert "Dice" in printed[1] and "HD95" in printed[1] and "nodule recall" in printed[1]


def test_parameters_match_the_loaded_checkpoints(compared):
    from lungseg.models import count_parameters, load_checkpoint

    _, out, _, result, _ = compared
    for m in result["models"]:
        model, meta = load_checkpoint(out / m["name"] / "best.pt")
        assert m["parameters"] == count_parameters(model) > 0
        assert meta["model_name"] == MODELS[m["name"]][0]


def test_same_cases_for_every_model_and_the_first_configs_data(compared):
    from lungseg.models.checkpoint import read_checkpoint

    _, out, _, result, _ = compared
    cases = [m["results"]["val"]["cases"] for m in result["models"]]
    assert cases[0] == cases[1] == cases[2] == sorted(result["data"]["cases"]["val"])
    assert len(cases[0]) == 2  # 4 fake patients split 50/50
    first = read_checkpoint(out / "a_fast" / "best.pt")["config"]
    for name, (_, _, classes) in MODELS.items():
        cfg = read_checkpoint(out / name / "best.pt")["config"]
        assert cfg["data"]["sources"] == first["data"]["sources"] and cfg["seed"] == first["seed"]
        assert cfg["data"]["classes"] == classes  # each model keeps its own output classes
    assert read_checkpoint(out / "b_attention" / "best.pt")["config"]["data"]["batch_size"] == 2


def test_models_are_scored_on_the_classes_they_share(compared):
    _, out, _, result, _ = compared
    by = {r["name"]: r for r in result["table"]}
    assert "right_lung_dice" in by["a_fast"] and "right_lung_dice" in by["c_unet"]
    assert "right_lung_dice" not in by["b_attention"] and "both_lungs_dice" in by["b_attention"]
    assert "nodule_recall" in by["a_fast"] and by["a_fast"]["nodules"] == 2  # one nodule per val case
    assert "nodule_recall" not in by["b_attention"] and "nodule_recall" not in by["c_unet"]
    scored = {m["name"]: m["scored_classes"] for m in result["models"]}
    assert scored == {"a_fast": ["right_lung", "left_lung", "both_lungs", "nodule"], "b_attention": ["both_lungs"],
                      "c_unet": ["right_lung", "left_lung", "both_lungs"]}


def test_reuse_skips_training(compared, monkeypatch):
    paths, out, argv, before, _ = compared
    mtimes = {n: (out / n / "best.pt").stat().st_mtime_ns for n in MODELS}

    def no_training(*a, **k):
        raise AssertionError("--reuse must not train")

    monkeypatch.setattr("lungseg.train.train", no_training)
    assert main([*argv, "--reuse", "--no-plot"]) == 0
    after = json.loads((out / "compare.json").read_text())
    assert all(m["reused"] for m in after["models"])
    assert {n: (out / n / "best.pt").stat().st_mtime_ns for n in MODELS} == mtimes
    for a, b in zip(before["table"], after["table"]):  # same weights, cases and bootstrap seed
        assert a["both_lungs_dice"] == b["both_lungs_dice"] and a["train_minutes"] == b["train_minutes"]
    # a checkpoint trained on other data is not silently reused
    assert main([*argv, "--reuse", "--no-plot", "--set", "data.samples_per_epoch=4"]) == 2


# ---- pieces ---------------------------------------------------------------------------------------
def test_label_mapping_between_class_lists():
    assert model_classes(["background", "lung"]) == ("both_lungs",)
    assert model_classes(["background", "right_lung", "left_lung"]) == ("right_lung", "left_lung", "both_lungs")
    assert model_classes(["background", "nodule"]) == ("nodule",)
    labels = np.array([0, 1, 2, 3], np.uint8)
    # a lung-only model's left/right comes from geometry in ModelSegmenter: scored as side-unknown lung
    assert prediction_codes(labels, ["background", "lung"]).tolist() == [0, 4, 4, 3]
    assert prediction_codes(labels, ["background", "right_lung", "left_lung"]).tolist() == [0, 1, 2, 3]
    lut = reference_lut({1: "right_lung", 2: "left_lung", 3: "nodule"})
    assert lut[[0, 1, 2, 3]].tolist() == [0, 1, 2, 3]
    assert reference_lut({1: "right_lung", 3: "nodule"}, {"nodule": "right_lung"})[3] == 1
    assert reference_lut({255: "lung"})[255] == 4
    assert provided_classes([4]) == ("both_lungs",) and provided_classes([1, 2, 3])[-1] == "nodule"


def test_epochs_and_budget(tmp_path):
    from lungseg.train.config import PhaseConfig, TrainConfig

    cfg = TrainConfig(phases=[PhaseConfig(epochs=2, freeze=["encoder"]), PhaseConfig(epochs=4)])
    assert [p.epochs for p in with_epochs(cfg, 1).phases] == [1]
    assert [p.epochs for p in with_epochs(cfg, 5).phases] == [2, 3]
    assert [p.epochs for p in with_epochs(cfg, 9).phases] == [2, 7] and cfg.total_epochs() == 6
    assert with_epochs(TrainConfig(epochs=10), 3).epochs == 3
    assert budget_epochs(10, first_epoch_s=30, budget_s=95) == 3
    assert budget_epochs(10, first_epoch_s=30, budget_s=10) == 1 and budget_epochs(2, 1, 100) == 2


def test_config_errors(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump({"name": "same", **QUIET}))
    with pytest.raises(LungsegError, match="share the run name same"):
        prepare_configs([path, path])
    with pytest.raises(LungsegError, match="at least one config"):
        prepare_configs([])
    assert main(["compare", str(path), "--budget-minutes", "0"]) == 2


def test_shipped_compare_configs_share_one_data_section():
    from pathlib import Path

    from lungseg.data import SOURCES
    from lungseg.models import model_spec
    from lungseg.train import load_config

    paths = sorted((Path(__file__).resolve().parents[1] / "configs" / "compare").glob("*.yaml"))
    assert len(paths) >= 3
    cfgs = [load_config(p) for p in paths]
    assert len({c.model.name for c in cfgs}) == len(cfgs) and all(c.notes for c in cfgs)
    for c in cfgs:
        assert c.data.sources == cfgs[0].data.sources and c.data.split == cfgs[0].data.split
        assert c.data.samples_per_epoch == cfgs[0].data.samples_per_epoch and c.total_epochs() == 6
        assert all(s["type"] in SOURCES for s in c.data.sources)
        assert all(s % model_spec(c.model.name).divisibility == 0 for s in c.data.input_size)
    aligned = prepare_configs(paths, epochs=2)
    assert [c.total_epochs() for c in aligned] == [2] * len(paths)


def test_budget_trains_one_epoch_then_resumes_for_what_fits(tmp_path, monkeypatch):
    import time
    from types import SimpleNamespace

    from lungseg.compare import train_or_reuse
    from lungseg.train.config import TrainConfig

    calls = []

    def fake_train(cfg, resume=False, output_dir=None):
        calls.append((cfg.total_epochs(), resume))
        time.sleep(0.05)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "best.pt").write_bytes(b"")
        return SimpleNamespace(history=[{"seconds_train": 0.05, "seconds_val": 0.0}] * cfg.total_epochs(),
                               stopped_early=False, best_checkpoint=output_dir / "best.pt")

    monkeypatch.setattr("lungseg.train.train", fake_train)
    record = train_or_reuse(TrainConfig(epochs=50), tmp_path / "run", budget_s=5.0, reuse=False, log=print)
    assert calls[0] == (1, False) and calls[1][1] is True and 2 <= calls[1][0] <= 50 and len(calls) == 2
    assert record["epochs"] == calls[1][0] and record["seconds"] == pytest.approx(0.05 * calls[1][0])
    assert json.loads((tmp_path / "run" / "compare_train.json").read_text())["epochs"] == calls[1][0]
