import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LUNGSEG_CACHE_DIR", tempfile.mkdtemp(prefix="lungseg-test-cache-"))  # not the user's ~/.cache
SHARED = Path(os.environ.get("LUNGSEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(rel: str) -> Path:
    """A file of ../shared/data; the test is skipped (with the reason) when it is absent."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (set LUNGSEG_SHARED_DATA)")
    return p


def dice(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2 * (a & b).sum() / denom)


@pytest.fixture(scope="session")
def sample_ct():
    from lungseg.io import read_ct
    from lungseg.samples import SAMPLE_CT

    return read_ct(SAMPLE_CT)


@pytest.fixture(scope="session")
def sample_lung_mask():
    from lungseg.io import read_ct
    from lungseg.samples import SAMPLE_LUNG_MASK

    return read_ct(SAMPLE_LUNG_MASK).array > 0


@pytest.fixture(scope="session")
def sample_labels(sample_ct):
    from lungseg.classical import segment_classical

    return segment_classical(sample_ct)
