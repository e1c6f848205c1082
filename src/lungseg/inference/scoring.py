"""Stage 3, scoring: every candidate finding gets a detection_score, the probability that it is a
nodule or tumour (not how malignant it is), and the operating point decides which are listed.

ProbabilityScorer (used when no candidate scorer is installed, or with scorer="probability"):
the nodule network's own mean probability over the candidate. Its min_score and min_inside were set on training phantoms (512x512x160, seeds 1000-1003,
the nodule model trained on their crops) by one rule: the highest minimum that keeps every found
nodule >= 10 mm. The shipped model (2.5D, two slices each side) finds 11 of their 24 nodules,
all 9 >= 10 mm, up to 0.85 (81 false candidates per scan; 136 with no filter); at 0.88 and 0.9 it
drops one >= 10 mm (60 and 42 per scan; benchmarks/nodule_filter_sweep.py). A candidate must also
lie at least half in the lung mask: the lung model counts tumours, juxtapleural ones too, as
lung, and most false candidates on whole scans are vessels and soft tissue at the lung border.
NetworkScorer (the shipped default) is described below. A scorer is any object with
score(candidates, ct) and keep(candidates, scores).
"""
from __future__ import annotations

import numpy as np

DETECTION_SCORE_MEANING = ("detection_score: 0-1, how likely the finding is a nodule or tumour "
                           "(the nodule network's mean probability over the finding); not a malignancy score")


class _OperatingPoint:
    """What every scorer lists: components scoring at least min_score that lie at least
    min_inside in the lung mask."""

    min_score: float
    min_inside: float

    def keep(self, candidates, scores: np.ndarray) -> np.ndarray:
        """Per component (index 0 unused): listed at this operating point."""
        keep = (scores >= self.min_score) & (candidates.inside >= self.min_inside)
        keep[0] = False
        return keep


class ProbabilityScorer(_OperatingPoint):
    name = "mean-probability"
    meaning = DETECTION_SCORE_MEANING

    def __init__(self, min_score: float = 0.85, min_inside: float = 0.5):
        self.min_score = min_score
        self.min_inside = min_inside

    def score(self, candidates, ct=None) -> np.ndarray:
        """Per component (index 0 unused): its detection score."""
        return np.asarray(candidates.mean_probability, dtype=float)


MASS_DIAMETER_FRACTION = 0.75  # of the patch's width: a 30 mm ball

NETWORK_SCORE_MEANING = ("detection_score: 0-1, how likely the finding is a nodule or tumour: the mean "
                         "probability of the candidate scorer's 3D CNNs, which see a 40 mm patch around it, times "
                         "the nodule network's mean probability over it (for a mass as big as a 30 mm ball or "
                         "bigger away from the mediastinum and hila, which fills the patch, that mean probability "
                         "alone); not a malignancy score")


class NetworkScorer(_OperatingPoint):
    """The candidate scorer (false-positive reduction, as in LUNA16): a small 3D CNN (the shipped
    one: the mean of two, scripts/ensemble_scorers.py) sees each candidate in a 40 mm isotropic
    patch (lungseg.inference.patches) and gives the probability that it is a nodule or tumour;
    the detection score is that probability times the nodule
    network's own mean probability over the candidate (both stages must agree: on the validation
    phantoms and LIDC-IDRI-0003 the product ranked nodules above false candidates better than
    either alone, scripts/train_scorer.py). Candidates less than min_inside in the lungs, or whose
    mean probability is below the operating point (the product cannot reach it) or that are
    smaller than the smallest nodule post-processing keeps (3 mm), score 0. A mass at least as big
    as a 30 mm ball away from the mediastinum and hila fills the patch; its score is the nodule
    network's mean probability alone (see _wider_than_patch).
    The operating point comes with the weights (chosen on validation phantoms, see its .json)."""

    name = "candidate-cnn"
    meaning = NETWORK_SCORE_MEANING

    def __init__(self, weights, min_score: float | None = None, min_inside: float = 0.5, runtime: str = "auto"):
        import json
        from pathlib import Path

        weights = Path(weights)
        self.meta = json.loads(weights.with_suffix(".json").read_text())
        self.min_score = float(self.meta["operating_point"]) if min_score is None else min_score
        self.min_inside = min_inside
        self._weights, self._runtime, self._runner = weights, runtime, None

    def _run(self, patches: np.ndarray) -> np.ndarray:
        if self._runner is None:  # compiled on first use: coarse scans never search for nodules
            self._runner = _patch_runner(self._weights, self._runtime)
        return self._runner(patches)

    def score(self, candidates, ct) -> np.ndarray:
        from ..postprocess import min_nodule_size
        from .patches import iter_candidate_patches

        scores = np.zeros(candidates.count + 1)
        mean_p = np.asarray(candidates.mean_probability, dtype=float)
        # the score is at most the mean probability: a candidate below the operating point there
        # can never be listed, so its patch is not even cut (most of a scan's candidates; 0 for an
        # operating point of 0, which scores them all); nor is one that post-processing would
        # drop as smaller than a 3 mm nodule (half of those left on a real scan)
        big = np.bincount(candidates.ids, minlength=candidates.count + 1) >= min_nodule_size(ct.spacing)
        wide = _wider_than_patch(candidates, ct.spacing_zyx)  # the patch would see only its inside
        comps = np.nonzero((candidates.inside >= self.min_inside) & (mean_p >= self.min_score) & big & ~wide)[0]
        for part, patches in iter_candidate_patches(ct.array, ct.spacing_zyx, candidates.box, candidates.coords,
                                                    candidates.ids, comps[comps > 0]):
            scores[part] = 1.0 / (1.0 + np.exp(-self._run(patches)))
        scores[wide] = 1.0
        return scores * mean_p


def _wider_than_patch(candidates, spacing_zyx) -> np.ndarray:
    """Per component: a mass at least as big as a ball of MASS_DIAMETER_FRACTION of the patch's
    width, lying mostly outside the mediastinum and hila (Candidates.outer). Such a mass fills the
    scorer's 40 mm patch, which then shows uniform soft tissue and none of the surroundings the
    scorer judges by, so the nodule network's own mean probability alone scores it. At the hilum
    the scorer keeps its say: the left pulmonary artery of LIDC-IDRI-0003 is an 11 mL candidate
    with a mean probability of 0.86 that the scorer gives 0.15."""
    from .patches import PATCH, PATCH_MM

    ball = np.pi / 6 * (MASS_DIAMETER_FRACTION * PATCH * PATCH_MM) ** 3 / float(np.prod(spacing_zyx))
    wide = np.bincount(candidates.ids, minlength=candidates.count + 1) >= ball
    wide &= candidates.outer >= 0.5 if candidates.outer is not None else False
    wide[0] = False
    return wide


def _patch_runner(weights, runtime: str):
    """patches (n, 2, P, P, P) -> logits (n,)."""
    from ..models.candidate_scorer import load_scorer
    from .runtimes.exported import exported_runner

    return exported_runner(weights, runtime, load_scorer)
