"""Evaluation: metrics (MONAI underneath), lesion detection, bootstrap summaries, plots, HTML reports,
robustness to intensity changes and inter-reader agreement.

Names resolve lazily so importing this package does not import torch/MONAI/matplotlib.
"""
from importlib import import_module

_EXPORTS = {
    "evaluate_case": "metrics", "binary_metrics": "metrics", "METRICS": "metrics",
    "match_lesions": "lesions", "lesion_counts": "lesions",
    "summarise": "bootstrap", "summarise_lesions": "bootstrap", "volume_agreement": "bootstrap",
    "describe": "bootstrap", "cluster_bootstrap_ratio": "bootstrap",
    "evaluate_arrays": "folders", "evaluate_folders": "folders", "summarise_all": "folders",
    "parse_label_map": "labelmaps", "LabelMap": "labelmaps",
    "robustness_curve": "robustness", "perturb": "robustness",
    "reader_agreement": "readers_agreement", "agreement_with_consensus": "readers_agreement",
    "ALL_CLASSES": "classes", "class_mask": "classes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
