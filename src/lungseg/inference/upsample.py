"""Bilinear upsampling of low-resolution class probabilities, exactly as torch's
F.interpolate(mode="bilinear", align_corners=False) computes it, and the fast way to its argmax.

A 2D lung network sees slices at 256x256; its 512x512 labels are the argmax of the bilinearly
upsampled probabilities. Wherever the (up to) four low-resolution pixels an output pixel blends
share one winning class, the blend has that winner too (a convex combination keeps it), so only
the pixels along class borders need the blend itself: several times less work than upsampling
every channel of every pixel, and the same labels.
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
    """argmax over K of bilinear(probs, size), (b, *size) uint8, blending only near class borders.

    An output pixel's nearest low-resolution pixel is one of the (up to) four it blends, and
    the others are its neighbours; so where that pixel's 3x3 neighbourhood holds one class the
    blend has that class, and elsewhere the blend is computed."""
    y0, y1, wy = source_indices(probs.shape[-2], size[0])
    x0, x1, wx = source_indices(probs.shape[-1], size[1])
    low = class_argmax(probs)
    padded = np.pad(low, ((0, 0), (1, 1), (1, 1)), mode="edge")
    mixed = np.zeros(low.shape, dtype=bool)
    h, w = low.shape[1:]
    for dy in range(3):
        for dx in range(3):
            mixed |= padded[:, dy:dy + h, dx:dx + w] != low
    out = nearest(low, size)
    b, yy, xx = _nearest_pixels_of(mixed, size)
    if len(b):
        py, px = wy[yy][:, None], wx[xx][:, None]
        p = probs.transpose(0, 2, 3, 1)  # (b, h, w, K): gather whole probability vectors
        blend = ((p[b, y0[yy], x0[xx]] * (1 - px) + p[b, y0[yy], x1[xx]] * px) * (1 - py)
                 + (p[b, y1[yy], x0[xx]] * (1 - px) + p[b, y1[yy], x1[xx]] * px) * py)
        out[b, yy, xx] = blend.argmax(axis=1)
    return out


def class_argmax(probs: np.ndarray) -> np.ndarray:
    """probs.argmax(axis=1) as uint8 (first maximum on ties), one class plane at a time:
    several times faster than numpy's argmax across the strided class axis."""
    best = probs[:, 0].copy()
    winner = np.zeros(best.shape, dtype=np.uint8)
    for k in range(1, probs.shape[1]):
        better = probs[:, k] > best
        winner[better] = k
        np.maximum(best, probs[:, k], out=best)
    return winner


def _nearest_pixels_of(mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """np.nonzero(nearest(mask, size)) in some order: the output pixels whose nearest
    low-resolution pixel is set, found from the set low-resolution pixels alone."""
    b, i, j = np.nonzero(mask)
    (ys, ny), (xs, nx) = (_nearest_runs(n, s) for n, s in zip(mask.shape[1:], size))
    count = ny[i] * nx[j]  # output pixels per low-resolution pixel
    which = np.repeat(np.arange(len(i)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)  # rank inside its block
    cols = nx[j][which]
    return b[which], ys[i][which] + k // cols, xs[j][which] + k % cols


def _nearest_runs(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """First output index and number of output indices nearest to each input index."""
    count = np.bincount(nearest_indices(n_in, n_out), minlength=n_in)
    return np.cumsum(count) - count, count


def nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(b, h, w) -> (b, *size), nearest neighbour (whole-number factors: np.repeat, faster)."""
    (h, w), (sh, sw) = mask.shape[-2:], size
    if sh % h == 0 and sw % w == 0:
        return np.repeat(np.repeat(mask, sh // h, axis=-2), sw // w, axis=-1)
    return mask[:, nearest_indices(h, sh)][..., nearest_indices(w, sw)]


def winners_at_slice_size(probs: np.ndarray, size, low_confidence: bool) -> tuple:
    """(winning class (b, *size), low-confidence map or None) from probabilities at the network's
    output size or at the slice size."""
    from ..postprocess import low_confidence_map

    if tuple(probs.shape[-2:]) == tuple(size):
        return class_argmax(probs), low_confidence_map(probs.transpose(1, 0, 2, 3)) if low_confidence else None
    low = nearest(low_confidence_map(probs.transpose(1, 0, 2, 3)), size) if low_confidence else None
    return bilinear_argmax(probs, size), low
