"""Dense-CRF refinement (optional: needs pydensecrf2)."""
import numpy as np
import pytest
from conftest import dice

pytest.importorskip("pydensecrf.densecrf")

from lungseg.inference.crf import dense_crf  # noqa: E402


def test_crf_pulls_a_misplaced_border_onto_the_density_edge():
    hu = np.full((2, 64, 64), 40.0, np.float32)
    hu[:, 16:48, 16:48] = -850.0  # the lung
    truth = hu < -400
    shifted = np.roll(truth, 4, axis=2)  # the network's border sits 4 pixels off
    rng = np.random.default_rng(0)
    p_lung = np.clip(np.where(shifted, 0.7, 0.3) + rng.normal(0, 0.05, truth.shape), 0.01, 0.99)
    probs = np.stack([1 - p_lung, p_lung]).astype(np.float32)
    refined = dense_crf(hu, probs, spacing_xy=(1.0, 1.0), iterations=10) == 1
    assert dice(refined, truth) > dice(shifted, truth) + 0.03


def test_crf_leaves_empty_slices_background():
    hu = np.full((1, 32, 32), 40.0, np.float32)
    probs = np.stack([np.ones_like(hu), np.zeros_like(hu)])
    assert dense_crf(hu, probs).max() == 0
