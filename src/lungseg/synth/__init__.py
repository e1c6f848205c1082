"""Synthetic chest CT phantoms with exact labels (lungseg synth).

    from lungseg.synth import generate_case
    case = generate_case(seed=0)            # 128x128x64, HU, labels 1 right / 2 left / 3 nodule
    case = generate_case(1, shape="random", difficulty="hard")

Writers (NIfTI, DICOM series, nnU-Net dataset folder) and the montage are imported lazily.
"""
from .generate import SynthCase, generate_case
from .tissue import Tissue

__all__ = ["SynthCase", "Tissue", "generate_case", "render_montage", "write_case", "write_nnunet_dataset"]


def write_case(*args, **kwargs):
    """See lungseg.synth.dataset.write_case."""
    from .dataset import write_case as _f

    return _f(*args, **kwargs)


def write_nnunet_dataset(*args, **kwargs):
    """See lungseg.synth.dataset.write_nnunet_dataset."""
    from .dataset import write_nnunet_dataset as _f

    return _f(*args, **kwargs)


def render_montage(*args, **kwargs):
    """See lungseg.synth.montage.render_montage."""
    from .montage import render_montage as _f

    return _f(*args, **kwargs)
