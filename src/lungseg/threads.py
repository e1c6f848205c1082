"""torch's CPU thread count, set for a piece of work and restored afterwards: training and
comparisons may run inside a larger program (a test run, a notebook), where a leftover
`set_num_threads(1)` would slow, and change the arithmetic of, everything after them."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None = None):
    """Within the block: `threads` torch CPU threads (None: as they are); after it: as before,
    whatever the block set."""
    import torch

    saved = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        yield
    finally:
        torch.set_num_threads(saved)
