"""The candidate scorer network: a small 3D CNN (MONAI Classifier: strided residual units) that
reads a 2-channel 32^3 patch around a candidate (lungseg.inference.patches) and gives one
logit: is this finding a nodule or tumour (not: is it malignant)."""
from __future__ import annotations

from ..inference.patches import PATCH, PATCH_MM
from .exported import load_state, save_exported

ARCH = {"in_shape": (2, PATCH, PATCH, PATCH), "classes": 1, "channels": (16, 32, 64, 128), "strides": (2, 2, 2, 2),
        "num_res_units": 1}


def build_scorer(meta=None):
    """One CNN, or the mean of several (meta["members"]: how many, see scorer_ensemble)."""
    from monai.networks.nets import Classifier

    members = int((meta or {}).get("members", 1))
    return Classifier(**ARCH) if members == 1 else scorer_ensemble([Classifier(**ARCH) for _ in range(members)])


def scorer_ensemble(models):
    """A module whose logit is that of the members' mean probability: one graph to export and run,
    as a single scorer is (scripts/ensemble_scorers.py)."""
    import torch

    class ScorerEnsemble(torch.nn.Module):
        def __init__(self, members):
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x):
            p = torch.stack([torch.sigmoid(m(x)) for m in self.members]).mean(0).clamp(1e-6, 1 - 1e-6)
            return torch.log(p) - torch.log1p(-p)

    return ScorerEnsemble(models)


def save_scorer(model, path, meta: dict, half: bool = False):
    """weights (.pt: state dict + meta; fp16 with `half`, see round_to_half) and an ONNX export
    beside it (.onnx + .json sidecar)."""
    meta = {"kind": "candidate_scorer", "arch": ARCH, "patch": PATCH, "patch_mm": PATCH_MM, **meta}
    return save_exported(model, path, meta, ARCH["in_shape"], half=half)


def load_scorer(path):
    """(torch model in eval mode, meta) from a .pt written by save_scorer."""
    return load_state(path, build_scorer)
