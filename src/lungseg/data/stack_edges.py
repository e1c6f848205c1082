"""What a 2.5D model sees beyond a short stack. A LIDC crop stack holds only its nodule's own
slices, so the neighbours of its first and last slice are missing; repeating the edge slice
there shows the nodule going on above and below it, as a vessel would, while in a whole scan a
small nodule ends within a slice or two and the lung around it goes on. "inpaint" gives the
missing neighbours the edge slice with its labelled finding filled in with the lung around it:
the vessels and walls go on, the nodule has ended (the readers marked every slice it shows on)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .preprocess import context_indices

BEYOND_STACK = ("repeat", "inpaint")
LUNG_MAX_HU = -400.0  # ring pixels darker than this are the lung that fills the finding's place


def inpaint_finding(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                    grow_px: int = 2, ring_px: int = 5) -> np.ndarray:
    """A copy of the 2D slice `image` (HU) whose `mask` (grown by grow_px) holds the lung of the
    ring around it: its median, with its (robust) spread as noise. Unchanged without a mask."""
    if not mask.any():
        return image
    inner = ndi.binary_dilation(mask, iterations=grow_px)
    ring = ndi.binary_dilation(inner, iterations=ring_px) & ~inner
    lung = image[ring & (image < LUNG_MAX_HU)]
    centre = float(np.median(lung)) if lung.size >= 8 else -850.0
    # the lung's own noise: a robust spread (small vessels in the ring would inflate the std)
    spread = min(1.4826 * float(np.median(np.abs(lung - centre))), 40.0) if lung.size >= 8 else 20.0
    out = image.astype(np.float32, copy=True)
    out[inner] = centre + rng.normal(0.0, spread, int(inner.sum()))
    return out


def context_stack(image: np.ndarray, label: np.ndarray, z: int, k: int, beyond: str,
                  rng: np.random.Generator) -> np.ndarray:
    """Slices z-k .. z+k of a stack (2k + 1, y, x); neighbours beyond its ends repeat the edge
    slice ("repeat") or its inpainted copy ("inpaint", see the module note)."""
    depth = image.shape[0]
    out = image[context_indices(z, z + 1, depth, k)]
    if beyond == "inpaint":
        out = out.astype(np.float32)  # a copy: the inpainted slices replace the repeated ones
        wanted = np.arange(z - k, z + k + 1)
        marked = np.nonzero(label.reshape(depth, -1).any(axis=1))[0]
        for j in np.nonzero((wanted < 0) | (wanted >= depth))[0]:
            edge = 0 if wanted[j] < 0 else depth - 1
            if len(marked):  # an edge slice outside the consensus still shows some of the nodule:
                nearest = marked[np.abs(marked - edge).argmin()]  # the nearest marked slice bounds it
                out[j] = inpaint_finding(image[edge], label[nearest] > 0, rng)
    return out
