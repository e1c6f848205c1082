"""Which stage of the nodule pipeline lost a reference nodule: the network never saw it, it saw it
under the candidate threshold, the candidate was too small or mostly outside the lungs to be
scored, or it was scored under the operating point. Where to work next follows from the counts:
a better scorer cannot help a nodule the network never proposed."""
from __future__ import annotations

import numpy as np

STAGES = ("listed", "scored under the operating point", "candidate under half in the lungs",
          "candidate under 3 mm", "under the candidate threshold", "never over 0.1")
SHORT = dict(zip(STAGES, ("listed", "scored low", "half out", "cand < 3 mm", "p 0.1-thr.", "p < 0.1")))  # table heads
FAINT = 0.1  # a nodule whose peak probability stays under this the network did not see at all


def trace_nodule(mask: np.ndarray, probability: np.ndarray, candidate_ids: np.ndarray, candidates,
                 min_voxels: float, min_inside: float, listed: bool) -> dict:
    """One reference nodule (a boolean mask on the scan's grid) through the pipeline.
    probability: the nodule network's map on the scan; candidate_ids: each voxel's candidate
    number (0: none), numbered as `candidates` (lungseg.inference.candidates.Candidates) numbers
    them; min_voxels / min_inside: the scorer's size and in-lung gates."""
    peak = float(probability[mask].max()) if mask.any() else 0.0
    ids, overlap = np.unique(candidate_ids[mask], return_counts=True)
    overlap, ids = overlap[ids > 0], ids[ids > 0]
    out = {"peak_probability": round(peak, 3)}
    if len(ids):
        best = int(ids[np.argmax(overlap)])
        voxels = int(np.count_nonzero(candidates.ids == best))
        out.update(candidate_voxels=voxels, candidate_inside=round(float(candidates.inside[best]), 3),
                   candidate_mean_probability=round(float(candidates.mean_probability[best]), 3))
    if listed:
        stage = STAGES[0]
    elif not len(ids):
        stage = STAGES[5] if peak < FAINT else STAGES[4]
    elif out["candidate_inside"] < min_inside:
        stage = STAGES[2]
    elif out["candidate_voxels"] < min_voxels:
        stage = STAGES[3]
    else:
        stage = STAGES[1]
    return {**out, "stage": stage}


def candidate_id_map(candidates, shape) -> np.ndarray:
    """Each voxel's candidate number on the whole scan (0: none)."""
    ids = np.zeros(shape, np.int32)
    if candidates.count:
        ids[tuple(c + s.start for c, s in zip(candidates.coords, candidates.box))] = candidates.ids
    return ids


def stages_by_size(nodules: list[dict], size_bins_mm) -> list[dict]:
    """Per size bin, how many traced nodules ended at each stage."""
    rows = []
    for lo, hi in size_bins_mm:
        sel = [n for n in nodules if lo <= n["diameter_mm"] < hi and "stage" in n]
        if sel:
            rows.append({"size": f"{lo}-{hi} mm", "nodules": len(sel),
                         **{stage: sum(n["stage"] == stage for n in sel) for stage in STAGES}})
    return rows
