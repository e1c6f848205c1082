"""Upsampling of low-resolution probabilities: torch's bilinear, and its argmax the fast way."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lungseg.inference.upsample import bilinear, bilinear_argmax, nearest


def _probs(shape=(3, 3, 40, 36), seed=0):
    logits = np.random.default_rng(seed).normal(0, 3, shape).astype(np.float32)
    logits = F.avg_pool2d(torch.from_numpy(logits), 5, 1, 2).numpy() * 4  # smooth regions, like a network's
    return torch.softmax(torch.from_numpy(logits), 1).numpy()


@pytest.mark.parametrize("size", [(80, 72), (100, 53), (40, 36), (512, 512)])
def test_bilinear_equals_torch(size):
    p = _probs()
    ref = F.interpolate(torch.from_numpy(p), size=size, mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(bilinear(p, size), ref, atol=1e-5)  # float32 rounding of the scale


@pytest.mark.parametrize("size", [(80, 72), (100, 53), (512, 512)])
def test_argmax_of_the_blend_without_blending_everywhere(size):
    p = _probs()
    ref = F.interpolate(torch.from_numpy(p), size=size, mode="bilinear", align_corners=False).argmax(1).numpy()
    out = bilinear_argmax(p, size)
    assert out.shape == ref.shape and out.dtype == np.uint8
    assert (out != ref).mean() < 1e-4  # float rounding at exact ties only


@pytest.mark.parametrize("where", ["inside", "at_the_border", "nowhere"])
@pytest.mark.parametrize("size", [(80, 72), (100, 53)])
def test_argmax_when_the_classes_fill_only_part_of_the_slice(where, size):
    """The blend is computed only on the box of the non-background classes: the same labels as
    torch's argmax everywhere, a box that touches the slice's edge and an empty slice included."""
    p = _probs()
    region = np.zeros(p.shape[-2:], bool)
    if where == "inside":
        region[12:25, 9:20] = True
    elif where == "at_the_border":
        region[30:, :7] = True
    p[:, 0][:, ~region] += 5.0  # class 0 wins outside the region
    p /= p.sum(axis=1, keepdims=True)
    ref = F.interpolate(torch.from_numpy(p), size=size, mode="bilinear", align_corners=False).argmax(1).numpy()
    out = bilinear_argmax(p, size)
    assert (out != ref).mean() < 1e-4
    assert (ref != 0).any() == (where != "nowhere")


def test_nearest_keeps_values():
    m = np.zeros((1, 4, 4), bool)
    m[0, 1, 2] = True
    up = nearest(m, (8, 8))
    assert up.sum() == 4 and up[0, 2:4, 4:6].all()


@pytest.mark.parametrize("size", [(80, 72), (100, 53), (17, 29), (512, 512)])
def test_border_pixels_found_at_low_resolution_equal_nonzero_of_the_upsampled_mask(size):
    from lungseg.inference.upsample import _nearest_pixels_of

    mask = np.random.default_rng(3).random((2, 40, 36)) < 0.1
    got = np.zeros((2,) + size, dtype=bool)
    b, y, x = _nearest_pixels_of(mask, size)
    got[b, y, x] = True
    assert len(b) == got.sum()  # each output pixel once
    np.testing.assert_array_equal(got, nearest(mask, size))


def test_class_argmax_equals_numpy_argmax_with_ties():
    from lungseg.inference.upsample import class_argmax

    p = np.round(_probs((2, 4, 20, 20), seed=5), 1)  # rounding makes ties
    np.testing.assert_array_equal(class_argmax(p), p.argmax(axis=1))
