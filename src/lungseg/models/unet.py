"""Plain U-Net (Ronneberger et al. 2015) on MONAI's BasicUNet.

BasicUNet already is the classic layout: two 3x3 conv + norm + act per level, max-pool down,
transposed conv up, skip concatenation. We set BN + ReLU (the paper's choice) and turn its
element-wise dropout into spatial (channel) dropout, which suits correlated conv features.
L2 weight decay is an optimiser setting (optim.weight_decay in the config).
"""
from __future__ import annotations


def build(spatial_dims=2, in_channels=1, out_channels=4, base_features=32, features=None, dropout=0.0,
          spatial_dropout=True):
    import torch.nn as nn
    from monai.networks.nets import BasicUNet

    b = int(base_features)
    feats = tuple(features) if features is not None else (b, 2 * b, 4 * b, 8 * b, 16 * b, b)
    net = BasicUNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                    features=feats, act=("relu", {"inplace": True}), norm="batch", dropout=float(dropout),
                    upsample="deconv")
    if dropout and spatial_dropout:
        drop_cls = nn.Dropout2d if spatial_dims == 2 else nn.Dropout3d
        _replace_dropout(net, drop_cls)
    return net


def _replace_dropout(module, drop_cls) -> None:
    import torch.nn as nn

    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, drop_cls(p=child.p))
        else:
            _replace_dropout(child, drop_cls)
