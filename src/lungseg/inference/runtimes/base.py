"""The one small interface every network runtime implements (torch, OpenVINO, or a user's own)."""
from __future__ import annotations

import numpy as np

from ..tta import Mirroring


class Runtime:
    """Runs a 2D segmentation network: normalised input (b, C, h, w) -> softmax probabilities
    (b, K, h, w) at the input's size, test-time mirrorings averaged.

    input_size: the fixed size the network sees (inputs are resized to it and back), or None
    for native-size input padded to what the network's strides divide (`divisibility`)."""

    name = "runtime"
    precision = "fp32"
    input_size: tuple[int, int] | None = None
    divisibility = 16

    @property
    def graph_resizes(self) -> bool:
        """True when the resizing to input_size is fixed inside the runtime (an exported graph)."""
        return False

    def probabilities(self, x: np.ndarray, mirroring: Mirroring) -> np.ndarray:
        raise NotImplementedError

    def iter_low_res(self, batches, mirroring: Mirroring):
        """(first slice, slice size (h, w), probabilities (b, K, h', w')) per (first slice, input)
        batch, at the network's own output size where the runtime has it (h', w' may differ
        from h, w; upsample.bilinear goes back), else at the slice size."""
        for start, x in batches:
            yield start, x.shape[-2:], self.probabilities(x, mirroring)

    def volume_probabilities(self, x: np.ndarray, roi, mirroring: Mirroring) -> np.ndarray:
        """3D networks: (z, y, x) input -> (K, z, y, x) probabilities (sliding window)."""
        from ...errors import LungsegError

        raise LungsegError(f"3D models do not run on {self.name} (use --runtime torch)")


def padded(shape, k: int) -> tuple[int, ...]:
    """The shape rounded up to multiples of k (what a network with stride k accepts)."""
    return tuple(int(np.ceil(s / k) * k) for s in shape)
