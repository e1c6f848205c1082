"""Dense pathology inserted into real chest CT (lesion insertion as augmentation).

Each inserter takes a real HU volume (z, y, x) in lungseg's canonical LPS order (x to the
patient's left, y to posterior, z to superior: what lungseg.io readers and the shared-set
loaders return), its lung labels (1 right, 2 left; other values are kept), the voxel spacing
(z, y, x) in mm and a numpy Generator, and returns an `Inserted` (hu, labels, lesion, kind).
Every lesion voxel becomes lung (the side it was inserted into, R231 convention); edges are
blended over about one voxel and the lesion carries the volume's own noise. What is where:

- effusion.py: `pleural_effusion`, a dependent crescent of fluid at one lung's base.
- consolidation.py: `consolidation`, a lobe-like 20-50 HU region with air bronchograms.
- tumours.py: `central_tumour` (at the hilum, by `find_carina`), `chest_wall_tumour`, and
  `tumour_labels` (a tumour's voxels as label 3).
- noise.py: `Noise`, `estimate_noise` and the random fields lesions are textured with.
- geometry.py: `Inserted`, the HU limits, box / shape / side helpers and the painting.
- real_nodule.py: a REAL nodule (an LIDC crop stack's) resampled, placed in parenchyma and
  pasted; `move_nodules_in` does it for several, kept apart (benchmarks/real_nodules_in_lidc.py,
  and the nodule network's training phantoms: lungseg.data.synthetic.with_real_nodules).
- here: `KINDS`, `INSERTERS` (kind -> inserter) and `insert_random`.

All the work is done inside the lesion's bounding box (plus a cheap look at a few slices for
the noise and a cropped search for the carina): one lesion takes 0.3-2 s on a 512x512x300 scan
(about 0.5 s of it copying the volume), milliseconds on the 64-128 pixel shared volumes.
"""
from __future__ import annotations

import numpy as np

from .consolidation import CONSOLIDATION_HU, CONSOLIDATION_MAX_LUNG_SHARE, CONSOLIDATION_ML, consolidation
from .effusion import EFFUSION_HU, EFFUSION_MAX_LUNG_SHARE, EFFUSION_ML, pleural_effusion
from .geometry import AIRWAY_HU, BONE_HU, EDGE_SIGMA, SOFT_MIN_HU, Inserted
from .noise import Noise, estimate_noise
from .tumours import (BAND_MM, CENTRAL_MM, CHEST_WALL_MM, NECROSIS_HU, TUMOUR_HU, TUMOUR_KINDS, central_tumour,
                      chest_wall_tumour, find_carina, tumour_labels)

KINDS = ("pleural_effusion", "consolidation", "central_tumour", "chest_wall_tumour")

__all__ = ["AIRWAY_HU", "BAND_MM", "BONE_HU", "CENTRAL_MM", "CHEST_WALL_MM", "CONSOLIDATION_HU",
           "CONSOLIDATION_MAX_LUNG_SHARE", "CONSOLIDATION_ML", "EDGE_SIGMA", "EFFUSION_HU",
           "EFFUSION_MAX_LUNG_SHARE", "EFFUSION_ML", "INSERTERS", "Inserted", "KINDS", "NECROSIS_HU", "Noise",
           "SOFT_MIN_HU", "TUMOUR_HU", "TUMOUR_KINDS", "central_tumour", "chest_wall_tumour", "consolidation",
           "estimate_noise", "find_carina", "insert_random", "pleural_effusion", "tumour_labels"]

INSERTERS = {"pleural_effusion": pleural_effusion, "consolidation": consolidation,
             "central_tumour": central_tumour, "chest_wall_tumour": chest_wall_tumour}


def insert_random(hu, labels, spacing_zyx, rng: np.random.Generator, kinds=KINDS,
                  noise: Noise | None = None) -> Inserted:
    """One lesion of a kind drawn uniformly from `kinds`."""
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in INSERTERS]
    if bad or not kinds:
        raise ValueError(f"unknown lesion kinds {bad} (choose from {', '.join(KINDS)})")
    kind = kinds[int(rng.integers(0, len(kinds)))]
    return INSERTERS[kind](hu, labels, spacing_zyx, rng, noise=noise or estimate_noise(hu, labels))
