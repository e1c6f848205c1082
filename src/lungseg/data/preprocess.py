"""Intensity normalisation and resizing shared by training and inference.

An intensity spec is a small dict stored in every checkpoint, so inference normalises exactly as
training did:
  {"mode": "window", "windows": ["lung"]}        HU -> [0, 1] per window, one channel per window
  {"mode": "window", "level": -600, "width": 1500}
  {"mode": "clip", "min": -1000, "max": 400}     HU clipped then scaled to [0, 1]
  {"mode": "zscore"}                             per image: (x - mean) / std
  {"mode": "minmax"}                             per image: 1st..99th percentile -> [0, 1]
"Per image" means per case: the statistics of a whole volume (intensity_stats), so a 2D model
trained on slices and run on a volume sees the same values in training and inference.
  {"mode": "none"}                               values used as they are
Window and clip need HU input; the others suit "image mode" data (PNG, normalised sets).
"""
from __future__ import annotations

import numpy as np

from ..errors import NotHUError, LungsegError

WINDOWS = {  # name -> (level, width) in HU
    "lung": (-600.0, 1500.0),
    "body": (40.0, 400.0),
    "mediastinum": (40.0, 400.0),
    "clip": (-300.0, 1400.0),  # the literature's clip [-1000, 400] as a window
}
HU_MODES = ("window", "clip")
MODES = ("window", "clip", "zscore", "minmax", "none")


def window(array: np.ndarray, level: float, width: float, out: np.ndarray | None = None) -> np.ndarray:
    """HU -> 0..1 through a display window; in place into `out` (no temporaries: it runs on
    every slice of every scan)."""
    out = np.subtract(array, np.float32(level - width / 2.0), out=out, dtype=np.float32)
    np.divide(out, np.float32(width), out=out)
    return np.clip(out, 0.0, 1.0, out=out)


STATS_SAMPLE = 2_000_000  # voxels used for statistics (a fixed stride, so results are reproducible)


def intensity_stats(array: np.ndarray, spec: dict) -> dict | None:
    """Per-case statistics that zscore/minmax need (None for the fixed windows)."""
    mode = spec.get("mode", "window")
    if mode not in ("zscore", "minmax"):
        return None
    flat = np.asarray(array, dtype=np.float32).ravel()
    flat = flat[:: max(1, flat.size // STATS_SAMPLE)]
    if mode == "zscore":
        return {"mean": float(flat.mean()), "std": float(flat.std())}
    lo, hi = np.percentile(flat, [1.0, 99.0])
    return {"lo": float(lo), "hi": float(hi)}


def zscore(array: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((array - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def minmax(array: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((array - lo) / max(hi - lo, 1e-6), 0.0, 1.0).astype(np.float32)


def num_channels(spec: dict) -> int:
    return len(spec.get("windows", [None])) if spec.get("mode") == "window" else 1


def input_channels(preprocessing: dict) -> int:
    """Network input channels: one per window, times the slices a 2.5D model sees."""
    return num_channels(preprocessing.get("intensity", {})) * (2 * int(preprocessing.get("context_slices", 0)) + 1)


def context_indices(start: int, stop: int, depth: int, k: int) -> np.ndarray:
    """Slice indices start-k .. stop+k-1, clamped to the volume (edge slices repeat)."""
    return np.clip(np.arange(start - k, stop + k), 0, depth - 1)


def stack_context(normalised: np.ndarray, k: int) -> np.ndarray:
    """(C, n + 2k, y, x) normalised slices -> (n, C * (2k + 1), y, x): each slice with its k
    neighbours on either side as extra channels (window-major, then z), the 2.5D input."""
    c, m = normalised.shape[:2]
    n = m - 2 * k
    out = np.empty((n, c, 2 * k + 1) + normalised.shape[2:], dtype=normalised.dtype)
    for j in range(2 * k + 1):
        out[:, :, j] = normalised[:, j:j + n].transpose(1, 0, 2, 3)
    return out.reshape((n, c * (2 * k + 1)) + normalised.shape[2:])


def check_intensity(spec: dict) -> dict:
    mode = spec.get("mode", "window")
    if mode not in MODES:
        raise LungsegError(f"unknown intensity mode '{mode}' (use one of {', '.join(MODES)})")
    for name in spec.get("windows", []):
        if name not in WINDOWS:
            raise LungsegError(f"unknown window '{name}' (use one of {', '.join(WINDOWS)})")
    return {"mode": mode, **spec}


def normalize_intensity(array: np.ndarray, spec: dict, is_hu: bool = True, stats: dict | None = None,
                        batch_first: bool = False) -> np.ndarray:
    """(z, y, x) or (y, x) array -> (C, ...) float32 network input (C = number of windows);
    batch_first: (z, y, x) -> (z, C, y, x), a batch of slices as a 2D network takes it (written
    in that layout directly: no transposed copy of every scan).

    `stats` (from intensity_stats of the whole case) lets a slice be normalised like its volume;
    without it they are computed from `array` itself."""
    if batch_first:
        return _normalize_batch_first(array, spec, is_hu, stats)
    spec = check_intensity(spec)
    mode = spec["mode"]
    array = np.asarray(array, dtype=np.float32)
    if mode in HU_MODES and not is_hu:
        raise NotHUError(f"intensity mode '{mode}' needs CT in Hounsfield units, but this image is not HU "
                         "(use mode zscore/minmax/none for image-mode data)")
    if mode == "window":
        pairs = _window_pairs(spec)
        out = np.empty((len(pairs),) + array.shape, dtype=np.float32)
        for channel, (lv, wd) in zip(out, pairs):
            window(array, lv, wd, out=channel)
        return out
    if mode == "clip":
        lo, hi = float(spec.get("min", -1000.0)), float(spec.get("max", 400.0))
        return ((np.clip(array, lo, hi) - lo) / (hi - lo))[None].astype(np.float32)
    if mode in ("zscore", "minmax"):
        stats = stats or intensity_stats(array, spec)
        return (zscore(array, **stats) if mode == "zscore" else minmax(array, **stats))[None]
    return array[None]


def _window_pairs(spec: dict) -> list[tuple[float, float]]:
    """(level, width) of each channel of a window spec."""
    if "level" in spec:
        return [(float(spec["level"]), float(spec["width"]))]
    return [WINDOWS[w] for w in spec.get("windows", ["lung"])]


def _normalize_batch_first(array, spec, is_hu, stats) -> np.ndarray:
    spec = check_intensity(spec)
    if spec["mode"] != "window" or not is_hu:  # one channel, or the error message: the general path
        return np.moveaxis(normalize_intensity(array, spec, is_hu, stats), 0, 1)
    pairs = _window_pairs(spec)
    out = np.empty((array.shape[0], len(pairs)) + array.shape[1:], dtype=np.float32)
    for channel, (lv, wd) in enumerate(pairs):
        window(array, lv, wd, out=out[:, channel])
    return out


def resize(array: np.ndarray, size, kind: str = "image", method: str = "bilinear") -> np.ndarray:
    """Resize the trailing spatial axes of a (C, *spatial) array to `size`.

    Images: bilinear/trilinear (torch) or lanczos (PIL, 2D only); masks: nearest neighbour, so
    label values are never blended."""
    size = tuple(int(s) for s in size)
    spatial = array.shape[1:]
    if tuple(spatial) == size:
        return array
    if kind == "image" and method == "lanczos":
        if len(size) != 2:
            raise LungsegError("lanczos resizing is 2D only; use bilinear for volumes")
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize(
            (size[1], size[0]), Image.Resampling.LANCZOS)) for c in array]).astype(np.float32)
    import torch
    import torch.nn.functional as F

    t = torch.tensor(np.asarray(array, dtype=np.float32))[None]  # a copy: inputs may be read-only
    if kind == "mask":
        out = F.interpolate(t, size=size, mode="nearest-exact")
        return out[0].numpy().astype(array.dtype)
    if method not in ("bilinear", "linear", "trilinear"):
        raise LungsegError(f"unknown resize method '{method}' (use bilinear or lanczos)")
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return F.interpolate(t, size=size, mode=mode, align_corners=False)[0].numpy()
