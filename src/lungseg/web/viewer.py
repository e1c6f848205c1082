"""Viewer data: the scan and its labels as small uint8 volumes the page slices on a canvas.

Sending whole volumes once (gzip-compressed) lets the browser change slices, planes, window and
overlay without a server round trip. A 512x512x300 scan is thinned to 256x256x300 (~20 MB of
CT, a few MB after gzip); the labels compress to almost nothing.
"""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

MAX_INPLANE = 320  # pixels per in-plane axis sent to the browser
MAX_SLICES = 400
HU_RANGE = (-1024.0, 476.0)  # covers the lung (L-600/W1500) and mediastinal (L40/W400) windows
LOW_CONFIDENCE_BIT = 4  # labels byte: bits 0-1 = label 0..3, bit 2 = low confidence

CT_FILE = "viewer_ct.u8.gz"
LABELS_FILE = "viewer_labels.u8.gz"


def steps_for(shape_zyx: tuple[int, int, int]) -> tuple[int, int, int]:
    """Integer strides per axis so the browser gets at most MAX_SLICES x MAX_INPLANE^2 voxels."""
    z, y, x = shape_zyx
    inplane = max(1, math.ceil(max(y, x) / MAX_INPLANE))
    return max(1, math.ceil(z / MAX_SLICES)), inplane, inplane


def intensity_range(array: np.ndarray, is_hu: bool) -> tuple[float, float]:
    if is_hu:
        return HU_RANGE
    lo, hi = np.percentile(array[:: max(1, array.shape[0] // 32)], [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def write_viewer_data(image, labels: np.ndarray, low_confidence: np.ndarray | None, out_dir: Path) -> dict:
    """Write the thinned CT and packed labels beside the job's results; return their description."""
    step = steps_for(labels.shape)
    thin = tuple(slice(None, None, s) for s in step)
    lo, hi = intensity_range(image.array, image.is_hu)
    ct = np.clip((image.array[thin] - lo) * (255.0 / (hi - lo)), 0, 255).round().astype(np.uint8)
    packed = (labels[thin] & 3).astype(np.uint8)
    if low_confidence is not None:
        packed |= np.where(low_confidence[thin], LOW_CONFIDENCE_BIT, 0).astype(np.uint8)
    # level 1: ~3x faster than the default for a few per cent more bytes
    for name, arr in ((CT_FILE, ct), (LABELS_FILE, packed)):
        with gzip.open(out_dir / name, "wb", compresslevel=1) as f:
            f.write(np.ascontiguousarray(arr).tobytes())
    sx, sy, sz = image.spacing
    return {
        "shape_zyx": list(ct.shape),
        "spacing_zyx_mm": [sz * step[0], sy * step[1], sx * step[2]],
        "step_zyx": list(step),
        "full_shape_zyx": list(labels.shape),
        "value_range": [lo, hi],  # uint8 v stands for lo + v * (hi - lo) / 255
        "is_hu": bool(image.is_hu),
        "is_2d": bool(image.is_2d or labels.shape[0] == 1),
        "has_low_confidence": low_confidence is not None,
        "low_confidence_bit": LOW_CONFIDENCE_BIT,
        "start_zyx": list(_start_position(packed & 3)),
    }


def _start_position(labels: np.ndarray) -> tuple[int, int, int]:
    """Open on the axial slice with the most lung, centred on the lungs (the volume centre if empty)."""
    fg = np.argwhere(labels > 0)
    if len(fg) == 0:
        return tuple(int(s // 2) for s in labels.shape)
    z = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    y, x = np.median(fg[:, 1:], axis=0).astype(int)
    return z, int(y), int(x)
