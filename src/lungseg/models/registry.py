"""Model registry: name -> builder + input convention.

Kept free of torch imports so `lungseg --help`, `list_models()` and `model_spec()` stay fast;
the builder module is imported only when a model is built. Adding an architecture = one module
with a `build(spatial_dims, in_channels, out_channels, **kw)` function plus one `register()` line.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass, field, replace

from ..errors import LungsegError


@dataclass(frozen=True)
class ModelSpec:
    """What a model expects as input and returns; stored in every checkpoint."""

    name: str
    builder: str  # "module:function" relative to lungseg.models
    description: str
    spatial_dims: int = 2  # default; 3D where `dims` allows it
    dims: tuple[int, ...] = (2, 3)
    in_channels: int = 1
    out_channels: int = 4  # background, right lung, left lung, nodule
    intensity: str = "hu_window"  # "hu_window" (HU CT, windowed) or "image" (normalised picture)
    divisibility: int = 16  # input sides must be multiples of this (with the default depth)
    depth_from: str | None = None  # kwarg whose value sets the depth: "strides" or a channel list
    returns_aux: bool = False  # training forward returns (logits, aux_logits)
    defaults: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dims"] = list(self.dims)
        return d


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    _REGISTRY[spec.name] = spec


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def _get(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LungsegError(f"unknown model '{name}' (available: {', '.join(list_models())})") from None


def model_spec(name: str, **kwargs) -> ModelSpec:
    """The spec of `name`, with spatial_dims/in_channels/out_channels taken from kwargs if given."""
    spec = _get(name)
    changes = {k: kwargs[k] for k in ("spatial_dims", "in_channels", "out_channels") if k in kwargs}
    if changes.get("spatial_dims", spec.spatial_dims) not in spec.dims:
        raise LungsegError(f"model '{name}' supports spatial_dims {spec.dims}, not {changes['spatial_dims']}")
    if spec.depth_from:  # a shallower/deeper variant changes divisibility
        if kwargs.get("strides") is not None:
            changes["divisibility"] = int(math.prod(int(s) for s in kwargs["strides"]))
        elif kwargs.get(spec.depth_from) is not None:
            changes["divisibility"] = 2 ** (len(kwargs[spec.depth_from]) - 1)
    return replace(spec, **changes)


def build_model(name: str, **kwargs):
    """Build an initialised torch.nn.Module; kwargs override the spec's defaults."""
    spec = model_spec(name, **kwargs)
    module_name, func_name = spec.builder.split(":")
    builder = getattr(importlib.import_module(f"lungseg.models.{module_name}"), func_name)
    args = {**spec.defaults, **kwargs, "spatial_dims": spec.spatial_dims,
            "in_channels": spec.in_channels, "out_channels": spec.out_channels}
    try:
        return builder(**args)
    except TypeError as e:  # unknown option in a config: say which model rejected it
        raise LungsegError(f"model '{name}': {e}") from None


# ---- the registry ----------------------------------------------------------------------------
register(ModelSpec(
    "unet", "unet:build",
    "Plain U-Net (Ronneberger 2015): two 3x3 conv+BN+ReLU per level, max-pool, transposed-conv up, "
    "skip concatenation, optional spatial dropout (MONAI BasicUNet)",
    intensity="image", defaults={"base_features": 32, "dropout": 0.0}))
register(ModelSpec(
    "attention_unet", "attention_unet:build",
    "Attention U-Net (Oktay 2018): additive sigmoid attention gates on the skips; maps in "
    "`model.attention_maps` after each forward (MONAI AttentionUnet)",
    depth_from="strides", defaults={"channels": (16, 32, 64, 128, 256), "strides": (2, 2, 2, 2)}))
register(ModelSpec(
    "resnet34_unet", "encoder_unet:build_resnet34",
    "U-Net decoder on a ResNet-34 encoder (MONAI FlexibleUNet); options: dilated bottleneck "
    "(rates 1,2,4,8), SE on decoder blocks, pretrained encoder from a file",
    divisibility=32, defaults={"dilated_bottleneck": True, "decoder_se": True}))
register(ModelSpec(
    "efficientnet_b4_unet", "encoder_unet:build_efficientnet_b4",
    "U-Net decoder on an EfficientNet-B4 encoder (MONAI FlexibleUNet); same options as resnet34_unet",
    divisibility=32, defaults={"dilated_bottleneck": True, "decoder_se": True}))
register(ModelSpec(
    "se_unet_aux", "se_unet_aux:build",
    "SE U-Net with an auxiliary class-presence classifier at the bottleneck (GAP + 2 dense layers), "
    "optional depthwise-separable convolutions; training forward returns (logits, aux_logits)",
    returns_aux=True, depth_from="features", defaults={"features": (16, 32, 64, 128, 256), "separable": False}))
register(ModelSpec(
    "fast_unet", "fast_unet:build",
    "Lightweight default: MONAI UNet, channels 16..256, stride-2 convs, 2 residual units (~1.6 M params)",
    depth_from="channels", defaults={"channels": (16, 32, 64, 128, 256), "num_res_units": 2}))
