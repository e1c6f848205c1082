"""Synthetic cases from lungseg.synth, generated on first use (one seed = one "patient").

The generator is imported lazily and can be replaced (tests, other phantoms) by a callable or
a "module:function" string (usable from YAML): `generator(seed, **overrides)` returning an
object with `.ct` (CTImage) and `.labels` ((z, y, x) uint8: 0 background, 1 right lung,
2 left lung, 3 nodule).
"""
from __future__ import annotations

import functools

from ..errors import LungsegError
from .cases import Case

SYNTH_LABELS = {1: "right_lung", 2: "left_lung", 3: "nodule"}


def _resolve(generator):
    if callable(generator):
        return generator
    if isinstance(generator, str):
        import importlib

        module, _, func = generator.partition(":")
        try:
            return getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            raise LungsegError(f"cannot load synthetic generator '{generator}': {e}") from None
    try:
        from ..synth import generate_case
    except ImportError as e:
        raise LungsegError(f"synthetic data needs lungseg.synth.generate_case ({e})") from None
    return generate_case


def synthetic_cases(n_cases: int = 20, seed: int = 0, overrides: dict | None = None, generator=None,
                    cache: bool = True, nodules_as_lung: bool = False) -> list[Case]:
    """nodules_as_lung: give nodule voxels to the lung they lie in (for lung-only models, so
    tumours at the pleura count as lung, as in lungmask's R231 convention)."""
    overrides = dict(overrides or {})
    names = {1: "right_lung", 2: "left_lung"} if nodules_as_lung else SYNTH_LABELS

    def make_loader(s):
        def loader():
            gen = _resolve(generator)
            case = gen(s, **overrides)
            return case.ct.array, (case.lung_labels() if nodules_as_lung else case.labels), case.ct.spacing

        return loader

    return [Case(f"synth-{s}", f"synth-{s}", make_loader(s), names, is_hu=True, source="synthetic",
                 cache=cache, meta={"seed": s}) for s in range(seed, seed + int(n_cases))]


def synthetic_nodule_crops(n_cases: int = 60, seed: int = 1000, crop: int = 128, positives_per_case: int = 12,
                           negatives_per_case: int = 10, context: int = 0, overrides: dict | None = None,
                           generator=None, dense_negatives: float = 0.0, per_nodule: bool = False,
                           real_nodules: int = 0, real_split: str = "train", real_hu: str = "window") -> list[Case]:
    """2D crops at native thin-slice resolution (~0.7 mm pixels), like the LIDC crops, from
    synthetic chest CT in HU: crops around nodule slices (centre jittered) and crops inside the
    lungs with no nodule (vessels seen end-on, fissures, pleura: what a nodule model trained on
    nodule-centred crops alone marks on whole scans). One phantom = one patient; it is generated
    once, on first use, for all its crops. context k > 0 (for 2.5D models): each crop is a stack
    of 2k + 1 slices whose middle one is the training slice (meta "centre_only").
    dense_negatives: the share of the nodule-free crops centred on dense lung (> -300 HU inside the
    lung labels, away from nodules): with overrides effusion/consolidation, the pleural fluid and
    consolidated lung a nodule model must not call a tumour; else mostly vessels.
    per_nodule: each positive crop is centred on a nodule drawn uniformly (then on one of its
    voxels), not on a random nodule voxel: voxel draws pick a 5 mm nodule ~1/100 as often as a
    25 mm one, so the network hardly ever sees the small ones.
    real_nodules: move this many REAL LIDC nodules (>= 2 readers' consensus, their own HU; of the
    `real_split` patients of the LIDC crops' split) into each phantom's parenchyma before cutting
    (lungseg.synth.insertion.real_nodule). The LIDC crop stacks hold only their nodule's slices
    (beyond them the edge slice repeats), so a network trained on them alone never sees a small
    nodule whose neighbour slices show lung going on: what every small nodule looks like in a
    whole scan. real_hu: the crops' HU, "window" (the fixed [-1000, 400] of the shipped models) or
    "estimate" (each slice's own scale, lungseg.data.crop_hu)."""
    overrides = {"size": (512, 512, 48), "n_nodules": 8, **dict(overrides or {})}
    memo: dict[int, list] = {}

    def crops_of(s: int) -> list:
        if s not in memo:
            case = _resolve(generator)(s, **overrides)
            ct, labels = case.ct.array, case.labels
            if real_nodules:
                ct, labels = with_real_nodules(ct, labels, case.ct.spacing_zyx, int(real_nodules), s, real_split,
                                               pool=real_nodule_pool(real_split, real_hu))
            memo[s] = _cut_crops(ct, labels, crop, positives_per_case, negatives_per_case, s, context,
                                 dense_negatives, per_nodule)
        return memo[s]

    cases = []
    for s in range(seed, seed + int(n_cases)):
        for k in range(positives_per_case + negatives_per_case):
            def loader(s=s, k=k):
                return crops_of(s)[k]

            cases.append(Case(f"synth-{s}/crop-{k}", f"synth-{s}", loader, {1: "nodule"}, is_hu=True,
                              source="synthetic_nodule_crops", cache=False,
                              meta={"seed": s, "centre_only": context > 0}))
    return cases


DENSE_HU = -300.0
REAL_NODULE_MM = (3.0, 30.0)  # the sizes moved in: LUNA16's smallest counted nodule up to the crops' largest


@functools.lru_cache(maxsize=2)
def real_nodule_pool(split: str, hu: str = "window") -> tuple:
    """(hu, mask, spacing_zyx) of every LIDC crop-stack nodule of one patient split, cut to its box.
    hu: "window" ([-1000, 400], what the shipped models learnt on) or "estimate" (lungseg.data.crop_hu)."""
    import numpy as np

    from ..classification.samples import lidc_malignancy, samples_of_split
    from ..evaluation.lesions import equivalent_diameter
    from .crop_hu import crop_as_hu

    pool = []
    for s in samples_of_split(lidc_malignancy(as_hu=crop_as_hu(hu)), split):
        if REAL_NODULE_MM[0] <= equivalent_diameter(int(s.mask.sum()), s.spacing_zyx, single_slice=False) \
                <= REAL_NODULE_MM[1]:
            box = tuple(slice(max(0, int(i.min()) - 3), int(i.max()) + 4) for i in np.nonzero(s.mask))
            pool.append((s.hu[box].copy(), s.mask[box].copy(), tuple(s.spacing_zyx)))
    if not pool:
        raise LungsegError(f"no LIDC nodule of {REAL_NODULE_MM[0]:g}-{REAL_NODULE_MM[1]:g} mm in split '{split}'")
    return tuple(pool)


def with_real_nodules(ct, labels, spacing_zyx, n: int, seed: int, split: str = "train", pool=None):
    """Copies of (ct, labels) with up to n real nodules pasted into parenchyma (label 3), at least
    30 mm from each other and from the phantom's own nodules; fewer when no place is found."""
    import numpy as np

    from ..postprocess import component_voxels
    from ..synth.insertion.real_nodule import move_nodules_in

    pool = real_nodule_pool(split) if pool is None else pool
    rng = np.random.default_rng([seed, 7919])
    ct, labels = ct.astype(np.float32, copy=True), labels.copy()
    sp = np.asarray(spacing_zyx, float)
    avoid = [np.array([c.mean() for c in vox]) * sp for vox in component_voxels(labels == 3)]
    picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    for placed in move_nodules_in(ct, labels, [pool[i] for i in picks], spacing_zyx, rng, avoid):
        if placed is not None:
            labels[placed.mask] = 3  # before the next one is placed: never on top of it
    return ct, labels


def _cut_crops(ct, labels, crop: int, n_pos: int, n_neg: int, seed: int, context: int = 0,
               dense_negatives: float = 0.0, per_nodule: bool = False) -> list:
    """(image, nodule mask) (2k+1, crop, crop) stacks: n_pos around nodule pixels, n_neg in the
    lungs away from nodules (a nodule-free phantom gives lung crops only); slices beyond the
    volume repeat its edge slice, as at inference."""
    import numpy as np

    from ..postprocess import component_voxels, lung_voxels
    from .preprocess import context_indices

    rng = np.random.default_rng(seed)
    nodule = labels == 3
    lung_px, nodule_px = np.argwhere(lung_voxels(labels)), np.argwhere(nodule)
    half = crop // 2

    def cut(z, y, x):
        y0 = int(np.clip(y - half, 0, labels.shape[1] - crop))
        x0 = int(np.clip(x - half, 0, labels.shape[2] - crop))
        win = (context_indices(z, z + 1, labels.shape[0], context), slice(y0, y0 + crop), slice(x0, x0 + crop))
        return ct[win].astype(np.float32), nodule[win].astype(np.uint8)

    nodules = component_voxels(nodule) if per_nodule else []  # each nodule's voxels, raster order

    out = []
    for _ in range(n_pos):
        if len(nodule_px):
            if per_nodule:
                zs, ys, xs = nodules[rng.integers(len(nodules))]
                k = rng.integers(len(zs))
                z, y, x = zs[k], ys[k], xs[k]
            else:
                z, y, x = nodule_px[rng.integers(len(nodule_px))]
            out.append(cut(z, y + rng.integers(-half // 2, half // 2 + 1), x + rng.integers(-half // 2, half // 2 + 1)))
        else:
            out.append(cut(*lung_px[rng.integers(len(lung_px))]))
    n_dense = int(round(dense_negatives * n_neg))
    if n_dense:  # drawn after the others' draws would be: configs without it keep their crops
        dense_px = np.argwhere(lung_voxels(labels) & (ct > DENSE_HU) & ~nodule)
        n_dense = n_dense if len(dense_px) else 0

    def negative(pixels):
        candidate = cut(*pixels[rng.integers(len(pixels))])
        for _ in range(20):  # prefer crops with no nodule at all
            if not candidate[1][context].any():
                break
            candidate = cut(*pixels[rng.integers(len(pixels))])
        return candidate

    while len(out) < n_pos + n_neg - n_dense:
        out.append(negative(lung_px))
    out += [negative(dense_px) for _ in range(n_dense)]
    return out
