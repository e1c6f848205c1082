"""DDP: two CPU processes on the gloo backend, launched by torchrun, train the same model as a
single process with the same global batch (instance norm + cross-entropy are batch-decomposable)."""
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from lungseg.train import load_config, train

TESTS = Path(__file__).resolve().parent

CONFIG = {
    "name": "ddp", "seed": 1,
    "model": {"name": "fast_unet", "kwargs": {"channels": [4, 8, 16], "num_res_units": 1, "norm": "instance"}},
    "data": {"sources": [{"type": "synthetic", "n_cases": 4, "generator": "test_data:fake_case"}],
             "input_size": [32, 32], "batch_size": 4, "samples_per_epoch": 16, "val_samples": 8,
             "split": {"fractions": [0.5, 0.5, 0.0]}},
    "augment": {"flip_lr": 0.5, "noise": 0.5},
    # SGD, not Adam: Adam turns the float noise of near-zero gradients (conv bias before instance
    # norm) into full-size steps, so runs that agree to 1e-7 in gradients would differ visibly
    "loss": {"name": "bce"}, "optim": {"name": "sgd", "lr": 0.05}, "epochs": 2,
    "amp": "off", "progress": False, "tensorboard": False, "curves": False,
}


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    single_cfg = dict(CONFIG)
    ddp_cfg = dict(CONFIG, data=dict(CONFIG["data"], batch_size=2))  # 2 ranks x 2 = the same global batch
    (tmp_path / "single.yaml").write_text(yaml.safe_dump(single_cfg))
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(ddp_cfg))
    ddp = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                "-m", "lungseg", "train", "ddp.yaml", "-o", "ddp"], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "2 process(es)" in ddp.stdout and ddp.stdout.count("epoch 2/2") == 1  # rank 0 reports
    single = train(load_config(tmp_path / "single.yaml", ["threads=1"]), output_dir=tmp_path / "single")
    a = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    b = torch.load(single.last_checkpoint, weights_only=True)
    assert [h["train_samples"] for h in a["trainer"]["history"]] == [16, 16]  # both shards counted
    for k in b["raw_state_dict"]:
        assert torch.allclose(a["raw_state_dict"][k], b["raw_state_dict"][k], atol=1e-5), k
    changed = [k for k in b["raw_state_dict"] if k.endswith("weight")]
    assert changed
