"""Dense findings shaped like a plate are not nodules or tumours: a pleural effusion layered along
the chest wall, or a consolidation lining a lobe, is a layer or a crescent, while a tumour as long
is about as thick as it is long (lobulated, roughly round). The candidate scorer cannot tell them
apart: its 40 mm patch sees only the inside of either, uniform soft tissue. A kept candidate at
least PLATE_MIN_EXTENT_MM long is dropped (its voxels keep the lung model's label) when its
thickness, the diameter of the largest ball that fits inside it, is
- under PLATE_MAX_THICKNESS_MM, or
- under PLATE_MAX_THICKNESS_RATIO of its length along its main axis: four standard deviations of
  its voxels' positions there, once ribbons thinner than 2 x RIBBON_MM are cut off (a central
  tumour's candidate may trail a ribbon along the mediastinum that would make it look long).

Set on TRAINING phantoms (seeds 7200-7209 central tumours, 7300-7304 chest-wall tumours,
7250-7259 effusion and consolidation; see the model card). Of their listed findings at least 60 mm
long, the effusions and consolidations were 15-22 mm thick, the tumours 32-60 mm, with ratios
0.68-0.79. Effusions inserted into the real LIDC-IDRI-0003 (benchmarks/pathology_in_real.py,
validation) are thicker, 29-45 mm, but flatter: ratios 0.39-0.42; hence the second test.
The first version had a 30 mm limit alone. On that validation scan it let the 321 and 595 mL
effusions through as tumours and dropped a lobulated 60 mL central tumour (54 mm long, its
largest inner ball 29.7 mm across, ratio 0.57); the thickness limit was lowered to 25 mm for it.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..postprocess import box_mask

PLATE_MIN_EXTENT_MM = 60.0
PLATE_MAX_THICKNESS_MM = 25.0
PLATE_MAX_THICKNESS_RATIO = 0.5
RIBBON_MM = 5.0


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
        depth = ndi.distance_transform_edt(inside, sampling=spacing)
        thickness = 2.0 * float(depth.max())
        plates[comp] = thickness < PLATE_MAX_THICKNESS_MM or \
            thickness < PLATE_MAX_THICKNESS_RATIO * _main_axis_length(np.argwhere(_opened(depth, spacing)) * spacing)
    return plates


def _opened(depth: np.ndarray, spacing) -> np.ndarray:
    """The finding opened by a ball of RIBBON_MM radius, from its depth map (distance to outside)."""
    core = depth > RIBBON_MM
    if not core.any():
        return depth > 0
    return (ndi.distance_transform_edt(~core, sampling=spacing) <= RIBBON_MM) & (depth > 0)


def _main_axis_length(points_mm: np.ndarray) -> float:
    """Four standard deviations of the points along their main (first principal) axis, mm."""
    return 4.0 * float(np.sqrt(max(np.linalg.eigvalsh(np.cov(points_mm.T))[-1], 0.0)))
