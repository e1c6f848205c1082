"""torch_threads restores torch's CPU thread count, also when the block fails or sets it itself."""
import pytest
import torch

from lungseg.threads import torch_threads


def test_thread_count_is_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads():
            torch.set_num_threads(1)  # set inside the block, e.g. by a --threads option
            raise RuntimeError("a failed run")
    assert torch.get_num_threads() == before
