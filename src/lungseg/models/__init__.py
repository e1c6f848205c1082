"""Segmentation architectures: a registry (name -> builder + input convention) and checkpoints.

Only the registry is imported eagerly; torch/MONAI load when a model is built.
"""
from .registry import ModelSpec, build_model, list_models, model_spec, register


def load_checkpoint(path, map_location="cpu", weights: str = "best"):
    """Rebuild the model stored in a lungseg checkpoint -> (model in eval mode, meta dict)."""
    from .checkpoint import load_checkpoint as _load

    return _load(path, map_location=map_location, weights=weights)


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["ModelSpec", "build_model", "count_parameters", "list_models", "load_checkpoint", "model_spec",
           "register"]
