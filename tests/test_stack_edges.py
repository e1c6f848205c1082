"""Training input beyond a crop stack's ends: the nodule ends there, the vessels go on."""
import numpy as np
import pytest

from lungseg.data.stack_edges import context_stack, inpaint_finding


def _stack():
    """3 slices of lung (-850 HU, noise 15) with a 10-px nodule (40 HU) on the middle one only
    marked and a vessel (a bright row) on all of them; the nodule shows faintly on the first."""
    rng = np.random.default_rng(0)
    image = (-850 + rng.normal(0, 15, (3, 64, 64))).astype(np.float32)
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 32) ** 2 + (xx - 32) ** 2 <= 25
    image[:, 10, :] = 40.0  # the vessel
    image[1][disc] = 40.0
    image[0][(yy - 32) ** 2 + (xx - 32) ** 2 <= 9] = -300.0  # the nodule's cap, outside the consensus
    label = np.zeros(image.shape, np.uint8)
    label[1][disc] = 1
    return image, label, disc


def test_inpaint_fills_the_finding_with_the_lung_around_it():
    image, label, disc = _stack()
    out = inpaint_finding(image[1], label[1] > 0, np.random.default_rng(1))
    assert abs(float(out[disc].mean()) + 850) < 10 and 5 < float(out[disc].std()) < 30
    assert np.array_equal(out[10], image[1][10])  # the vessel row is untouched
    assert np.array_equal(inpaint_finding(image[1], np.zeros((64, 64), bool), np.random.default_rng(1)), image[1])


@pytest.mark.parametrize("beyond", ["repeat", "inpaint"])
def test_context_beyond_the_stack_repeats_or_inpaints_the_edge_slice(beyond):
    image, label, disc = _stack()
    ctx = context_stack(image, label, 0, 2, beyond, np.random.default_rng(2))
    assert ctx.shape == (5, 64, 64)
    assert np.array_equal(ctx[2:], image)  # the stack's own slices as they are
    assert (ctx[:2, 10] == 40.0).all()  # the vessel goes on beyond the stack either way
    cap = image[0][32, 32]
    if beyond == "repeat":
        assert (ctx[:2, 32, 32] == cap).all()
    else:  # the cap (inside the nearest marked slice's nodule) is gone: lung instead
        assert (ctx[:2, 32, 32] < -700).all()
