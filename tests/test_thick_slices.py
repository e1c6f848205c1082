"""Thick-slice views of thin crop stacks: a small nodule on a 2.5 mm grid, as whole scans show it."""
import numpy as np
import pytest

from lungseg.data.thick_slices import thick_context, thick_step


def _thin_stack():
    """12 slices of 1.25 mm: slice i holds the value i everywhere; a nodule is marked on slices
    5-7 (3.75 mm), as a disc in the middle."""
    image = np.repeat(np.arange(12, dtype=np.float32)[:, None, None], 32, axis=1).repeat(32, axis=2)
    label = np.zeros(image.shape, np.uint8)
    label[5:8, 12:20, 12:20] = 1
    return image, label


@pytest.mark.parametrize("slice_mm, step", [(0.625, 4), (1.0, 2), (1.25, 2), (1.5, 2), (2.0, 1), (2.5, 1),
                                            (None, 1)])
def test_thin_stacks_are_stepped_to_about_2_5_mm(slice_mm, step):
    assert thick_step(slice_mm) == step


def test_point_sampled_view_takes_every_step_th_slice_and_repeats_the_edge():
    image, label = _thin_stack()
    slices, target = thick_context(image, label, 6, 2, 2, slab=False)
    assert slices[:, 0, 0].tolist() == [2, 4, 6, 8, 10]
    assert np.array_equal(target, label[6])
    slices, _ = thick_context(image, label, 1, 2, 2, slab=False)
    assert slices[:, 0, 0].tolist() == [0, 0, 1, 3, 5]  # beyond the stack: its first slice


def test_slab_view_averages_step_slices_and_marks_what_half_the_slab_marks():
    image, label = _thin_stack()
    slices, target = thick_context(image, label, 6, 2, 2, slab=True)
    assert slices[:, 0, 0].tolist() == [2.5, 4.5, 6.5, 8.5, 10.5]  # slices 2+3, 4+5, 6+7, ...
    assert np.array_equal(target, label[6])  # 6 and 7 are both marked
    _, target = thick_context(image, label, 7, 2, 2, slab=True)
    assert np.array_equal(target, label[7])  # 7 marked, 8 not: half the slab
    _, target = thick_context(image, label, 4, 2, 4, slab=True)
    assert np.array_equal(target, label[5])  # slices 3-6: 5 and 6 marked, half the slab
    _, target = thick_context(image, label, 3, 2, 4, slab=True)
    assert not target.any()  # slices 2-5: only 5 marked
