"""Hounsfield units back from the LIDC crop PNGs. Each crop slice was scaled from its own HU range
to 0..255 (its darkest pixel is 0, its brightest 255): matched against the real LIDC-IDRI-0003
series, its four nodules' 30 crop slices follow HU = min + v * scale to within 2-3 HU, with min
-941..-1021 HU and scale 6.8-12.6 HU per grey level (the brightest pixel, bone or calcium, at
714-1863 HU). One fixed window cannot undo that: [-1000, 400] (the mapping used until this was
found) makes a +40 HU solid nodule about -280 HU on most crops.

The estimate: min = -1000 HU (the darkest lung or airway pixel), and the scale from the tissue of
the slice, the pixels above its Otsu threshold (chest wall, mediastinum, vessels, the nodule),
whose median (the brightest 2 % left out: bone) is taken as -50 HU, provided the darker pixels
then read as aerated lung. On the 30 slices of LIDC-IDRI-0003 the scale comes out within 8 %
(mean -2 %), against up to 38 % for the best single window. A slice with too little tissue
(< 10 %) or an implausible scale takes its stack's median scale (or the crops' typical one)."""
from __future__ import annotations

import numpy as np

from ..errors import LungsegError

# how a caller names the crops' HU -> lidc_crops' as_hu: the fixed window the shipped models learnt
# on (the recorded figures), or each slice's own estimated scale (this module)
CROP_HU = {"window": (-1000.0, 400.0), "estimate": "estimate"}
AIR_HU = -1000.0
TISSUE_MEDIAN_HU = -50.0
MIN_TISSUE_SHARE = 0.1
SCALE_RANGE = (4.0, 14.0)  # HU per grey level: the brightest pixel between ~0 and ~2570 HU
LUNG_HU_RANGE = (-960.0, -650.0)  # the dark class's median must read as aerated lung
TYPICAL_SCALE = 7.8  # the median estimate over the LIDC crop slices (brightest pixel ~990 HU)


def slice_scale(display: np.ndarray) -> float | None:
    """HU per grey level of one 0..255 crop slice, or None where its tissue cannot tell."""
    from skimage.filters import threshold_otsu

    v = np.asarray(display, dtype=np.float32)
    if v.max() <= v.min():
        return None
    threshold = threshold_otsu(v)
    tissue, lung = v[v > threshold], v[v <= threshold]
    if tissue.size < MIN_TISSUE_SHARE * v.size:
        return None
    tissue = tissue[tissue <= np.percentile(tissue, 98)]
    median = float(np.median(tissue))
    scale = (TISSUE_MEDIAN_HU - AIR_HU) / median if median > 0 else None
    if scale is None or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None
    # the dark class must then read as aerated lung: else the slice holds no tissue to go by
    lung_hu = AIR_HU + float(np.median(lung)) * scale
    return scale if LUNG_HU_RANGE[0] <= lung_hu <= LUNG_HU_RANGE[1] else None


def crop_stack_hu(display: np.ndarray) -> np.ndarray:
    """(z, y, x) 0..255 crop slices -> float32 HU, each slice with its own estimated scale."""
    display = np.asarray(display, dtype=np.float32)
    scales = [slice_scale(s) for s in display]
    known = [s for s in scales if s is not None]
    fallback = float(np.median(known)) if known else TYPICAL_SCALE
    scale = np.array([fallback if s is None else s for s in scales], dtype=np.float32)
    return (AIR_HU + display * scale[:, None, None]).astype(np.float32)


def crop_as_hu(name: str):
    """lidc_crops' as_hu for "window" or "estimate" (CROP_HU)."""
    if name not in CROP_HU:
        raise LungsegError(f"crop HU must be one of {', '.join(CROP_HU)}, got {name!r}")
    return CROP_HU[name]
