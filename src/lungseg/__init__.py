"""lungseg: left/right lung and nodule segmentation of chest CT.

Heavy modules (torch, MONAI) are imported lazily so `import lungseg` and `lungseg --help` stay fast.
"""
from .errors import LungsegError
from .io import CTImage, read_ct, write_labels

__version__ = "0.1.0"

LABELS = {0: "background", 1: "right_lung", 2: "left_lung", 3: "nodule"}


def segment(*args, **kwargs):
    """See lungseg.api.segment."""
    from .api import segment as _segment

    return _segment(*args, **kwargs)


__all__ = ["CTImage", "LABELS", "LungsegError", "read_ct", "segment", "write_labels"]
