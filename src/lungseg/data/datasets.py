"""Datasets: cases -> network-ready samples (normalised, resized, augmented), and the builder that
turns a DataConfig into train/val datasets with a patient-level split.

Samples are dicts {"image": float (C, *spatial), "label": uint8 (1, *spatial)}. 2D models train
on axial slices of every case (SliceDataset); 3D models on whole resized volumes or random
patches (VolumeDataset). Augmentation is reseeded per (seed, epoch, index) so that a run
resumed after a kill sees exactly the samples an uninterrupted run would.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import LungsegError
from .augment import AugmentConfig, build_augmentation
from .cases import Case, canonical_name, label_lut, missing_classes
from .config import DataConfig
from .preprocess import (check_intensity, input_channels, intensity_stats, normalize_intensity,
                         resize, stack_context)
from .sources import load_source
from .splits import find_duplicates, kfold_patients, split_patients
from .stack_edges import BEYOND_STACK, context_stack
from .thick_slices import thick_context, thick_step

log = logging.getLogger("lungseg.data")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 * 104_729 + index * 104_729) % (2**32 - 1)


class _Base(torch.utils.data.Dataset):
    def __init__(self, cases, classes, intensity, augment=None, seed=0, label_maps=None):
        self.cases, self.classes = list(cases), [canonical_name(c) for c in classes]
        self.intensity = check_intensity(dict(intensity))
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.label_maps = label_maps or {}
        self._luts, self._stats = {}, {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def lut(self, case: Case) -> np.ndarray:
        key = (case.source, case.case_id)  # one source may appear twice with different label maps
        if key not in self._luts:
            self._luts[key] = label_lut(case.label_names, self.classes, self.label_maps.get(case.source))
        return self._luts[key]

    def stats(self, case: Case) -> dict | None:
        """Whole-case intensity statistics (zscore/minmax), as inference computes them."""
        key = (case.source, case.case_id)
        if key not in self._stats:
            self._stats[key] = intensity_stats(case.load()[0], self.intensity)
        return self._stats[key]

    def _finish(self, image: np.ndarray, label: np.ndarray, index: int) -> dict:
        sample = {"image": image.astype(np.float32), "label": label.astype(np.float32)}
        if self.augment is not None:
            self.augment.set_random_state(seed=sample_seed(self.seed, self.epoch, index))
            sample = self.augment(sample)
        return {"image": torch.as_tensor(sample["image"], dtype=torch.float32).contiguous(),
                "label": torch.as_tensor(sample["label"]).round().to(torch.uint8).contiguous()}


class SliceDataset(_Base):
    """Axial slices of every case, resized to `input_size` (image: bilinear/lanczos, mask: nearest).
    context_slices k > 0 (2.5D): each slice comes with its k neighbours on either side as extra
    channels; a case whose meta says "centre_only" (a short stack cut for its middle slice) gives
    only that slice. beyond_stack: the neighbours a crop stack (meta "slices": a LIDC nodule's own
    slices) lacks beyond its ends, "repeat" or "inpaint" (lungseg.data.stack_edges)."""

    def __init__(self, cases, classes, intensity, input_size=(256, 256), resize_method="bilinear", augment=None,
                 seed=0, empty_slices=1.0, label_maps=None, max_samples=None, context_slices=0,
                 beyond_stack="repeat", thick_slices=0.0):
        super().__init__(cases, classes, intensity, augment, seed, label_maps)
        self.input_size = tuple(input_size) if input_size else None
        self.resize_method = resize_method
        self.context = int(context_slices)
        self.beyond_stack = beyond_stack
        self.thick_slices = float(thick_slices)
        self.items = []
        for ci, case in enumerate(self.cases):
            _, label = case.load()
            has_fg = (self.lut(case)[label] > 0).reshape(label.shape[0], -1).any(axis=1)
            depth = label.shape[0]
            for z in ([depth // 2] if case.meta.get("centre_only") else range(depth)):
                keep = (zlib.crc32(f"{case.case_id}:{z}".encode()) % 10_000) < empty_slices * 10_000
                if has_fg[z] or keep:
                    self.items.append((ci, z))
        if max_samples and len(self.items) > max_samples:  # evenly spaced: deterministic, covers all cases
            pick = np.linspace(0, len(self.items) - 1, int(max_samples)).round().astype(int)
            self.items = [self.items[i] for i in pick]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        ci, z = self.items[index]
        case = self.cases[ci]
        image, label = case.load()
        target = label[z]
        if self.context:
            rng = np.random.default_rng(sample_seed(self.seed, self.epoch, index))
            step = thick_step(case.meta.get("slice_mm"))
            if step > 1 and self.thick_slices and rng.random() < self.thick_slices:
                chunk, target = thick_context(image, label, z, self.context, step, slab=rng.random() < 0.5)
            else:
                beyond = self.beyond_stack if "slices" in case.meta else "repeat"  # only crop stacks lack neighbours
                chunk = context_stack(image, label, z, self.context, beyond, rng)
            x = stack_context(normalize_intensity(chunk, self.intensity, case.is_hu, self.stats(case)), self.context)[0]
        else:
            x = normalize_intensity(image[z], self.intensity, case.is_hu, self.stats(case))
        y = self.lut(case)[target][None]
        if self.input_size:
            x = resize(x, self.input_size, "image", self.resize_method)
            y = resize(y, self.input_size, "mask")
        return self._finish(x, y, index)


class VolumeDataset(_Base):
    """Whole volumes (optionally resized to `input_size`), or random patches of `patch_size` for
    training (half centred on a labelled voxel, MONAI RandCropByPosNegLabeld)."""

    def __init__(self, cases, classes, intensity, input_size=None, patch_size=None, augment=None, seed=0,
                 label_maps=None, train=True, samples_per_epoch=None):
        super().__init__(cases, classes, intensity, augment, seed, label_maps)
        self.input_size = tuple(input_size) if input_size else None
        self.patch_size = tuple(patch_size) if patch_size else None
        self.train = train
        self.length = int(samples_per_epoch) if (train and samples_per_epoch) else len(self.cases)
        self._volumes: dict[int, tuple] = {}
        self._crop = None
        if self.patch_size and train:
            import monai.transforms as mt

            self._crop = mt.Compose([
                mt.SpatialPadd(("image", "label"), spatial_size=self.patch_size, mode="edge"),
                mt.RandCropByPosNegLabeld(("image", "label"), "label", spatial_size=self.patch_size, pos=1, neg=1,
                                          num_samples=1, allow_smaller=True),
            ])

    def __len__(self):
        return self.length

    def volume(self, ci: int):
        if ci not in self._volumes:
            case = self.cases[ci]
            image, label = case.load()
            x = normalize_intensity(image, self.intensity, case.is_hu)
            y = self.lut(case)[label][None]
            if self.input_size:
                x = resize(x, self.input_size, "image")
                y = resize(y, self.input_size, "mask")
            self._volumes[ci] = (x, y)
        return self._volumes[ci]

    def __getitem__(self, index):
        x, y = self.volume(index % len(self.cases))
        if self._crop is not None:
            self._crop.set_random_state(seed=sample_seed(self.seed + 1, self.epoch, index))
            out = self._crop({"image": x, "label": y})[0]
            x, y = np.asarray(out["image"]), np.asarray(out["label"])
        return self._finish(x, y, index)


@dataclass
class DataBundle:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    splits: dict  # split -> sorted patient ids
    classes: list
    in_channels: int
    duplicates: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    test_cases: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"patients": {k: len(v) for k, v in self.splits.items()}, "train_samples": len(self.train),
                "val_samples": len(self.val), "classes": self.classes, "duplicates": len(self.duplicates),
                "warnings": self.warnings}


def assign_splits(cases_by_source: list[tuple[dict, list[Case]]], cfg: DataConfig) -> dict[str, list[Case]]:
    """Patient-level split: sources with role train/val/test go there whole; the rest are split."""
    out = {"train": [], "val": [], "test": []}
    pool = []
    for entry, cases in cases_by_source:
        role = entry.get("role", "split")
        if role in out:
            out[role].extend(cases)
        elif role == "split":
            pool.extend(cases)
        else:
            raise LungsegError(f"source role must be split, train, val or test (got '{role}')")
    if pool:
        ids = [c.patient_id for c in pool]
        s = cfg.split
        parts = kfold_patients(ids, s.k_folds, s.fold, s.seed, s.test_fraction) if s.k_folds and s.k_folds > 1 \
            else split_patients(ids, tuple(s.fractions), s.seed)
        where = {p: name for name, pats in parts.items() for p in pats}
        for c in pool:
            out[where[c.patient_id]].append(c)
    return out


def build_datasets(cfg: DataConfig, augment: AugmentConfig | None = None, seed: int = 0,
                   check_duplicates: bool = True) -> DataBundle:
    classes = [canonical_name(c) for c in cfg.classes]
    if classes[0] != "background":
        raise LungsegError(f"the first class must be background, got {cfg.classes}")
    if cfg.dims not in (2, 3):
        raise LungsegError(f"data.dims must be 2 or 3, got {cfg.dims}")
    warnings, label_maps, loaded = [], {}, []
    for entry in cfg.sources:
        cases = load_source(entry)
        if not cases:
            raise LungsegError(f"data source {entry.get('type')} gave no cases")
        for c in cases:  # per-entry label overrides, keyed by a unique source tag
            c.source = f"{c.source}#{len(loaded)}"
        label_maps[cases[0].source] = entry.get("label_map")
        miss = missing_classes(cases[0].label_names, classes, entry.get("label_map"))
        if len(miss) == len(classes) - 1:
            raise LungsegError(f"source {entry['type']} has labels {sorted(set(cases[0].label_names.values()))}, "
                               f"none of the wanted classes {classes[1:]}")
        if miss:
            warnings.append(f"source {entry['type']} provides no {', '.join(miss)}")
        if any(c.meta.get("patient_unknown") for c in cases):
            warnings.append(f"source {entry['type']}: patient ids unknown, each image is its own patient "
                            "(possible leak between splits)")
        loaded.append((entry, cases))
    split_cases = assign_splits(loaded, cfg)
    if not split_cases["train"] or not split_cases["val"]:
        raise LungsegError(f"need at least one training and one validation patient; got "
                           f"{ {k: len({c.patient_id for c in v}) for k, v in split_cases.items()} } "
                           "(add patients, change split fractions or give a source role: val)")
    duplicates = find_duplicates(split_cases) if check_duplicates else []
    for d in duplicates:
        if d["cross_split"]:
            warnings.append(f"duplicate image across splits: {d['occurrences'][:3]}")
    for w in warnings:
        log.warning(w)
    lr_swap = (classes.index("right_lung"), classes.index("left_lung")) \
        if {"right_lung", "left_lung"} <= set(classes) else None
    aug = build_augmentation(augment, cfg.dims, lr_swap) if augment is not None else None
    common = dict(classes=classes, intensity=cfg.intensity, label_maps=label_maps)
    if cfg.context_slices and cfg.dims != 2:
        raise LungsegError("data.context_slices (2.5D input) is for 2D models only")
    if cfg.beyond_stack not in BEYOND_STACK:
        raise LungsegError(f"data.beyond_stack must be one of {', '.join(BEYOND_STACK)}, got {cfg.beyond_stack!r}")
    if not 0.0 <= cfg.thick_slices <= 1.0:
        raise LungsegError(f"data.thick_slices is a share of samples in 0..1, got {cfg.thick_slices!r}")
    if cfg.dims == 2:
        common.update(input_size=cfg.input_size, resize_method=cfg.resize_method, seed=seed,
                      empty_slices=cfg.empty_slices, context_slices=cfg.context_slices)
        train = SliceDataset(split_cases["train"], augment=aug, beyond_stack=cfg.beyond_stack,
                             thick_slices=cfg.thick_slices, **common)
        val = SliceDataset(split_cases["val"], max_samples=cfg.val_samples, **common)
    else:
        train = VolumeDataset(split_cases["train"], input_size=cfg.input_size, patch_size=cfg.patch_size,
                              augment=aug, seed=seed, train=True, samples_per_epoch=cfg.samples_per_epoch, **common)
        val = VolumeDataset(split_cases["val"], input_size=cfg.input_size, patch_size=cfg.patch_size, seed=seed,
                            train=False, **common)
    if len(train) == 0 or len(val) == 0:
        raise LungsegError(f"no samples: {len(train)} training, {len(val)} validation")
    splits = {k: sorted({c.patient_id for c in v}) for k, v in split_cases.items()}
    channels = input_channels({"intensity": cfg.intensity, "context_slices": cfg.context_slices})
    return DataBundle(train, val, splits, classes, channels, duplicates, warnings,
                      split_cases["test"])
