"""U-Net decoders on ResNet-34 / EfficientNet-B4 encoders (MONAI FlexibleUNet, no torchvision).

Two options from the encoder-U-Net lung papers, added around MONAI's network without copying it:
- dilated bottleneck: a cascade of 3x3 convolutions with dilation 1, 2, 4, 8 on the deepest
  features, summed with the input (D-LinkNet style), to widen the receptive field;
- squeeze-and-excitation (MONAI ChannelSELayer) after each decoder block.
`model.encoder` is the encoder module, so a config phase can freeze it (freeze: [encoder]).
Pretrained encoder weights come from a user file (`pretrained_encoder: path`), never a download.
"""
from __future__ import annotations

import torch
from monai.networks.blocks import ChannelSELayer, Convolution
from monai.networks.nets import FlexibleUNet
from torch import nn

from ..errors import LungsegError

DILATION_RATES = (1, 2, 4, 8)


class DilatedBottleneck(nn.Module):
    def __init__(self, spatial_dims: int, channels: int, rates=DILATION_RATES):
        super().__init__()
        self.convs = nn.ModuleList(
            Convolution(spatial_dims, channels, channels, kernel_size=3, dilation=r, padding=r,
                        act=("relu", {"inplace": True}), norm="batch") for r in rates)

    def forward(self, x):
        out, y = x, x
        for conv in self.convs:
            y = conv(y)
            out = out + y
        return out


class SEDecoderBlock(nn.Module):
    """A MONAI UpCat decoder block followed by channel squeeze-and-excitation."""

    def __init__(self, block: nn.Module, spatial_dims: int, channels: int, reduction: int = 4):
        super().__init__()
        self.block = block
        self.se = ChannelSELayer(spatial_dims, channels, r=reduction)

    def forward(self, x, skip):
        return self.se(self.block(x, skip))


class EncoderUNet(FlexibleUNet):
    def __init__(self, backbone: str, spatial_dims=2, in_channels=1, out_channels=4, dilated_bottleneck=True,
                 decoder_se=True, decoder_channels=(256, 128, 64, 32, 16), dropout=0.0, se_reduction=4,
                 encoder_bn_momentum=0.1):
        super().__init__(in_channels=in_channels, out_channels=out_channels, backbone=backbone, pretrained=False,
                         decoder_channels=tuple(decoder_channels), spatial_dims=spatial_dims, dropout=float(dropout))
        if encoder_bn_momentum is not None:
            # MONAI's EfficientNet uses TF-style momentum 0.01, made for ImageNet-length training; with
            # a few hundred steps its running statistics stay near their initial values and
            # validation (eval mode) fails. 0.1 is PyTorch's default and ResNet's already.
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = float(encoder_bn_momentum)
        deepest = _deepest_channels(self.encoder, spatial_dims, in_channels)
        self.bottleneck = DilatedBottleneck(spatial_dims, deepest) if dilated_bottleneck else nn.Identity()
        if decoder_se:
            for i, block in enumerate(self.decoder.blocks):
                self.decoder.blocks[i] = SEDecoderBlock(block, spatial_dims, decoder_channels[i], se_reduction)

    def forward(self, inputs):
        features = self.encoder(inputs)
        features = [*features[:-1], self.bottleneck(features[-1])]
        return self.segmentation_head(self.decoder(features, self.skip_connect))


def _deepest_channels(encoder: nn.Module, spatial_dims: int, in_channels: int) -> int:
    with torch.no_grad():
        was_training = encoder.training
        encoder.eval()
        feats = encoder(torch.zeros((1, in_channels) + (64,) * spatial_dims))
        encoder.train(was_training)
    return int(feats[-1].shape[1])


def load_encoder_weights(model: EncoderUNet, path) -> dict:
    """Load encoder weights from a user file: a state dict of the encoder (or of a MONAI ResNet /
    EfficientNet, or of a whole EncoderUNet, or a lungseg checkpoint). A first-conv weight made
    for another number of input channels is adapted (summed/averaged over channels).
    Returns {"loaded": n, "skipped": [...]}; raises if nothing matched."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LungsegError(f"pretrained encoder file not found: {path}") from None
    except Exception as e:
        raise LungsegError(f"cannot read pretrained encoder weights {path}: {e}") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise LungsegError(f"{path} does not hold a state dict")
    if any(k.startswith("encoder.") for k in state):  # a whole U-Net: keep its encoder part
        state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    target = model.encoder.state_dict()
    new, skipped = {}, []
    for k, v in state.items():
        if k not in target:
            skipped.append(k)
            continue
        t = target[k]
        if v.shape != t.shape and v.ndim == t.ndim and v.ndim > 2 and v.shape[0] == t.shape[0] \
                and v.shape[2:] == t.shape[2:]:  # first conv with another channel count
            v = v.sum(1, keepdim=True) if t.shape[1] == 1 else v.mean(1, keepdim=True).repeat(
                1, t.shape[1], *([1] * (v.ndim - 2)))
        if v.shape != t.shape:
            skipped.append(k)
            continue
        new[k] = v
    if not new:
        raise LungsegError(f"no tensor in {path} matches the {model.backbone} encoder "
                           f"(first keys: {', '.join(list(state)[:3])})")
    model.encoder.load_state_dict(new, strict=False)
    unexpected = [k for k in skipped if not k.startswith(("fc.", "_fc."))]  # classifier heads are expected
    if unexpected:
        import warnings

        warnings.warn(f"pretrained encoder {path}: {len(unexpected)} tensors did not fit and were left "
                      f"at their initial values (e.g. {unexpected[0]})", stacklevel=2)
    return {"loaded": len(new), "skipped": skipped}


def build(backbone, spatial_dims=2, in_channels=1, out_channels=4, pretrained_encoder=None, **kwargs):
    model = EncoderUNet(backbone, spatial_dims, in_channels, out_channels, **kwargs)
    if pretrained_encoder:
        model.pretrained_report = load_encoder_weights(model, pretrained_encoder)
    return model


def build_resnet34(**kwargs):
    return build("resnet34", **kwargs)


def build_efficientnet_b4(**kwargs):
    return build("efficientnet-b4", **kwargs)
