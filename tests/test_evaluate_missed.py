"""Tracing a reference nodule through the nodule pipeline (lungseg.evaluation.missed) on crafted maps."""
import numpy as np

from lungseg.evaluation.missed import STAGES, candidate_id_map, stages_by_size, trace_nodule
from lungseg.inference.candidates import Candidates


def _scan():
    """Five nodules in a 20^3 scan, and two candidates in a box starting at (2, 2, 2): a big one
    on nodule A (inside the lungs) and a 4-voxel one on nodule B; nodule C is seen under the
    threshold, D not at all, E is under a big candidate lying mostly outside the lungs."""
    shape = (20, 20, 20)
    masks = {k: np.zeros(shape, bool) for k in "ABCDE"}
    masks["A"][2:6, 2:6, 2:6] = True
    masks["B"][10:12, 2:4, 2:4] = True
    masks["C"][2:4, 12:14, 12:14] = True
    masks["D"][14:16, 14:16, 14:16] = True
    masks["E"][14:18, 2:6, 8:12] = True
    prob = np.zeros(shape, np.float32)
    prob[masks["A"]] = 0.9
    prob[masks["B"]] = 0.5
    prob[masks["C"]] = 0.2
    prob[masks["D"]] = 0.05
    prob[masks["E"]] = 0.8
    box = (slice(2, 20), slice(2, 20), slice(2, 20))
    a = np.nonzero(masks["A"][box])
    b = tuple(c[:4] for c in np.nonzero(masks["B"][box]))
    e = np.nonzero(masks["E"][box])
    coords = tuple(np.concatenate(parts) for parts in zip(a, b, e))
    ids = np.concatenate([np.full(len(a[0]), 1), np.full(4, 2), np.full(len(e[0]), 3)])
    found = Candidates(box, coords, ids, np.array([0, 0.9, 0.5, 0.8]), np.array([0, 1.0, 1.0, 0.2]))
    return masks, prob, found


def test_each_nodule_is_lost_at_the_stage_that_lost_it():
    masks, prob, found = _scan()
    ids = candidate_id_map(found, prob.shape)
    assert (ids > 0).sum() == len(found.ids) and (ids[masks["A"]] == 1).all()

    def stage(k, listed=False):
        return trace_nodule(masks[k], prob, ids, found, min_voxels=8, min_inside=0.5, listed=listed)

    a = stage("A")
    assert a["stage"] == "scored under the operating point" and a["candidate_voxels"] == 64
    assert stage("A", listed=True)["stage"] == "listed"
    assert stage("B")["stage"] == "candidate under 3 mm" and stage("B")["candidate_voxels"] == 4
    assert stage("C") == {"peak_probability": 0.2, "stage": "under the candidate threshold"}
    assert stage("D")["stage"] == "never over 0.1"
    assert stage("E")["stage"] == "candidate under half in the lungs"


def test_stages_are_counted_per_size_bin():
    nodules = [{"diameter_mm": 4.0, "stage": STAGES[5]}, {"diameter_mm": 5.0, "stage": STAGES[0]},
               {"diameter_mm": 8.0, "stage": STAGES[1]}, {"diameter_mm": 25.0}]  # untraced: left out
    rows = stages_by_size(nodules, ((3, 6), (6, 10), (20, 31)))
    assert [r["size"] for r in rows] == ["3-6 mm", "6-10 mm"]
    assert rows[0]["nodules"] == 2 and rows[0][STAGES[5]] == 1 and rows[0][STAGES[0]] == 1
    assert rows[1][STAGES[1]] == 1 and sum(rows[1][s] for s in STAGES) == 1
