"""Bilinear upsampling of low-resolution class probabilities, exactly as torch's
F.interpolate(mode="bilinear", align_corners=False) computes it, and the fast way to its argmax.

A 2D lung network sees slices at 256x256; its 512x512 labels are the argmax of the bilinearly
upsampled probabilities. Wherever the (up to) four low-resolution pixels an output pixel blends
share one winning class, the blend has that winner too (a convex combination keeps it), so only
the pixels along class borders need the blend itself: ~3x less work than upsampling every
channel of every pixel, and the same labels.
"""
from __future__ import annotations

import numpy as np


def source_indices(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: the two input indices it blends and the weight of the second
    (half-pixel centres, clamped at the borders, as torch without align_corners)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    return np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)


def bilinear(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(b, K, h, w) -> (b, K, *size) float32, two separable passes."""
    y0, y1, wy = source_indices(probs.shape[-2], size[0])
    x0, x1, wx = source_indices(probs.shape[-1], size[1])
    rows = probs[..., y0, :] * (1 - wy)[:, None] + probs[..., y1, :] * wy[:, None]
    return (rows[..., x0] * (1 - wx) + rows[..., x1] * wx).astype(np.float32, copy=False)


def bilinear_argmax(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """argmax over K of bilinear(probs, size), (b, *size) uint8, without blending where the
    blended pixels agree."""
    y0, y1, wy = source_indices(probs.shape[-2], size[0])
    x0, x1, wx = source_indices(probs.shape[-1], size[1])
    low = probs.argmax(axis=1).astype(np.uint8)
    top, bottom = low[:, y0], low[:, y1]
    corners = (top[..., x0], top[..., x1], bottom[..., x0], bottom[..., x1])
    out = corners[0].copy()
    border = (corners[0] != corners[1]) | (corners[0] != corners[2]) | (corners[0] != corners[3])
    b, yy, xx = np.nonzero(border)
    if len(b):
        py, px = wy[yy][:, None], wx[xx][:, None]
        p = probs.transpose(0, 2, 3, 1)  # (b, h, w, K): gather whole probability vectors
        blend = ((p[b, y0[yy], x0[xx]] * (1 - px) + p[b, y0[yy], x1[xx]] * px) * (1 - py)
                 + (p[b, y1[yy], x0[xx]] * (1 - px) + p[b, y1[yy], x1[xx]] * px) * py)
        out[b, yy, xx] = blend.argmax(axis=1)
    return out


def nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(b, h, w) -> (b, *size), nearest neighbour."""
    return mask[:, nearest_indices(mask.shape[-2], size[0])][..., nearest_indices(mask.shape[-1], size[1])]
