"""Attention U-Net (Oktay et al. 2018) on MONAI's AttentionUnet, with retrievable attention maps.

MONAI's AttentionBlock computes psi = sigmoid(BN(conv1x1(relu(W_g g + W_x x)))) (additive gating)
and multiplies the skip by it. A forward hook on each gate's `psi` keeps the maps, so the network
code stays MONAI's own: after any forward, `model.attention_maps` lists them highest resolution
first, each (B, 1, *spatial), detached.
(This module is imported only when a model is built, so torch/MONAI load here at the top.)
"""
from __future__ import annotations

from monai.networks.nets import AttentionUnet
from monai.networks.nets.attentionunet import AttentionBlock


class AttentionUNet(AttentionUnet):
    def __init__(self, spatial_dims, in_channels, out_channels, channels, strides, dropout=0.0,
                 store_attention=True):
        super().__init__(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                         channels=tuple(channels), strides=tuple(strides), dropout=float(dropout))
        self.store_attention = store_attention
        self.attention_maps: list = []
        self._maps: list = []
        for m in self.modules():
            if isinstance(m, AttentionBlock):
                m.psi.register_forward_hook(self._keep_map)

    def _keep_map(self, _module, _inputs, output):
        if self.store_attention:
            self._maps.append(output.detach())

    def forward(self, x):
        self._maps = []
        out = super().forward(x)
        # gates run deepest first (the recursion unwinds upward): present highest resolution first
        self.attention_maps = sorted(self._maps, key=lambda t: -t[0, 0].numel())
        self._maps = []
        return out


def build(spatial_dims=2, in_channels=1, out_channels=4, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2),
          dropout=0.0, store_attention=True):
    return AttentionUNet(spatial_dims, in_channels, out_channels, channels, strides, dropout, store_attention)
