"""Synthetic cases from lungseg.synth, generated on first use (one seed = one "patient").

The generator is imported lazily and can be replaced (tests, other phantoms) by a callable or
a "module:function" string (usable from YAML): `generator(seed, **overrides)` returning an
object with `.ct` (CTImage) and `.labels` ((z, y, x) uint8: 0 background, 1 right lung,
2 left lung, 3 nodule).
"""
from __future__ import annotations

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
