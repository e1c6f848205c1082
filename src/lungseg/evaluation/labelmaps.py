"""Label-map specs: how a reference's (or prediction's) own label values become canonical codes.

References follow many conventions, so `lungseg evaluate --ref-map SPEC` says how to read them.
SPEC is a preset name or comma-separated RULE:CLASS pairs:

    presets   labels  (default) 1:right,2:left,3:nodule   - lungseg / lungmask output
              binary  >0:both         any non-zero voxel is lung (side unknown)
              imlab   >127.5:both     imlab3d soft 0..255 lung masks
              nodule  >0:nodule       nodule-only masks (LIDC slices, MSD patches)
              cip     CIP ChestConventions codes: region = value & 0xFF; regions 2,4,5,6,12,13,14
                      right, 3,7,8,9,10,11 left, 1 (WholeLung) lung; airway/vessel types keep
                      their region; region 0 (e.g. trachea) is background
    RULE      7 | 2-14 (inclusive range) | >127.5 | >=0.5 | * (every other non-zero value)
    CLASS     right | left | both (lung, side unknown) | nodule | background

A value no rule covers is an error (it names the values), unless the spec has a threshold rule,
in which case everything not above the threshold is background. The classes a spec provides
decide what can be scored: a "both"-only reference scores both_lungs, never right/left.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import LungsegError
from .classes import BACKGROUND, LEFT, LUNG, NODULE, RIGHT

CLASS_CODE_BY_NAME = {"right": RIGHT, "left": LEFT, "both": LUNG, "lung": LUNG, "nodule": NODULE,
                      "background": BACKGROUND, "bg": BACKGROUND}
PRESETS = {
    "labels": "1:right,2:left,3:nodule",
    "binary": ">0:both",
    "imlab": ">127.5:both",
    "nodule": ">0:nodule",
}
CIP_RIGHT_REGIONS = (2, 4, 5, 6, 12, 13, 14)
CIP_LEFT_REGIONS = (3, 7, 8, 9, 10, 11)
CIP_WHOLE_LUNG = 1
_RULE = re.compile(r"^(?:(?P<star>\*)|(?P<op>>=|>)(?P<thr>-?\d+(?:\.\d+)?)|(?P<lo>-?\d+)(?:-(?P<hi>\d+))?)$")


@dataclass(frozen=True)
class Rule:
    kind: str  # "value", "range", "threshold", "rest", "cip"
    code: int
    lo: float = 0.0
    hi: float = 0.0
    inclusive: bool = False  # for thresholds: >= instead of >

    def match(self, arr: np.ndarray) -> np.ndarray:
        if self.kind == "value":
            return arr == self.lo
        if self.kind == "range":
            return (arr >= self.lo) & (arr <= self.hi)
        if self.kind == "threshold":
            return arr >= self.lo if self.inclusive else arr > self.lo
        return arr != 0  # "rest": every non-zero value not matched before


@dataclass(frozen=True)
class LabelMap:
    spec: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    cip: bool = False

    @property
    def codes(self) -> set[int]:
        if self.cip:
            return {RIGHT, LEFT, LUNG}
        return {r.code for r in self.rules} - {BACKGROUND}

    @property
    def provides(self) -> set[str]:
        """Evaluation classes this convention can be scored on."""
        codes, out = self.codes, set()
        if RIGHT in codes and LEFT in codes:
            out |= {"right_lung", "left_lung"}
        if (RIGHT in codes and LEFT in codes) or LUNG in codes:
            out.add("both_lungs")
        if NODULE in codes:
            out.add("nodule")
        return out

    @property
    def binarising(self) -> bool:
        return any(r.kind == "threshold" for r in self.rules)

    def apply(self, arr: np.ndarray, what: str = "reference", case: str = "") -> np.ndarray:
        """Canonical uint8 codes of a raw label array; unknown values are an error naming them."""
        arr = np.asarray(arr)
        if self.cip:
            return _apply_cip(arr, what, case)
        out = np.zeros(arr.shape, np.uint8)
        matched = np.zeros(arr.shape, bool) if self.binarising else (arr == 0)
        for rule in self.rules:
            m = rule.match(arr) & ~matched
            out[m] = rule.code
            matched |= m
        if not self.binarising and not matched.all():
            values = np.unique(arr[~matched])
            shown = ", ".join(f"{v:g}" for v in values[:8]) + (" ..." if len(values) > 8 else "")
            flag = "--ref-map" if what == "reference" else "--pred-map"
            raise LungsegError(f"{what} '{case}' has label values {{{shown}}} that the label map '{self.spec}' does "
                               f"not cover; pass {flag} (e.g. binary, imlab, nodule, cip or '255:both')")
        return out


def _apply_cip(arr: np.ndarray, what: str, case: str) -> np.ndarray:
    if np.any(arr != np.round(arr)) or arr.min() < 0:
        raise LungsegError(f"{what} '{case}' is not a CIP label map (non-integer or negative values)")
    region = arr.astype(np.int64) & 0xFF
    out = np.zeros(arr.shape, np.uint8)
    out[np.isin(region, CIP_RIGHT_REGIONS)] = RIGHT
    out[np.isin(region, CIP_LEFT_REGIONS)] = LEFT
    whole = region == CIP_WHOLE_LUNG
    if whole.any():
        raise LungsegError(f"{what} '{case}' uses the CIP WholeLung region (no left/right); "
                           "use --ref-map binary to score both lungs only")
    return out


def parse_label_map(spec: "str | LabelMap | None") -> LabelMap:
    """A LabelMap from a preset name or a RULE:CLASS list (see the module docstring)."""
    if isinstance(spec, LabelMap):
        return spec
    spec = (spec or "labels").strip()
    if spec.lower() == "cip":
        return LabelMap("cip", cip=True)
    text = PRESETS.get(spec.lower(), spec)
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, cls = part.rpartition(":")
        if not sep or cls.strip().lower() not in CLASS_CODE_BY_NAME:
            raise LungsegError(f"bad label-map rule '{part}' in '{spec}': expected VALUE:CLASS with CLASS one of "
                               f"right, left, both, nodule, background (or a preset: {', '.join([*PRESETS, 'cip'])})")
        rules.append(_parse_rule(key.strip(), CLASS_CODE_BY_NAME[cls.strip().lower()], spec))
    if not rules:
        raise LungsegError(f"empty label map '{spec}'")
    rules.sort(key=lambda r: r.kind == "rest")  # '*' only catches what the other rules leave
    return LabelMap(spec, tuple(rules))


def _parse_rule(key: str, code: int, spec: str) -> Rule:
    m = _RULE.match(key)
    if not m:
        raise LungsegError(f"bad label-map value '{key}' in '{spec}': use 7, 2-14, >127.5, >=0.5 or *")
    if m["star"]:
        return Rule("rest", code)
    if m["op"]:
        return Rule("threshold", code, lo=float(m["thr"]), inclusive=m["op"] == ">=")
    if m["hi"] is not None:
        return Rule("range", code, lo=float(m["lo"]), hi=float(m["hi"]))
    return Rule("value", code, lo=float(m["lo"]))
