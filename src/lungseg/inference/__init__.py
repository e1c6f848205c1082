"""The inference pipeline, a file per stage:

    lungs.py -> candidates.py -> scoring.py -> postprocessing.py -> classify.py -> report.py
    (pipeline.py composes them into the shipped default; network.py runs any checkpoint; the
    report reads classify.py's answers from the output, so it imports no classifier)

runtimes/ holds the interchangeable network runtimes (PyTorch, OpenVINO) behind one small
interface (runtimes/base.py). Lower files never import higher ones; tests/test_inference_layout.py
checks that the package has no import circle. Heavy imports (torch, OpenVINO) stay lazy.
"""
from .output import SegmenterOutput
from .resolve import ClassicalSegmenter, check_intensity, resolve_segmenter

__all__ = ["ClassicalSegmenter", "SegmenterOutput", "check_intensity", "resolve_segmenter"]
