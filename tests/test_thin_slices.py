"""The lung network on every other slice of thin-slice scans: which slices run, the slices in
between, and the masks against running every slice and against the truth."""
import numpy as np
import pytest
from conftest import dice

from lungseg.inference.pipeline import LUNG_HU
from lungseg.inference.thin_slices import fill_skipped_slices, network_slices


def test_only_thin_slice_scans_skip_and_the_last_slice_always_runs():
    assert network_slices(100, 2.5) is None and network_slices(2, 1.0) is None
    assert network_slices(7, 1.25).tolist() == [0, 2, 4, 6]
    assert network_slices(8, 1.0).tolist() == [0, 2, 4, 6, 7]


def test_skipped_slices_are_the_mean_of_their_neighbours_across_batches():
    """Run slices carry their own index as probability: every scan slice comes out once, in
    order, in consecutive batches, worth its index (the mean of z - 1 and z + 1 is z)."""
    run_on = network_slices(10, 1.0)  # 0 2 4 6 8 9
    batches = [(start, (4, 4), np.stack([np.full((3, 2, 2), float(z)) for z in run_on[start:start + 4]]))
               for start in range(0, len(run_on), 4)]
    out = list(fill_skipped_slices(iter(batches), run_on))
    firsts = [first for first, _, _ in out]
    values = np.concatenate([p[:, 0, 0, 0] for _, _, p in out])
    assert firsts == [0, 7] and values.tolist() == list(range(10))
    assert all(size == (4, 4) for _, size, _ in out)


@pytest.mark.skipif(not LUNG_HU.exists(), reason="no default weights")
@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_thin_phantom_lungs_match_every_slice_and_the_truth(runtime):
    from lungseg.inference.network import ModelSegmenter
    from lungseg.synth import generate_case

    pytest.importorskip(runtime)
    case = generate_case(4, size=(192, 192, 120), spacing=(1.6, 1.6, 1.25))
    seg = ModelSegmenter.from_checkpoint(LUNG_HU, runtime=runtime)
    calls = []
    predict = seg.runtime.probabilities
    seg.runtime.probabilities = lambda x, m: calls.append(len(x)) or predict(x, m)
    skipped = seg(case.ct).labels
    every = ModelSegmenter.from_checkpoint(LUNG_HU, runtime=runtime, every_slice=True)(case.ct).labels
    truth = np.where(case.labels == 3, 0, case.labels)
    for v in (1, 2):
        assert dice(skipped == v, every == v) > 0.99
        assert dice(skipped == v, truth == v) > dice(every == v, truth == v) - 0.005
    if runtime == "torch":  # the torch runtime has no streaming path: count the slices it saw
        assert sum(calls) == 61  # 0, 2, ..., 118 and the last, 119
