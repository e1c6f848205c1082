"""lungseg.synth.reslice: a scan at another slice thickness keeps its world positions and
integrates over each slab."""
import numpy as np
import pytest

from lungseg.io import CTImage
from lungseg.synth.reslice import reslice


def _ramp_ct(n=40, dz=2.5):
    z = np.arange(n, dtype=np.float32) * 10.0  # value = 4 x the slice's height above the first slice, mm
    arr = np.broadcast_to(z[:, None, None], (n, 8, 8)).copy()
    return CTImage.from_array(arr, spacing=(0.8, 0.8, dz), origin=(-10.0, 5.0, -300.0), is_hu=True)


@pytest.mark.parametrize("slice_mm", [1.25, 5.0, 3.75])
def test_reslice_keeps_world_positions_of_a_linear_ramp(slice_mm):
    ct = _ramp_ct()
    out = reslice(ct, slice_mm)
    assert out.spacing == (0.8, 0.8, slice_mm)
    # a ramp's slab mean is the ramp at the slab centre: every slice reads its own height
    height = out.physical_points(np.stack([np.arange(out.shape[0]), np.zeros(out.shape[0]),
                                           np.zeros(out.shape[0])], axis=1))[:, 2] - ct.origin[2]
    inner = (height > 1.25) & (height < (ct.shape[0] - 1) * 2.5 - 1.25)  # clear of the clamped ends
    assert inner.sum() >= 0.8 * out.shape[0]
    np.testing.assert_allclose(out.array[inner, 4, 4], 4 * height[inner], atol=1e-3)
    assert out.shape[0] == int(ct.shape[0] * 2.5 / slice_mm)


def test_thick_slices_blur_a_thin_bright_layer_through_partial_volume():
    ct = _ramp_ct()
    arr = np.zeros_like(ct.array)
    arr[20] = 1000.0  # one 2.5 mm slice
    out = reslice(ct.with_array(arr), 5.0)
    centre = out.index_of_points(ct.physical_points(np.array([[20.0, 4, 4]])))[0][0]
    peak = int(np.argmax(out.array[:, 4, 4]))
    assert abs(peak - centre) <= 0.5  # still where it was
    assert 300 < out.array[peak, 4, 4] < 800  # a 2.5 mm layer in a 5 mm slab: about half its value
    assert out.array.sum() * 5.0 == pytest.approx(arr.sum() * 2.5, rel=0.05)  # nothing lost


def test_reslice_refuses_a_thickness_beyond_the_scan():
    with pytest.raises(ValueError, match="cannot reslice"):
        reslice(_ramp_ct(n=2), 10.0)
