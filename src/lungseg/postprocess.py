"""Post-processing of a model's label map, after lungmask's: keep each lung's main component,
merge stray pieces into the lung they touch most, drop isolated blobs, fill holes, and keep only
nodules that sit in or against a lung. Plus the low-confidence map shown in previews."""
from __future__ import annotations

from dataclasses import dataclass

import cc3d
import fastremap
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

LUNGS = (1, 2)
NODULE = 3
MIN_NODULE_MM = 3.0  # smaller label-3 components are dropped (LUNA16 counts nodules >= 3 mm)


def min_nodule_size(spacing, min_nodule_mm: float = MIN_NODULE_MM, ndim: int = 3) -> float:
    """The smallest nodule kept, in voxels (pixels for 2D): a sphere (disc) of min_nodule_mm."""
    size = (np.pi / 6 * min_nodule_mm**3) if ndim == 3 else (np.pi / 4 * min_nodule_mm**2)
    return size / float(np.prod(spacing))


def lung_voxels(labels: np.ndarray) -> np.ndarray:
    """Right or left lung (np.isin is ~50x slower on a scan-sized label map)."""
    return (labels == LUNGS[0]) | (labels == LUNGS[1])


def label(mask: np.ndarray, inplane: bool = False) -> tuple[np.ndarray, int]:
    """Face-connected components of a 2D or 3D mask, numbered in raster order exactly as
    ndi.label with the cross structure numbers them; cc3d does it ~5x faster. inplane: each
    slice (axis 0) on its own, as one tall 2D image with an empty row between the slices."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    if inplane and mask.ndim == 3:
        z, y, x = mask.shape
        tall = np.zeros((z, y + 1, x), dtype=bool)
        tall[:, :y] = mask
        comps, n = cc3d.connected_components(tall.reshape(z * (y + 1), x), connectivity=4, return_N=True)
        return comps.reshape(z, y + 1, x)[:, :y], n
    return cc3d.connected_components(mask, connectivity=4 if mask.ndim == 2 else 6, return_N=True)


def at_faces(comps: np.ndarray, n: int, axes) -> np.ndarray:
    """Per component id (0..n): whether it reaches the array's first or last plane along any of `axes`."""
    reached = np.zeros(n + 1, dtype=bool)
    for axis in axes:
        reached[np.take(comps, [0, -1], axis=axis)] = True
    return reached


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes in every axial slice (vessels leave 2D holes near the hilum). This fills every 3D
    hole too: a 3D hole's cut through a slice is enclosed in that slice as well. Holes are the
    background components (in-plane connectivity) that do not reach a slice's edge: one labelling
    instead of binary_fill_holes' dilation to convergence, slice after slice."""
    mask = np.asarray(mask, dtype=bool)
    comps, n = label(~mask, inplane=True)
    filled = ~at_faces(comps, n, (mask.ndim - 2, mask.ndim - 1))
    filled[0] = True  # the mask itself
    return filled[comps]


def fill_lung_holes(labels: np.ndarray) -> np.ndarray:
    """Fill each lung's holes (vessels, nodules) without merging the two lungs."""
    out = labels.copy()
    for value in LUNGS:
        mask = labels == value
        if mask.any():
            box = foreground_box(mask, margin=1)  # a one-voxel frame keeps the result exact
            region = out[box]
            region[fill_holes(mask[box]) & (region == 0)] = value
    return out


def foreground_box(labels: np.ndarray, margin: int = 2) -> tuple[slice, ...]:
    """Bounding box of the non-zero voxels plus a margin (the whole array when empty)."""
    nz = [np.nonzero(labels.any(axis=tuple(a for a in range(labels.ndim) if a != ax)))[0] for ax in range(labels.ndim)]
    if any(len(n) == 0 for n in nz):
        return tuple(slice(None) for _ in range(labels.ndim))
    return tuple(slice(max(0, n[0] - margin), min(size, n[-1] + margin + 1)) for n, size in zip(nz, labels.shape))


def voxels(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """np.nonzero(mask), several times faster on a big, sparse mask."""
    return np.unravel_index(np.flatnonzero(mask), mask.shape)


def box_mask(coords: np.ndarray) -> np.ndarray:
    """The voxels (N, ndim) as a mask on their bounding box."""
    local = coords - coords.min(axis=0)
    mask = np.zeros(local.max(axis=0) + 1, dtype=bool)
    mask[tuple(local.T)] = True
    return mask


def _shifted(coords: tuple[np.ndarray, ...], shape, offset) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The voxels `offset` away from `coords` that lie inside the grid, and which those are."""
    moved = tuple(c + o for c, o in zip(coords, offset))
    inside = np.logical_and.reduce([(m >= 0) & (m < size) for m, size in zip(moved, shape)])
    return tuple(m[inside] for m in moved), inside


def _touches(labels: np.ndarray, coords: tuple[np.ndarray, ...], values, radius: int = 1) -> np.ndarray:
    """Per voxel of `coords`: is a voxel of `values` within `radius` 6-neighbour steps (what
    `radius` binary dilations with the cross reach)? Looked up around these voxels only, instead
    of dilating a mask of the whole grid."""
    steps = np.arange(-radius, radius + 1)
    ball = np.stack(np.meshgrid(*[steps] * labels.ndim, indexing="ij"), axis=-1).reshape(-1, labels.ndim)
    hit = np.zeros(len(coords[0]), dtype=bool)
    for offset in ball[np.abs(ball).sum(axis=1) <= radius]:
        moved, inside = _shifted(coords, labels.shape, offset)
        hit[inside] |= np.isin(labels[moved], values)
    return hit


def label_voxels(coords: tuple[np.ndarray, ...], shape) -> tuple[np.ndarray, int]:
    """Component ids 1..n (all 3^ndim - 1 neighbours, numbered like ndi.label) of the voxels
    `coords`, given in raster order as np.nonzero returns them. A graph over a few thousand nodule
    voxels costs next to nothing; labelling the grid they are scattered over does not."""
    if not len(coords[0]):
        return np.zeros(0, dtype=np.intp), 0
    flat = np.ravel_multi_index(coords, shape)
    grid = np.array(list(np.ndindex(*(3,) * len(shape)))) - 1
    rows, cols = [], []
    for offset in grid[len(grid) // 2 + 1:]:  # half the neighbours: the edges are undirected
        moved, inside = _shifted(coords, shape, offset)
        target = np.ravel_multi_index(moved, shape)
        j = np.minimum(np.searchsorted(flat, target), len(flat) - 1)
        found = flat[j] == target
        rows.append(np.flatnonzero(inside)[found])
        cols.append(j[found])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(flat), len(flat)))
    n, ids = connected_components(graph, directed=False)  # numbered by each one's first voxel
    return ids + 1, n


def component_voxels(mask: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Index arrays of each connected component of a sparse mask (as label_voxels numbers them),
    each in raster order."""
    coords = voxels(mask)
    ids, n = label_voxels(coords, mask.shape)
    order = np.argsort(ids, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(ids, minlength=n + 1)[1:-1]))
    return [tuple(c[g] for c in coords) for g in groups] if n else []


def postprocess_labels(labels: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0), min_piece_ml: float = 2.0,
                       min_nodule_mm: float = MIN_NODULE_MM, min_piece_fraction: float = 0.05,
                       hu: np.ndarray | None = None) -> np.ndarray:
    """Clean a (z, y, x) label map of 0/1/2/3. Works for single slices (z = 1) too.
    Runs on the labels' bounding box only: lungs fill a third of a chest CT's grid.
    min_piece_fraction (volumes only): an isolated piece smaller than this fraction of its lung's
    main component is dropped whatever its size, as lungmask keeps one component per lung (bowel
    gas under the diaphragm is easily > 2 mL); a lung really cut in two big parts keeps both.
    Single slices keep their islands: near the bases one lung shows as several on a slice.
    hu: the CT in Hounsfield units, to drop pieces lying in the air outside the body
    (drop_outside_pieces) and add the dark pockets at the lung border (add_dark_pockets)."""
    box = foreground_box(labels)
    out = np.zeros_like(labels)
    out[box], pieces_left = _postprocess(labels[box], spacing_zyx, min_piece_ml, min_nodule_mm, min_piece_fraction)
    if hu is not None and out.shape[0] > 1 and pieces_left:  # else each lung is one piece: nothing to drop
        drop_outside_pieces(out, hu)
    if hu is not None:
        added, where = _add_dark_pockets(out, hu)
        if added:  # fill the vessels inside the added pockets, around them only
            near = tuple(slice(max(0, s.start - 2), min(size, s.stop + 2)) for s, size in zip(where, out.shape))
            out[near] = fill_lung_holes(out[near])
    return out


def _postprocess(labels: np.ndarray, spacing_zyx, min_piece_ml: float, min_nodule_mm: float,
                 min_piece_fraction: float) -> tuple[np.ndarray, bool]:
    """(cleaned labels, whether a lung kept a piece besides its main component)."""
    single = labels.shape[0] == 1
    lab = labels[0] if single else labels
    spacing = np.asarray(spacing_zyx[1:] if single else spacing_zyx, dtype=float)
    voxel = float(np.prod(spacing)) / (100.0 if single else 1000.0)  # cm^2 per pixel or mL per voxel
    out = lab.copy()
    fraction = 0.0 if single else min_piece_fraction
    grown, kept = set(), {}
    pieces = _lung_pieces(lab)  # both lungs from one labelling of the original labels
    for value in LUNGS:  # in turn: the left lung's pieces see where the right lung's went
        merged, kept[value] = _merge_or_drop_pieces(pieces.get(value), out, value, voxel, min_piece_ml, fraction)
        if merged:
            grown |= set(LUNGS) - {value}
    for value in sorted(grown):  # a lung that got pieces: they may not touch its main part
        found = _lung_pieces(out, (value,)).get(value)
        kept[value] = _merge_or_drop_pieces(found, out, value, voxel, min_piece_ml, fraction)[1]
    out = fill_lung_holes(out)  # fills only: never splits a lung into pieces
    out = clean_nodules(out, spacing, min_nodule_mm)
    return (out[None] if single else out), any(kept.values())


@dataclass
class _LungPieces:
    """One lung in more than one face-connected piece, as _lung_pieces labelled it."""

    sizes: np.ndarray  # voxels per component id (of every label value's components)
    main: int  # the lung's largest component (the first of equals)
    others: np.ndarray  # its other components' ids, ascending
    coords: tuple[np.ndarray, ...]  # their voxels (indices in the labelled array, raster order)
    ids: np.ndarray  # the component id of each of those voxels


def _lung_pieces(lab: np.ndarray, values=LUNGS) -> dict[int, _LungPieces]:
    """The lungs (of `values`) that are in more than one piece. One multi-label labelling of the
    labels' box numbers every value's components apart (as labelling each lung's mask would, and
    in the same raster order): one pass for both lungs instead of one per lung, and one more to
    find the voxels of the pieces (a few, where a lung has millions)."""
    box = foreground_box(lab, margin=0)
    region = lab[box]
    comps, n = cc3d.connected_components(region, connectivity=4 if region.ndim == 2 else 6, return_N=True)
    if n < 2:
        return {}
    ids, counts = fastremap.unique(comps, return_counts=True)  # ~10x np.bincount on a lung's 20 M voxels
    sizes = np.zeros(n + 1, np.int64)
    sizes[ids] = counts
    value_of = fastremap.component_map(comps, region)  # {component id: its label value}
    lungs = {}
    for value in values:
        own = np.array(sorted(c for c, v in value_of.items() if v == value and c), dtype=np.int64)
        if len(own) > 1:
            main = int(own[np.argmax(sizes[own])])
            lungs[value] = (main, own[own != main])
    if not lungs:
        return {}
    is_other = np.zeros(n + 1, dtype=bool)
    for _, others in lungs.values():
        is_other[others] = True
    inner = voxels(is_other[comps])
    inner_ids = comps[inner]
    inner = tuple(c + s.start for c, s in zip(inner, box))
    found = {}
    for value, (main, others) in lungs.items():
        sel = np.isin(inner_ids, others)
        found[value] = _LungPieces(sizes, main, others, tuple(c[sel] for c in inner), inner_ids[sel])
    return found


def _merge_or_drop_pieces(pieces: _LungPieces | None, out: np.ndarray, value: int, voxel: float,
                          min_piece_ml: float, min_piece_fraction: float) -> tuple[bool, bool]:
    """Recolour, in `out`, the pieces of lung `value` other than its main component: a piece of
    this colour touching the other lung is a patch of that lung, so it is merged into it; an
    isolated piece smaller than min_piece_ml or than min_piece_fraction of the main component is
    dropped (e.g. bowel gas, noise). Returns (whether any piece was merged, whether any piece
    stays this lung's besides its main component)."""
    if pieces is None:
        return False, False
    coords, ids, sizes = pieces.coords, pieces.ids, pieces.sizes
    (other,) = set(LUNGS) - {value}
    merge = np.zeros(len(sizes), dtype=bool)
    merge[ids[_touches(out, coords, (other,))]] = True
    small = (sizes * voxel < min_piece_ml) | (sizes < min_piece_fraction * sizes[pieces.main])
    recolour = np.where(merge, other, np.where(small, 0, value))
    out[coords] = recolour[ids]
    return bool(merge.any()), bool((recolour[pieces.others] == value).any())


def drop_outside_pieces(labels: np.ndarray, hu: np.ndarray, air_hu: float = -400.0, min_outside: float = 0.5) -> int:
    """Drop, in place, the pieces of a lung (other than its main component) that lie mostly in the
    air outside the body: on their slices, air connected to the slice's border without crossing
    tissue. Seen on LIDC-IDRI-0003: ~260 mL of air in front of the neck, above the apex, was kept as
    a left-lung piece (it is > 5 % of the lung). A lung lies inside the chest wall, so a real piece
    never does this unless the field of view cuts through it. Returns the voxels dropped."""
    from scipy import ndimage

    dropped = 0
    outside_of: dict[int, np.ndarray] = {}  # slice -> its outside air, computed once
    for pieces in _lung_pieces(labels).values():
        for piece in pieces.others:
            coords = tuple(c[pieces.ids == piece] for c in pieces.coords)
            for z in np.unique(coords[0]):
                if z not in outside_of:
                    air, _ = ndimage.label(hu[z] < air_hu)
                    edge = np.unique(np.concatenate([air[0], air[-1], air[:, 0], air[:, -1]]))
                    outside_of[z] = np.isin(air, edge[edge > 0])
            outside = np.concatenate([outside_of[z][coords[1][coords[0] == z], coords[2][coords[0] == z]]
                                      for z in np.unique(coords[0])])
            if outside.mean() >= min_outside:
                labels[coords] = 0
                dropped += len(coords[0])
    return dropped


def add_dark_pockets(labels: np.ndarray, hu: np.ndarray, threshold_hu: float = -900.0,
                     min_lung_contact: float = 0.4) -> int:
    """Give the lungs the very dark (emphysematous, bullous) pockets a network leaves out at
    their border: connected regions below `threshold_hu` outside the lungs whose boundary lies
    mostly (>= min_lung_contact of its faces) against lung. Outside air and the trachea are
    never taken: they reach the lungs' bounding box edge (the trachea leaves it at the top) or
    touch the lungs with a small part of their boundary only. Each pocket joins the lung it
    touches most. In place; returns the number of voxels added."""
    return _add_dark_pockets(labels, hu, threshold_hu, min_lung_contact)[0]


def _add_dark_pockets(labels: np.ndarray, hu: np.ndarray, threshold_hu: float = -900.0,
                      min_lung_contact: float = 0.4) -> tuple[int, tuple[slice, ...] | None]:
    """add_dark_pockets, also giving the bounding box of the voxels it added (None if none)."""
    lungs = lung_voxels(labels)
    if not lungs.any() or labels.shape[0] == 1:
        return 0, None
    box = foreground_box(lungs, margin=8)  # room for pockets that reach beyond the lungs' box
    lab, dark = labels[box], (hu[box] < threshold_hu) & ~lungs[box]
    comps, n = label(dark)
    if n == 0:
        return 0, None
    edge = at_faces(comps, n, range(3))
    coords = voxels((comps > 0) & ~edge[comps])  # outside air, the big one, is out already
    ids = comps[coords]
    faces = np.zeros(n + 1)
    contact = np.zeros((n + 1, 3))  # faces against right lung / left lung (columns 1, 2)
    for offset in np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)]):
        moved, inside = _shifted(coords, lab.shape, offset)  # never outside: edge pockets are gone
        face = ~dark[moved]
        faces += np.bincount(ids[face], minlength=n + 1)
        for value in LUNGS:
            contact[:, value] += np.bincount(ids[face & (lab[moved] == value)], minlength=n + 1)
    keep = ~edge & (contact[:, 1:].sum(axis=1) >= min_lung_contact * np.maximum(faces, 1))
    keep[0] = False
    side = np.where(contact[:, 1] >= contact[:, 2], 1, 2).astype(labels.dtype)
    kept = keep[ids]  # kept pockets never touch the box edge, so all their voxels are in coords
    if not kept.any():
        return 0, None
    add = tuple(c[kept] for c in coords)
    lab[add] = side[ids[kept]]
    return int(kept.sum()), tuple(slice(int(c.min()) + b.start, int(c.max()) + 1 + b.start) for c, b in zip(add, box))


def clean_nodules(out: np.ndarray, spacing: np.ndarray, min_nodule_mm: float = MIN_NODULE_MM) -> np.ndarray:
    """Drop nodule components smaller than min_nodule_mm or away from the lungs (in place)."""
    coords = voxels(out == NODULE)
    ids, n = label_voxels(coords, out.shape)
    if not n:
        return out
    big = np.bincount(ids) >= min_nodule_size(spacing, min_nodule_mm, out.ndim)
    near_lung = np.zeros(n + 1, dtype=bool)
    near_lung[ids[_touches(out, coords, LUNGS, radius=2)]] = True
    drop = ~(big & near_lung)[ids]
    out[tuple(c[drop] for c in coords)] = 0
    return out


def low_confidence_map(probabilities: np.ndarray, threshold: float = 0.7) -> np.ndarray:
    """Voxels where the winning class has probability below `threshold` while some structure
    (not background) is plausible: the borders and regions a reader should check."""
    p = np.asarray(probabilities, dtype=np.float32)
    winner = p.max(axis=0)
    foreground = 1.0 - p[0]
    return (winner < threshold) & (foreground > 1.0 - threshold)
