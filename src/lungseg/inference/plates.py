"""Dense findings shaped like a plate are not nodules or tumours: a pleural effusion layered along
the chest wall, or a consolidation lining a lobe, is long but thin, while a tumour as long is
thick (lobulated, roughly round). The candidate scorer cannot tell them apart: its 40 mm patch
sees only the inside of either, uniform soft tissue. A kept candidate at least
PLATE_MIN_EXTENT_MM long whose thickest part (the diameter of the largest ball that fits inside
it) is under PLATE_MAX_THICKNESS_MM is dropped; its voxels keep the lung model's label.

Set on TRAINING phantoms (seeds 7200-7209 central tumours, 7300-7304 chest-wall tumours,
7250-7259 effusion and consolidation; see the model card): of the listed findings at least 60 mm
long, the effusions and consolidations (and one mixed region) were 16-22 mm thick, the tumours
36-62 mm (central ones up to 136 mm long); the limit lies between.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..postprocess import box_mask

PLATE_MIN_EXTENT_MM = 60.0
PLATE_MAX_THICKNESS_MM = 30.0


def plate_like(candidates, spacing_zyx, keep: np.ndarray) -> np.ndarray:
    """Per component (index 0 unused): a kept candidate shaped like a plate (see the module note)."""
    plates = np.zeros(len(keep), dtype=bool)
    sel = keep[candidates.ids]
    ids = candidates.ids[sel]
    coords = np.stack([c[sel] for c in candidates.coords], axis=1)
    spacing = np.asarray(spacing_zyx, dtype=float)
    order = np.argsort(ids, kind="stable")
    comps, starts = np.unique(ids[order], return_index=True)
    for comp, part in zip(comps, np.split(order, starts[1:])):
        box = box_mask(coords[part])
        if ((np.array(box.shape) - 1) * spacing).max() < PLATE_MIN_EXTENT_MM:
            continue
        inside = np.pad(box, 1)  # a one-voxel frame: the border is outside the finding
        plates[comp] = 2.0 * float(ndi.distance_transform_edt(inside, sampling=spacing).max()) < PLATE_MAX_THICKNESS_MM
    return plates
