"""The classifier's view of one nodule: a 2.5D patch at fixed physical size, built the same way
from a 128x128 LIDC crop stack and from a whole scan, so a model trained on one runs on the other.

Channels: three axial slices (at -SLICE_MM, 0, +SLICE_MM from the slice where the nodule is
largest; clamped to the nodule's own slices, since the LIDC crop stacks hold only those) in the
lung window scaled to 0..1, and the nodule mask on the centre slice. In-plane the patch is
PATCH pixels of PIXEL_MM, centred on the mask, so a 30 mm nodule fits with its margin."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

PATCH = 64
PIXEL_MM = 0.75  # 48 mm field of view
SLICE_MM = 2.0
CHANNELS = 4
WINDOW_HU = (-1000.0, 400.0)  # the LIDC crops' display window (lungseg.data.shared_sets.lidc_crops as_hu)


def nodule_extent(mask: np.ndarray) -> tuple[int, int, int]:
    """(first slice, last slice, centre slice): the centre is where the mask is largest."""
    areas = mask.reshape(mask.shape[0], -1).sum(1)
    present = np.nonzero(areas)[0]
    if not len(present):
        raise ValueError("empty nodule mask")
    return int(present[0]), int(present[-1]), int(np.argmax(areas))


def nodule_patch(hu: np.ndarray, mask: np.ndarray, spacing_zyx, centre_slice: int | None = None,
                 shift_px=(0.0, 0.0)) -> np.ndarray:
    """(CHANNELS, PATCH, PATCH) float32 from a HU volume (z, y, x) and the nodule's mask on it.

    centre_slice overrides the largest slice (training picks nearby slices as augmentation);
    shift_px moves the patch centre (augmentation)."""
    mask = np.asarray(mask, bool)
    first, last, largest = nodule_extent(mask)
    z0 = largest if centre_slice is None else int(np.clip(centre_slice, first, last))
    cy, cx = ndimage.center_of_mass(mask[z0])
    sz, sy, sx = (float(s) for s in spacing_zyx)
    offsets = (np.arange(PATCH) - (PATCH - 1) / 2.0) * PIXEL_MM
    yy, xx = np.meshgrid(cy + shift_px[0] + offsets / sy, cx + shift_px[1] + offsets / sx, indexing="ij")
    out = np.empty((CHANNELS, PATCH, PATCH), np.float32)
    step = max(1, int(round(SLICE_MM / sz)))
    for c, dz in enumerate((-step, 0, step)):
        z = int(np.clip(z0 + dz, first, last))
        plane = ndimage.map_coordinates(np.asarray(hu[z], np.float32), [yy, xx], order=1, cval=WINDOW_HU[0])
        out[c] = (np.clip(plane, *WINDOW_HU) - WINDOW_HU[0]) / (WINDOW_HU[1] - WINDOW_HU[0])
    out[3] = ndimage.map_coordinates(mask[z0].astype(np.float32), [yy, xx], order=1, cval=0.0) >= 0.5
    return out


def crop_around(volume_shape, mask_coords: np.ndarray, spacing_zyx, margin_mm: float = 40.0):
    """Slices of a whole scan holding a nodule (its voxel coords, (3, n)) and margin_mm in-plane,
    so the patch is built from a small box, not the whole CT."""
    lo, hi = mask_coords.min(1), mask_coords.max(1)
    pad = [0] + [int(np.ceil(margin_mm / s)) for s in spacing_zyx[1:]]
    return tuple(slice(max(0, int(a) - p), min(n, int(b) + p + 1)) for a, b, p, n in zip(lo, hi, pad, volume_shape))
