"""Augmentation pipelines from MONAI dictionary transforms, each with its own probability.

Arrays are channel-first (C, [z,] y, x) in canonical LPS order, so the last axis runs to the
patient's left: a flip across the sagittal plane flips that axis and must swap the right- and
left-lung labels (RandFlipLRd, the one transform MONAI lacks). Randomness comes from the
transforms' own RandomState, which the dataset reseeds per (seed, epoch, sample): the same
sample gets the same augmentation whatever the worker, process or resume point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class AugmentConfig:
    elastic: float = 0.0  # probabilities (0 = off)
    rotate: float = 0.0
    flip_lr: float = 0.0
    scale: float = 0.0
    intensity_shift: float = 0.0
    noise: float = 0.0
    brightness: float = 0.0
    smooth: float = 0.0
    translate: float = 0.0  # probability of an in-plane shift by up to translate_px (mirrored border)
    faint: float = 0.0  # probability of fading everything denser than faint_pivot toward it (partial volume)
    crop: tuple | None = None  # (y, x): every training sample is a random window of this size (2D),
    # so what the crops were cut around (a nodule, at the centre of every LIDC crop) lands anywhere
    # in the input; a network trained only on centred crops learns where nodules are, not what
    # magnitudes
    elastic_spacing: float = 24.0  # 2D: control-point spacing (px); 3D: smoothing sigma range below
    elastic_magnitude: tuple = (0.0, 2.0)
    elastic_sigma_3d: tuple = (5.0, 8.0)
    elastic_magnitude_3d: tuple = (50.0, 150.0)
    rotate_degrees: float = 15.0  # in the axial plane
    scale_range: tuple = (0.9, 1.1)
    shift: float = 0.1  # intensity offset, in units of the normalised image
    noise_std: float = 0.03
    brightness_factor: float = 0.1  # x * (1 + U(-f, f))
    smooth_sigma: tuple = (0.25, 1.0)
    translate_px: float = 32.0
    # faint: x -> pivot + f * (x - pivot) above the pivot, f ~ U(faint_range), every channel alike. On
    # a real 2.5 mm scan a 4 mm solid nodule reads ~-400 HU (partial volume) and ground glass
    # -600..-800: a network that learnt solid nodules only does not propose them. 0.333 is -850 HU
    # (aerated lung) in the lung window [-1350, 150]; f = 0.45 turns +40 HU into ~-450 HU.
    faint_range: tuple = (0.45, 1.0)
    faint_pivot: float = 0.333

    def any(self) -> bool:
        return bool(self.crop) or any(getattr(self, k) > 0 for k in ("elastic", "rotate", "flip_lr", "scale",
                                                                      "intensity_shift", "noise", "brightness",
                                                                      "smooth", "translate", "faint"))


def _flip_lr_class():
    import torch
    from monai.transforms import MapTransform, RandomizableTransform

    class RandFlipLRd(RandomizableTransform, MapTransform):
        """Flip across the sagittal plane (last axis) and swap the right/left lung label values."""

        def __init__(self, keys=("image", "label"), prob: float = 0.5, swap: tuple | None = None,
                     label_key: str = "label"):
            RandomizableTransform.__init__(self, prob)
            MapTransform.__init__(self, keys)
            self.swap, self.label_key = swap, label_key

        def __call__(self, data):
            self.randomize(None)
            if not self._do_transform:
                return data
            d = dict(data)
            for k in self.keys:
                x = torch.as_tensor(d[k])
                d[k] = torch.flip(x, dims=(-1,))
            if self.swap and self.label_key in d:
                lab = d[self.label_key]
                a, b = self.swap
                d[self.label_key] = torch.where(lab == a, b, torch.where(lab == b, a, lab)).to(lab.dtype)
            return d

    return RandFlipLRd


def fade_toward(x, pivot: float, factor):
    """Values above `pivot` moved toward it by `factor` (a number, or a tensor that broadcasts
    against x); the rest kept (see AugmentConfig.faint)."""
    import torch

    return torch.where(x > pivot, pivot + factor * (x - pivot), x)


def _faint_class():
    import torch
    from monai.transforms import MapTransform, RandomizableTransform

    class RandFaintd(RandomizableTransform, MapTransform):
        """Fade everything denser than `pivot` toward it by one random factor (see AugmentConfig.faint)."""

        def __init__(self, keys=("image",), prob: float = 0.5, factor_range=(0.45, 1.0), pivot: float = 0.333):
            RandomizableTransform.__init__(self, prob)
            MapTransform.__init__(self, keys)
            self.factor_range, self.pivot, self.factor = tuple(factor_range), float(pivot), 1.0

        def randomize(self, data=None):
            super().randomize(None)
            self.factor = self.R.uniform(*self.factor_range)

        def __call__(self, data):
            self.randomize()
            if not self._do_transform:
                return data
            d = dict(data)
            for k in self.keys:
                x = torch.as_tensor(d[k])
                d[k] = fade_toward(x, self.pivot, self.factor)
            return d

    return RandFaintd


def build_augmentation(cfg: AugmentConfig, dims: int, lr_swap: tuple | None = None):
    """A MONAI Compose over {"image", "label"}, or None when every probability is 0."""
    if not cfg.any():
        return None
    import monai.transforms as mt

    keys, both_modes = ("image", "label"), ("bilinear", "nearest")
    t = []
    if cfg.flip_lr:
        t.append(_flip_lr_class()(keys, prob=cfg.flip_lr, swap=lr_swap))
    if cfg.rotate:  # range_x rotates in the plane of the last two axes in 2D and about axis 0 (z) in 3D
        t.append(mt.RandRotated(keys, range_x=math.radians(cfg.rotate_degrees), prob=cfg.rotate, mode=both_modes,
                                padding_mode="border", keep_size=True))
    if cfg.scale:
        t.append(mt.RandZoomd(keys, prob=cfg.scale, min_zoom=cfg.scale_range[0], max_zoom=cfg.scale_range[1],
                              mode=("bilinear" if dims == 2 else "trilinear", "nearest"), padding_mode="edge",
                              keep_size=True))
    if cfg.translate:  # what every crop is centred on (a nodule) moves off the centre, the input size stays
        t.append(mt.RandAffined(keys, prob=cfg.translate, translate_range=(cfg.translate_px,) * dims, mode=both_modes,
                                padding_mode="reflection"))
    if cfg.elastic:
        if dims == 2:
            t.append(mt.Rand2DElasticd(keys, spacing=(cfg.elastic_spacing,) * 2,
                                       magnitude_range=tuple(cfg.elastic_magnitude), prob=cfg.elastic,
                                       mode=both_modes, padding_mode="border"))
        else:
            t.append(mt.Rand3DElasticd(keys, sigma_range=tuple(cfg.elastic_sigma_3d),
                                       magnitude_range=tuple(cfg.elastic_magnitude_3d), prob=cfg.elastic,
                                       mode=both_modes, padding_mode="border"))
    if cfg.smooth:
        s = tuple(cfg.smooth_sigma)
        t.append(mt.RandGaussianSmoothd("image", sigma_x=s, sigma_y=s, sigma_z=s, prob=cfg.smooth))
    if cfg.brightness:
        t.append(mt.RandScaleIntensityd("image", factors=cfg.brightness_factor, prob=cfg.brightness))
    if cfg.intensity_shift:
        t.append(mt.RandShiftIntensityd("image", offsets=cfg.shift, prob=cfg.intensity_shift))
    if cfg.faint:
        t.append(_faint_class()("image", prob=cfg.faint, factor_range=cfg.faint_range, pivot=cfg.faint_pivot))
    if cfg.noise:
        t.append(mt.RandGaussianNoised("image", std=cfg.noise_std, prob=cfg.noise))
    if cfg.crop:
        t.append(mt.RandSpatialCropd(keys, roi_size=tuple(int(v) for v in cfg.crop), random_size=False))
    t.append(mt.EnsureTyped(keys, track_meta=False))
    return mt.Compose(t)
