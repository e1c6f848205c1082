"""Kill-and-resume: a training process killed after its first checkpoint and resumed ends with
exactly the weights, optimiser state and history of an uninterrupted run (deterministic CPU)."""
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from lungseg.train import load_config, train

TESTS = Path(__file__).resolve().parent

CONFIG = {
    "name": "resume", "seed": 7,
    "model": {"name": "se_unet_aux", "kwargs": {"features": [4, 8, 16], "dropout": 0.1}},
    "data": {"sources": [{"type": "synthetic", "n_cases": 4, "generator": "test_data:fake_case"}],
             "input_size": [32, 32], "batch_size": 4, "samples_per_epoch": 16, "val_samples": 8,
             "split": {"fractions": [0.5, 0.5, 0.0]}},
    # every source of randomness is on: augmentation, dropout, EMA, scheduler, phases
    "augment": {"flip_lr": 0.5, "rotate": 0.5, "scale": 0.3, "noise": 0.5, "elastic": 0.3, "brightness": 0.3},
    "loss": {"name": "dice_focal", "kwargs": {"lambda": 0.5}},
    "optim": {"lr": 0.005, "weight_decay": 1e-4}, "scheduler": {"patience": 1}, "ema_decay": 0.9,
    "grad_clip": 1.0, "early_stopping": {"patience": 10},
    "phases": [{"epochs": 2, "freeze": ["encoder"]}, {"epochs": 3, "lr": 0.002}],
    "amp": "bf16", "progress": False, "tensorboard": True, "curves": False,
}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _cmd(cfg_path, out, *extra):
    return [sys.executable, "-m", "lungseg", "train", str(cfg_path), "-o", str(out), *extra]


def test_killed_run_resumes_to_identical_weights(tmp_path):
    cfg_path = tmp_path / "resume.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    total = sum(p["epochs"] for p in CONFIG["phases"])

    proc = subprocess.Popen(_cmd(cfg_path, tmp_path / "killed"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=_env())
    for line in proc.stdout:
        if line.startswith("epoch "):  # printed right after the epoch's checkpoint was written
            proc.kill()
            break
    proc.wait(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be killed"
    killed_at = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"]
    assert 1 <= killed_at < total

    resumed = subprocess.run(_cmd(cfg_path, tmp_path / "killed", "--resume"), capture_output=True, text=True,
                             env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {tmp_path / 'killed' / 'last.pt'} after epoch {killed_at}" in resumed.stdout

    sys.path.insert(0, str(TESTS))
    full = train(load_config(cfg_path), output_dir=tmp_path / "full")  # uninterrupted, in this process
    a = torch.load(full.last_checkpoint, weights_only=True)
    b = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == total
    for key in ("raw_state_dict", "state_dict"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), f"{key}:{k} differs after resume"
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["scheduler"] == b["scheduler"]
    metrics = ("train_loss", "train_dice", "val_loss", "val_dice", "lr")
    assert [[h[m] for m in metrics] for h in a["trainer"]["history"]] == \
        [[h[m] for m in metrics] for h in b["trainer"]["history"]]
    assert len((tmp_path / "killed" / "history.csv").read_text().strip().splitlines()) == total + 1
