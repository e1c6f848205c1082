"""3D patches around candidate findings at isotropic spacing: what the candidate scorer sees.

Each patch is PATCH^3 voxels of PATCH_MM mm (isotropic, whatever the scan's spacing), centred on
the candidate's centroid, with two channels: the CT (HU clipped to the lung-mediastinum range
and scaled to about -1..1) and the candidate itself (1 inside it), so a nodule touching a vessel
is told apart from the vessel.

Beyond the scan's first and last slice the anatomy goes on: on a scan at least as long as the
patch (40 mm) out-of-scan voxels repeat the edge slice, so a vessel cut by the field of view stays
a tube instead of ending in a blob (benchmarks/slab_detection.py: 4 false findings in 15 slabs of
LIDC-IDRI-0003 instead of 10, the same 9 of 9 nodules found). A shorter stack, like the LIDC crop
stacks the scorer learnt from (a nodule's own slices, padded with air), is padded with air as in
training. In-plane, out-of-scan voxels are air (outside the body) either way."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

PATCH = 32  # voxels per side
PATCH_MM = 1.25  # mm per voxel: a 40 mm field, room for the context around a 30 mm nodule
HU_RANGE = (-1000.0, 400.0)


def patch_offsets(spacing_zyx) -> np.ndarray:
    """(3, PATCH) index offsets of the patch grid along z, y, x for a scan of this spacing."""
    steps = (np.arange(PATCH, dtype=np.float64) - (PATCH - 1) / 2) * PATCH_MM
    return np.stack([steps / s for s in spacing_zyx])


def normalise_hu(values: np.ndarray) -> np.ndarray:
    lo, hi = HU_RANGE
    return ((np.clip(values, lo, hi) - (lo + hi) / 2) / ((hi - lo) / 2)).astype(np.float32)


def candidate_patches(ct_array: np.ndarray, spacing_zyx, box, coords, ids, components) -> np.ndarray:
    """(len(components), 2, PATCH, PATCH, PATCH) float32 patches of the given component numbers.
    box/coords/ids: the candidates as lungseg.inference.candidates.Candidates holds them."""
    parts = [p for _, p in iter_candidate_patches(ct_array, spacing_zyx, box, coords, ids, components)]
    return np.concatenate(parts) if parts else np.empty((0, 2, PATCH, PATCH, PATCH), np.float32)


def iter_candidate_patches(ct_array: np.ndarray, spacing_zyx, box, coords, ids, components, chunk: int = 64):
    """(component numbers, their patches) `chunk` at a time: bounded memory (64 patches are 16 MB),
    and the candidates' label volume and centres are built once for all chunks."""
    components = np.asarray(components, dtype=np.intp)
    if not len(components):
        return
    box_shape = tuple(s.stop - s.start for s in box)
    id_volume = np.zeros(box_shape, np.int32)
    id_volume[coords] = ids
    offsets = patch_offsets(spacing_zyx)
    counts = np.maximum(np.bincount(ids, minlength=int(ids.max(initial=0)) + 1), 1)
    centres = np.stack([np.bincount(ids, weights=c, minlength=len(counts)) / counts for c in coords], axis=1)
    origin = np.array([s.start for s in box], dtype=np.float64)
    repeat_edges = ct_array.shape[0] * spacing_zyx[0] >= PATCH * PATCH_MM
    for start in range(0, len(components), chunk):
        part = components[start:start + chunk]
        out = np.empty((len(part), 2, PATCH, PATCH, PATCH), np.float32)
        for k, comp in enumerate(part):
            grid = np.meshgrid(*(centres[comp][a] + offsets[a] for a in range(3)), indexing="ij")
            at = [g + o for g, o in zip(grid, origin)]
            if repeat_edges:
                at[0] = np.clip(at[0], 0, ct_array.shape[0] - 1)  # the edge slice goes on beyond the scan
            out[k, 0] = normalise_hu(ndi.map_coordinates(ct_array, at, order=1, mode="constant", cval=HU_RANGE[0]))
            out[k, 1] = ndi.map_coordinates(id_volume, grid, order=0, mode="constant", cval=0) == comp
        yield part, out
