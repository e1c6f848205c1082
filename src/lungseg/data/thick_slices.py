"""Thick-slice views of thin LIDC crop stacks for 2.5D training. Most LIDC nodules come from
0.6-1.25 mm reconstructions, where a 4 mm nodule shows on 3-6 slices, but whole scans are often
2.5 mm, where it shows on one or two slices with lung above and below. A thin stack seen every
`step`-th slice (its neighbours `step` slices apart) shows the model the thick-slice look of the
same nodule: a point-sampled stack (what resampling to a thicker grid gives), or a slab average
over `step` slices (what a thicker reconstruction gives: partial volume)."""
from __future__ import annotations

import numpy as np

THICK_MM = 2.5  # the slice spacing the views imitate: the usual thick clinical reconstruction
MAX_THIN_MM = 1.5  # stacks at or under this spacing get thick views; thicker ones are left as they are


def thick_step(slice_mm: float | None) -> int:
    """Source slices per thick slice for a stack of this spacing (1: no thick view)."""
    if not slice_mm or slice_mm > MAX_THIN_MM:
        return 1
    return max(1, int(round(THICK_MM / slice_mm)))


def thick_context(image: np.ndarray, label: np.ndarray, z: int, k: int, step: int,
                  slab: bool) -> tuple[np.ndarray, np.ndarray]:
    """(slices (2k + 1, y, x), the label of the centre slice) of slice z and its k neighbours on
    either side, `step` source slices apart (clamped to the stack: the edge repeats). slab: each
    slice is the mean of the `step` source slices centred on it, and the label is the voxels
    marked on at least half of the centre's slab; else the source slices themselves."""
    depth = image.shape[0]
    centres = z + step * np.arange(-k, k + 1)
    if not slab:
        return image[np.clip(centres, 0, depth - 1)].astype(np.float32), label[z]
    offsets = np.arange(step) - (step - 1) // 2
    rows = np.clip(centres[:, None] + offsets[None, :], 0, depth - 1)  # (2k + 1, step)
    slices = image[rows].astype(np.float32).mean(axis=1)
    marked = (label[np.clip(z + offsets, 0, depth - 1)] > 0).mean(axis=0) >= 0.5
    return slices, (marked * label.max()).astype(label.dtype)  # crop stacks hold one finding value
