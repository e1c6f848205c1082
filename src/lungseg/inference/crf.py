"""Optional dense-CRF refinement of a network's probabilities (as in the Attention U-Net paper):
a fully connected CRF per axial slice (Kraehenbuehl & Koltun) whose pairwise terms pull voxels
of similar density and position to the same class, tightening borders along the pleura.

Needs `pip install pydensecrf2` (optional extra `lungseg[crf]`; it builds from source). Slow on
CPU (about 0.1 s per 512x512 slice), so it runs on the slices and box that hold structure only.
"""
from __future__ import annotations

import numpy as np

from ..errors import LungsegError
from ..postprocess import foreground_box

LUNG_WINDOW = (-1000.0, 200.0)  # HU mapped to the 0..255 "colour" the bilateral term compares


def crf_available() -> bool:
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return False
    return True


def dense_crf(ct_array: np.ndarray, probabilities: np.ndarray, spacing_xy=(1.0, 1.0), iterations: int = 5,
              smooth_mm: float = 3.0, bilateral_mm: float = 10.0, bilateral_hu: float = 60.0,
              min_probability: float = 0.05) -> np.ndarray:
    """(z, y, x) HU + (K, z, y, x) probabilities -> (z, y, x) refined class indices.
    Slices and pixels where no foreground class reaches `min_probability` stay background."""
    if not crf_available():
        raise LungsegError("dense-CRF refinement needs the pydensecrf2 package: pip install pydensecrf2")
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    k = probabilities.shape[0]
    winner = probabilities.argmax(axis=0).astype(np.uint8)
    foreground = probabilities[1:].max(axis=0) >= min_probability
    if not foreground.any():
        return winner
    box = foreground_box(foreground, margin=4)
    lo, hi = LUNG_WINDOW
    grey = np.clip((ct_array - lo) / (hi - lo) * 255.0, 0, 255)
    px = float(np.mean(spacing_xy))
    for z in range(box[0].start, box[0].stop):
        sl = (z, box[1], box[2])
        if not foreground[sl].any():
            continue
        p = np.clip(probabilities[(slice(None),) + sl].astype(np.float32), 1e-6, 1.0)
        h, w = p.shape[1:]
        model = dcrf.DenseCRF2D(w, h, k)
        model.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(p)))
        model.addPairwiseGaussian(sxy=smooth_mm / px, compat=3)
        image = np.ascontiguousarray(np.repeat(grey[sl][..., None], 3, axis=2).astype(np.uint8))
        model.addPairwiseBilateral(sxy=bilateral_mm / px, srgb=bilateral_hu * 255.0 / (hi - lo), rgbim=image,
                                   compat=5)
        q = np.array(model.inference(iterations)).reshape(k, h, w)
        winner[sl] = q.argmax(axis=0)
    return winner

