"""SE U-Net with an auxiliary classifier (multi-class lungs + nodules).

Each encoder and decoder block is two conv + BN + ReLU (optionally depthwise-separable) followed
by squeeze-and-excitation (MONAI ChannelSELayer). At the bottleneck, global average pooling and
two dense layers predict which foreground classes are present in the input; the engine adds
that multi-label loss to the segmentation loss (losses.AuxLoss).
forward() returns (logits, aux_logits) in training mode and logits only in eval mode (what
inference, export and validation want); `forward_with_aux()` always returns both.
"""
from __future__ import annotations

import torch
from monai.networks.blocks import ADN, ChannelSELayer, Convolution
from monai.networks.layers.factories import Conv, Pool
from torch import nn


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1 convolution, then BN + ReLU (MONAI ADN)."""

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int):
        conv = Conv[Conv.CONV, spatial_dims]
        super().__init__(
            conv(in_ch, in_ch, kernel_size=3, padding=1, groups=in_ch, bias=False),
            conv(in_ch, out_ch, kernel_size=1, bias=False),
            ADN(ordering="NA", in_channels=out_ch, act=("relu", {"inplace": True}), norm="batch",
                norm_dim=spatial_dims),
        )


class SEConvBlock(nn.Sequential):
    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, separable: bool, dropout: float,
                 se_reduction: int):
        def conv(i, o):
            if separable and i > 1:  # a depthwise conv on a single input channel is pointless
                return SeparableConv(spatial_dims, i, o)
            return Convolution(spatial_dims, i, o, kernel_size=3, act=("relu", {"inplace": True}), norm="batch",
                               dropout=dropout or None)

        super().__init__(conv(in_ch, out_ch), conv(out_ch, out_ch),
                         ChannelSELayer(spatial_dims, out_ch, r=se_reduction))


class SEUNetAux(nn.Module):
    def __init__(self, spatial_dims=2, in_channels=1, out_channels=4, features=(16, 32, 64, 128, 256),
                 separable=False, dropout=0.0, se_reduction=4, aux_hidden=64, aux_classes=None):
        super().__init__()
        f = tuple(features)
        block = lambda i, o: SEConvBlock(spatial_dims, i, o, separable, dropout, se_reduction)  # noqa: E731
        self.encoder = nn.ModuleList([block(in_channels, f[0])] + [block(f[i - 1], f[i]) for i in range(1, len(f))])
        self.pool = Pool[Pool.MAX, spatial_dims](kernel_size=2)
        up = Conv[Conv.CONVTRANS, spatial_dims]
        self.ups = nn.ModuleList(up(f[i], f[i - 1], kernel_size=2, stride=2) for i in range(len(f) - 1, 0, -1))
        self.decoder = nn.ModuleList(block(2 * f[i - 1], f[i - 1]) for i in range(len(f) - 1, 0, -1))
        self.head = Conv[Conv.CONV, spatial_dims](f[0], out_channels, kernel_size=1)
        # class presence of the foreground classes (background is always present)
        self.aux_classes = aux_classes or max(out_channels - 1, 1)
        self.aux_head = nn.Sequential(
            Pool[Pool.ADAPTIVEAVG, spatial_dims](1), nn.Flatten(),
            nn.Linear(f[-1], aux_hidden), nn.ReLU(inplace=True), nn.Linear(aux_hidden, self.aux_classes))
        self.last_aux_logits = None

    def forward_with_aux(self, x):
        skips = []
        for i, enc in enumerate(self.encoder):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        aux = self.aux_head(x)
        for up, dec, skip in zip(self.ups, self.decoder, reversed(skips[:-1])):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x), aux

    def forward(self, x):
        logits, aux = self.forward_with_aux(x)
        self.last_aux_logits = aux.detach()
        return (logits, aux) if self.training else logits


def build(spatial_dims=2, in_channels=1, out_channels=4, **kwargs):
    return SEUNetAux(spatial_dims, in_channels, out_channels, **kwargs)
