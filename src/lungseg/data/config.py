"""The data section of a training config (plain dataclasses; YAML parsing lives in lungseg.train.config)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SplitConfig:
    fractions: tuple = (0.7, 0.2, 0.1)  # train / val / test, by patient
    seed: int = 0
    k_folds: int = 0  # > 1: k-fold by patient (test_fraction held out first), `fold` is val
    fold: int = 0
    test_fraction: float = 0.1  # only for k-fold


@dataclass
class DataConfig:
    # each source: {type: synthetic|nnunet|folder2d|cip_copdgene|imlab3d|kaggle_lungs_64px|lidc_crops|
    #               lidc_slices|msd_patches, role: split|train|val|test, label_map: {name: class},
    #               patients_limit: N, ...adapter options (path, n_cases, ...)}
    sources: list = field(default_factory=lambda: [{"type": "synthetic", "n_cases": 10}])
    classes: list = field(default_factory=lambda: ["background", "right_lung", "left_lung", "nodule"])
    dims: int = 2
    input_size: list | None = field(default_factory=lambda: [256, 256])  # 2D: slice; 3D: volume (z, y, x)
    patch_size: list | None = None  # 3D: random training patches; validation by sliding window
    intensity: dict = field(default_factory=lambda: {"mode": "window", "windows": ["lung"]})
    context_slices: int = 0  # 2D: neighbour slices on each side fed as extra channels (2.5D)
    beyond_stack: str = "repeat"  # 2.5D training: context beyond a crop stack's ends (lungseg.data.stack_edges)
    thick_slices: float = 0.0  # 2.5D training: share of thin crop-stack samples seen as 2.5 mm (lungseg.data.thick_slices)
    resize_method: str = "bilinear"  # images: bilinear or lanczos (2D); masks are always nearest
    empty_slices: float = 0.2  # 2D: fraction of slices without any wanted label that are kept
    split: SplitConfig = field(default_factory=SplitConfig)
    batch_size: int = 8
    val_batch_size: int = 16
    num_workers: int = 0
    samples_per_epoch: int | None = None  # cap (2D) or number of patches (3D) per epoch
    val_samples: int | None = None  # cap on validation samples (a fixed, evenly spaced subset)
