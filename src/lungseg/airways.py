"""Take the trachea's continuation, the main bronchi, out of a lung label map. A lung network
often labels the last centimetres of a main bronchus (lumen and wall) as lung where it enters
the hilum (seen on LIDC-IDRI-0003: the left main bronchus as left lung), and the nodule stage
then finds a "mass" in its wall. R231's convention leaves the trachea and the main bronchi out.

The rule: the airway lumen that lies OUTSIDE the lungs (the trachea, the bronchi in the
mediastinum: air, tube-like, in the middle of the chest) is followed slice by slice into the lung labels for up to `reach_mm`; that lumen and
the lung labels within `wall_mm` of it (its wall) stop being lung, and so do small lung pieces
this leaves cut off. The air outside the body is never such a tube. Emphysema is guarded against:
a lumen that widens into dark lung stops the tracking, and more than a tube's volume is left
alone. Only on grids fine enough to resolve a bronchial wall (pixels <= MAX_PIXEL_MM). A
bronchus running within one slice is followed only where it crosses to the next."""
from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage as ndi

from .postprocess import at_faces, foreground_box, label, lung_voxels

LUMEN_HU = -920.0  # the lumen of a large airway: air, darker than aerated lung (~ -850)
TUBE_HU = -880.0  # the airway outside the lungs: on 2.5 mm slices the left main bronchus reads
#                   -870..-900 HU (at -920 it was missed on LIDC-IDRI-0003)
LOOSE_LUMEN_HU = -800.0  # a main bronchus on 2.5 mm slices reads -870..-900 (partial volume); walled by
#                          the mediastinum it is still a tube at this level, in the lung it is not
REACH_MM = 25.0  # how far into the lung labels the airway is followed from where it enters them
WALL_MM = 3.0
MAX_TUBE_AREA_CM2 = 8.0  # the trachea and main bronchi in cross-section (carina included)
MAX_PIXEL_MM = 1.5  # coarser grids blur the bronchial wall into the lung: on imlab3d id003 (3 mm
#                     pixels) 89 % of what the rule took was lung in the reference
CENTRAL_BAND = (0.25, 0.75)  # where in the lungs' box, left to right, the airway is looked for
MIN_TUBE_ML = 0.2  # smaller dark specks outside the lungs are not the trachea or a bronchus
MAX_INSIDE_ML = 12.0  # more dark lung than this joined to the airway is emphysema: leave it
NOTHING = (np.zeros(0, np.intp),) * 3


def central_airway_voxels(labels: np.ndarray, hu: np.ndarray, spacing_zyx, reach_mm: float = REACH_MM,
                          wall_mm: float = WALL_MM) -> tuple[np.ndarray, ...]:
    """Indices (z, y, x) of lung-labelled voxels that are central airway lumen or wall."""
    lungs = lung_voxels(labels)
    if labels.ndim != 3 or labels.shape[0] < 3 or min(spacing_zyx[1:]) > MAX_PIXEL_MM or not lungs.any():
        return NOTHING
    sp = np.asarray(spacing_zyx, float)
    box = foreground_box(lungs, margin=4)
    lung = lungs[box]
    width = lung.shape[2]  # the trachea and main bronchi lie in the middle of the chest, left to right
    band = slice(int(CENTRAL_BAND[0] * width), int(np.ceil(CENTRAL_BAND[1] * width)))
    tubes = np.zeros_like(lung)
    tubes[..., band] = _airway_tubes((hu[box][..., band] < TUBE_HU) & ~lung[..., band], lung[..., band], sp)
    if not tubes.any():
        return NOTHING
    reach = np.ceil(reach_mm / sp).astype(int)
    near_tubes = foreground_box(tubes, margin=1)
    entry = np.nonzero(ndi.binary_dilation(tubes[near_tubes]) & lung[near_tubes])  # where the airway enters the lungs
    entry = tuple(c + s.start for c, s in zip(entry, near_tubes))
    if not len(entry[0]):
        return NOTHING
    sub = tuple(slice(max(0, int(c.min()) - r), int(c.max()) + 1 + r) for c, r in zip(entry, reach))
    lung, tubes = lung[sub], tubes[sub]
    smooth = ndi.median_filter(hu[box][sub], size=(1, 3, 3))  # noise leaves no lung specks in the lumen
    from_tube = ndi.distance_transform_edt(~tubes, sampling=sp)
    near = from_tube <= reach_mm
    lumen = _track(tubes, [(smooth < t) & near for t in (LOOSE_LUMEN_HU, LUMEN_HU)], sp) & lung
    if lumen.sum() * np.prod(sp) / 1000.0 > MAX_INSIDE_ML:
        return NOTHING
    airway = lumen | tubes
    wall = (ndi.distance_transform_edt(~airway, sampling=sp) <= wall_mm) & lung & (from_tube <= reach_mm + wall_mm)
    left = lung & ~lumen & ~wall
    found = np.nonzero((lumen | wall | _islands(left, sp)) & lung)
    return tuple(c + s.start + b.start for c, s, b in zip(found, sub, box))


def remove_central_airways(labels: np.ndarray, hu: np.ndarray, spacing_zyx) -> int:
    """Set the central airway's lung-labelled voxels to background, in place; returns how many."""
    found = central_airway_voxels(labels, hu, spacing_zyx)
    labels[found] = 0
    return int(len(found[0]))


def _airway_tubes(outside_air: np.ndarray, lung: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """The air components outside the lungs that touch them and are tube-like: never wider than
    MAX_TUBE_AREA_CM2 on a slice and never at the box's in-plane border (outside air). Each is
    checked inside its own bounding box: a scan-sized dilation costs more than all the rest."""
    comps = cc3d.connected_components(outside_air, connectivity=6)
    stats = cc3d.statistics(comps)
    max_px = MAX_TUBE_AREA_CM2 * 100.0 / (sp[1] * sp[2])
    min_voxels = MIN_TUBE_ML * 1000.0 / np.prod(sp)
    tubes = np.zeros_like(outside_air)
    for c, (count, box) in enumerate(zip(stats["voxel_counts"], stats["bounding_boxes"])):
        if c == 0 or count < min_voxels:
            continue
        if any(b.start == 0 or b.stop == size for b, size in zip(box[1:], comps.shape[1:])):
            continue  # at the box's in-plane border: the air outside the body
        grown = tuple(slice(max(0, b.start - 1), b.stop + 1) for b in box)
        own = comps[grown] == c
        if np.bincount(np.nonzero(own)[0]).max() > max_px:
            continue
        if (ndi.binary_dilation(own) & lung[grown]).any():
            tubes[grown] |= own
    return tubes


def _track(seeds: np.ndarray, levels: list[np.ndarray], sp: np.ndarray) -> np.ndarray:
    """Follow the airway from `seeds` slice by slice, down then up: on each slice the in-plane
    components of the first level (dark enough) that overlap the lumen of the slice before and are
    no more than ~1.6x its area there (more is lung parenchyma joined on: a leak), else those of
    the next, stricter level."""
    lumen = seeds.copy()
    max_px = MAX_TUBE_AREA_CM2 * 100.0 / (sp[1] * sp[2])
    depth = lumen.shape[0]
    for order in (range(1, depth), range(depth - 2, -1, -1)):
        for z in order:
            before = lumen[z - 1] if order.step == 1 else lumen[z + 1]
            if not before.any():
                continue
            grown = ndi.binary_dilation(before)
            for level in levels:
                comps, n = ndi.label(level[z])
                ids = np.unique(comps[grown & (comps > 0)])
                ids = ids[ids > 0]
                if not len(ids):
                    continue
                area = np.bincount(comps.ravel(), minlength=n + 1)[ids].sum()
                if area <= min(1.6 * before.sum() + 30, max_px):
                    lumen[z] |= np.isin(comps, ids)
                    break
    return lumen


def _islands(lung: np.ndarray, sp: np.ndarray, max_ml: float = 2.0) -> np.ndarray:
    """Small lung pieces left wholly inside the region (a ring of wall cut off from its lung)."""
    comps, n = label(lung)
    if n == 0:
        return np.zeros_like(lung)
    small = (np.bincount(comps.ravel(), minlength=n + 1) * np.prod(sp) / 1000.0 < max_ml) & ~at_faces(comps, n, range(3))
    small[0] = False
    return small[comps]
