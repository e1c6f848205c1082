"""ModelSegmenter: class mapping, TTA left/right swap, determinism, non-HU refusal, checkpoints."""
import subprocess
import sys

import numpy as np
import torch

from lungseg.inference.network import ModelSegmenter
from lungseg.io import CTImage

CLASSES = ["background", "right_lung", "left_lung", "nodule"]


class SideModel(torch.nn.Module):
    """Lung where the input is dark; right lung on the low-x half (patient right), left on the
    high-x half. A mirrored input therefore predicts the sides mirrored, as a real model does."""

    def forward(self, x):
        b, _, h, w = x.shape
        xs = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(b, 1, h, w)
        dark = (0.5 - x[:, :1]) * 20
        return torch.cat([-dark, dark - 5 * xs, dark + 5 * xs, torch.full_like(dark, -50)], dim=1)


def _phantom():
    arr = np.full((3, 48, 64), 40.0, np.float32)
    arr[:, 10:40, 6:28] = -850
    arr[:, 10:40, 36:58] = -850
    return CTImage.from_array(arr, spacing=(1.0, 1.0, 2.0))


def _segmenter(**kw):
    meta = {"preprocessing": {"dims": 2, "input_size": None, "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": CLASSES, "spec": {"divisibility": 16}, "display_name": "side"}
    return ModelSegmenter(SideModel(), meta, precision="fp32", **kw)


def test_labels_follow_classes_and_sides():
    out = _segmenter()(_phantom())
    assert (out.labels[:, 20, 10] == 1).all() and (out.labels[:, 20, 50] == 2).all()
    assert (out.labels[:, 2, 2] == 0).all()


def test_tta_mirror_swaps_lungs_back():
    ct = _phantom()
    plain = _segmenter().predict_probabilities(ct)
    tta = _segmenter(tta=True).predict_probabilities(ct)
    np.testing.assert_allclose(tta, plain, atol=1e-5)  # without the swap, the sides would blur to 50/50


def test_inference_is_deterministic_and_bf16_close():
    ct = _phantom()
    a, b = _segmenter()(ct).labels, _segmenter()(ct).labels
    np.testing.assert_array_equal(a, b)
    bf = ModelSegmenter(SideModel(), _segmenter().meta, precision="bf16")(ct).labels
    assert (bf == a).mean() > 0.99


def test_hu_model_refuses_image_mode_input_in_cli(tmp_path):
    """A checkpoint with a HU window, given a PNG: one clear line, exit 2, no mask."""
    from PIL import Image

    from lungseg.models import build_model
    from lungseg.models.checkpoint import save_checkpoint

    model = build_model("fast_unet")
    ckpt = save_checkpoint(tmp_path / "hu.pt", {
        "model_name": "fast_unet", "model_kwargs": {}, "spec": {"divisibility": 16},
        "preprocessing": {"dims": 2, "input_size": [64, 64], "intensity": {"mode": "window", "windows": ["lung"]}},
        "classes": CLASSES, "epoch": 0, "metrics": {}, "state_dict": model.state_dict()})
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(tmp_path / "s.png")
    out = tmp_path / "m.png"
    r = subprocess.run([sys.executable, "-m", "lungseg", "segment", tmp_path / "s.png", "-o", out, "--model", ckpt],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not Hounsfield units" in r.stderr and "--model classical" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
