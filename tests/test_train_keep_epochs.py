"""keep_epochs: every epoch's weights are saved beside best.pt/last.pt, so the epoch shipped can
be chosen later on another figure (the nodule model's is a whole-scan benchmark)."""
import sys
from pathlib import Path

import torch

from lungseg.train import train
from lungseg.train.config import TrainConfig, load_config
from test_train_resume import CONFIG as RESUME_CONFIG

TESTS = Path(__file__).resolve().parent

# the kill-and-resume test's tiny run (every source of randomness on), two plain epochs
CONFIG = {**RESUME_CONFIG, "name": "keep", "phases": [], "epochs": 2, "tensorboard": False, "verbose": False}


def _run(tmp_path, name, **extra):
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **extra}))
    sys.path.insert(0, str(TESTS))
    return train(load_config(path), output_dir=tmp_path / name)


def test_every_epoch_is_kept_with_the_weights_of_that_epoch(tmp_path):
    result = _run(tmp_path, "kept", keep_epochs=True)
    out = tmp_path / "kept"
    assert sorted(p.name for p in out.glob("epoch_*.pt")) == ["epoch_1.pt", "epoch_2.pt"]
    last = torch.load(result.last_checkpoint, weights_only=True)
    first, second = (torch.load(out / f"epoch_{n}.pt", weights_only=True) for n in (1, 2))
    assert all(torch.equal(second["state_dict"][k], last["state_dict"][k]) for k in last["state_dict"])
    assert any(not torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"]
               if first["state_dict"][k].is_floating_point())
    assert "optimizer" not in second  # weights only: the resume point stays last.pt


def test_no_epoch_files_by_default(tmp_path):
    _run(tmp_path, "plain")
    assert TrainConfig().keep_epochs is False
    assert not list((tmp_path / "plain").glob("epoch_*.pt"))
