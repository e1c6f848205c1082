"""The phantom against the classical segmenter: easy cases are easy, dense pathology is not.

A phantom that a threshold method cannot fail is no test of a trained model; one that fails it
on clean lungs is not realistic. Both directions are checked here."""
import numpy as np
import pytest

from lungseg.synth import generate_case

classical = pytest.importorskip("lungseg.classical", reason="lungseg.classical (foundation issue) not available")


def dice(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def lung_dice(case) -> list[float]:
    """Right and left lung Dice; nodule voxels count as the lung they lie in (lungmask style)."""
    pred, ref = classical.segment_classical(case.ct), case.lung_labels()
    return [dice(pred == k, ref == k) for k in (1, 2)]


@pytest.fixture(scope="module")
def scores():
    easy = [lung_dice(generate_case(s, difficulty="easy")) for s in range(3)]
    hard = [lung_dice(generate_case(s, difficulty="hard", effusion=True, consolidation=True, touching_lungs=True))
            for s in range(3)]
    return np.array(easy), np.array(hard)


def test_classical_reaches_095_on_clean_phantoms(scores):
    easy, _ = scores
    assert easy.min() >= 0.95, easy.round(3).tolist()


def test_hard_phantoms_are_clearly_harder(scores):
    easy, hard = scores
    assert hard.mean() <= easy.mean() - 0.08, (easy.mean(), hard.mean())
    assert hard.min() < 0.9, hard.round(3).tolist()  # a weak method really fails on some lung
