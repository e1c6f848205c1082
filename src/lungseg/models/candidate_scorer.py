"""The candidate scorer network: a small 3D CNN (MONAI Classifier: strided residual units) that
reads a 2-channel 32^3 patch around a candidate (lungseg.inference.patches) and gives one
logit: is this finding a nodule or tumour (not: is it malignant)."""
from __future__ import annotations

from ..inference.patches import PATCH, PATCH_MM
from .exported import load_state, save_exported

ARCH = {"in_shape": (2, PATCH, PATCH, PATCH), "classes": 1, "channels": (16, 32, 64, 128), "strides": (2, 2, 2, 2),
        "num_res_units": 1}


def build_scorer(meta=None):
    from monai.networks.nets import Classifier

    return Classifier(**ARCH)


def save_scorer(model, path, meta: dict):
    """weights (.pt: state dict + meta) and an ONNX export beside it (.onnx + .json sidecar)."""
    meta = {"kind": "candidate_scorer", "arch": ARCH, "patch": PATCH, "patch_mm": PATCH_MM, **meta}
    return save_exported(model, path, meta, ARCH["in_shape"])


def load_scorer(path):
    """(torch model in eval mode, meta) from a .pt written by save_scorer."""
    return load_state(path, build_scorer)
