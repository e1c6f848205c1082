"""Stage 3, scoring: every candidate finding gets a detection_score, the probability that it is a
nodule or tumour (not how malignant it is), and the operating point decides which are listed.

ProbabilityScorer is today's scorer: the nodule network's own mean probability over the
candidate. min_score and min_inside were set on training phantoms (512x512x160, seeds 1000-1003,
the nodule model trained on their crops) by one rule: the highest minimum that keeps every found
nodule >= 10 mm. The shipped model (2.5D, two slices each side) finds 11 of their 24 nodules,
all 9 >= 10 mm, up to 0.85 (81 false candidates per scan; 136 with no filter); at 0.88 and 0.9 it
drops one >= 10 mm (60 and 42 per scan; benchmarks/nodule_filter_sweep.py). A candidate must also
lie at least half in the lung mask: the lung model counts tumours, juxtapleural ones too, as
lung, and most false candidates on whole scans are vessels and soft tissue at the lung border.
A scorer is any object with score(candidates, ct) and keep(candidates, scores).
"""
from __future__ import annotations

import numpy as np

DETECTION_SCORE_MEANING = ("detection_score: 0-1, how likely the finding is a nodule or tumour "
                           "(the nodule network's mean probability over the finding); not a malignancy score")


class ProbabilityScorer:
    name = "mean-probability"

    def __init__(self, min_score: float = 0.85, min_inside: float = 0.5):
        self.min_score = min_score
        self.min_inside = min_inside

    def score(self, candidates, ct=None) -> np.ndarray:
        """Per component (index 0 unused): its detection score."""
        return np.asarray(candidates.mean_probability, dtype=float)

    def keep(self, candidates, scores: np.ndarray) -> np.ndarray:
        """Per component: listed at this operating point."""
        keep = (scores >= self.min_score) & (candidates.inside >= self.min_inside)
        keep[0] = False
        return keep
