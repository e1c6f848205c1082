"""The malignancy classifiers to compare, all on the same 2.5D nodule patch (patches.py).

The encoder U-Net paper classifies the segmented region with a pretrained ResNet; here the
encoders are MONAI's ResNet-34 and EfficientNet-B4 trained from scratch (no download), beside a
small CNN and a radiomics logistic regression (features.py)."""
from __future__ import annotations

from dataclasses import dataclass

from .patches import CHANNELS, PATCH


@dataclass(frozen=True)
class ClassifierSpec:
    name: str
    description: str
    network: bool = True  # False: a feature model (no torch)


CLASSIFIERS = {s.name: s for s in (
    ClassifierSpec("small_cnn", "MONAI Classifier: 4 strided residual stages (16-128 channels), 0.2 M parameters"),
    ClassifierSpec("resnet34", "MONAI ResNet-34 (2D, trained from scratch: the encoder U-Net paper's encoder), 21 M"),
    ClassifierSpec("efficientnet_b4", "MONAI EfficientNet-B4 (2D, trained from scratch), 17.5 M parameters"),
    ClassifierSpec("radiomics", "logistic regression on size, density and shape features (scikit-image)", network=False),
    ClassifierSpec("size_only", "the nodule's longest axial diameter as the score (the baseline to beat)", network=False),
)}


def list_classifiers() -> list[str]:
    return list(CLASSIFIERS)


def build_classifier(name: str):
    from ..errors import LungsegError

    if name not in CLASSIFIERS or not CLASSIFIERS[name].network:
        nets = [n for n, s in CLASSIFIERS.items() if s.network]
        raise LungsegError(f"unknown classifier network '{name}' (choose from {', '.join(nets)})")
    from monai.networks import nets

    if name == "small_cnn":
        return nets.Classifier(in_shape=(CHANNELS, PATCH, PATCH), classes=1, channels=(16, 32, 64, 128),
                               strides=(2, 2, 2, 2), num_res_units=1, dropout=0.2)
    if name == "resnet34":
        return nets.resnet34(spatial_dims=2, n_input_channels=CHANNELS, num_classes=1)
    # batch-norm momentum 0.1, not MONAI's 0.01 (ImageNet-scale): with ~20 batches an epoch the
    # running statistics would otherwise lag so far that evaluation scores at chance for epochs
    return nets.EfficientNetBN("efficientnet-b4", pretrained=False, spatial_dims=2, in_channels=CHANNELS,
                               num_classes=1, norm=("batch", {"eps": 1e-3, "momentum": 0.1}))
