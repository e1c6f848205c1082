"""The candidate scorer network: a small 3D CNN (MONAI Classifier: strided residual units) that
reads a 2-channel 32^3 patch around a candidate (lungseg.inference.patches) and gives one
logit: is this finding a nodule or tumour (not: is it malignant)."""
from __future__ import annotations

import json
from pathlib import Path

from ..inference.patches import PATCH, PATCH_MM

ARCH = {"in_shape": (2, PATCH, PATCH, PATCH), "classes": 1, "channels": (16, 32, 64, 128), "strides": (2, 2, 2, 2),
        "num_res_units": 1}


def build_scorer():
    from monai.networks.nets import Classifier

    return Classifier(**ARCH)


def save_scorer(model, path, meta: dict) -> Path:
    """weights (.pt: state dict + meta) and an ONNX export beside it (.onnx + .json sidecar)."""
    import torch

    from ..io import atomic_path

    path = Path(path)
    meta = {"kind": "candidate_scorer", "arch": ARCH, "patch": PATCH, "patch_mm": PATCH_MM, **meta}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "meta": meta}, tmp)
    model.eval()
    with atomic_path(path.with_suffix(".onnx")) as tmp:
        torch.onnx.export(model, torch.zeros(1, *ARCH["in_shape"]), str(tmp), input_names=["patch"],
                          output_names=["logit"], dynamic_axes={"patch": {0: "n"}, "logit": {0: "n"}},
                          dynamo=False, opset_version=17)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return path


def load_scorer(path):
    """(torch model in eval mode, meta) from a .pt written by save_scorer."""
    import torch

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
    model = build_scorer()
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["meta"]
