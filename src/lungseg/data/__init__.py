"""Training data: sources (user folders, synthetic, shared sets) -> cases -> patient-level
splits -> datasets with preprocessing and augmentation."""
from .augment import AugmentConfig, build_augmentation
from .cases import Case, canonical_name, label_lut
from .config import DataConfig, SplitConfig
from .preprocess import normalize_intensity, resize
from .sources import SOURCES, load_source
from .splits import find_duplicates, kfold_patients, split_patients

__all__ = ["AugmentConfig", "Case", "DataConfig", "SOURCES", "SplitConfig", "build_augmentation", "build_datasets",
           "canonical_name", "find_duplicates", "kfold_patients", "label_lut", "load_source", "normalize_intensity",
           "resize", "split_patients"]


def build_datasets(*args, **kwargs):
    """See lungseg.data.datasets.build_datasets (imports torch)."""
    from .datasets import build_datasets as _build

    return _build(*args, **kwargs)
