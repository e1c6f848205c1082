"""A CT as another scanner setting would have reconstructed it: other slice thickness, same patient.

Users' chest CTs come at 0.6-1.25 mm, 2.5 mm and 3-5 mm slices; lungseg's one whole real scan with
reads (LIDC-IDRI-0003) is 2.5 mm. `reslice` makes the other settings from it. Each new slice is the
mean of the scan over a slab `slice_mm` thick (a reconstructed slice integrates over its thickness,
so thick slices blur small nodules through partial volume, as on a real 5 mm scan), sampled from the
scan linearly interpolated along z at SAMPLES_PER_SLAB points. Slices thinner than the scan's get
the same slab means, which there come close to the scan's linear interpolation (no detail is
invented). The slabs tile the scan's extent from its first
slice's lower edge; world positions are kept (origin and direction moved consistently), so
readers' marks in LPS mm still land on their nodules.
"""
from __future__ import annotations

import numpy as np

SAMPLES_PER_SLAB = 8


def reslice(ct, slice_mm: float):
    """`ct` (a lungseg CTImage, slices along its third index axis) at `slice_mm` slice spacing and
    thickness."""
    n, dz = ct.shape[0], ct.spacing_zyx[0]
    count = int(np.floor(n * dz / slice_mm + 1e-6))
    if slice_mm <= 0 or count < 1:
        raise ValueError(f"cannot reslice {n} slices of {dz} mm to {slice_mm} mm slices")
    # positions in units of the scan's slice index: slab j covers [j, j+1) * slice_mm from the lower edge
    offsets = (np.arange(SAMPLES_PER_SLAB) + 0.5) / SAMPLES_PER_SLAB
    samples = ((np.arange(count)[:, None] + offsets[None]) * slice_mm - dz / 2) / dz
    samples = np.clip(samples, 0, n - 1)
    i0 = np.floor(samples).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (samples - i0).astype(np.float32)
    out = np.empty((count, *ct.shape[1:]), dtype=np.float32)
    for j in range(count):
        acc = np.zeros(ct.shape[1:], dtype=np.float32)
        for a, b, wk in zip(i0[j], i1[j], w[j]):
            acc += ct.array[a] * (1 - wk) + ct.array[b] * wk
        out[j] = acc / SAMPLES_PER_SLAB
    first_centre = (slice_mm - dz) / 2 / dz  # in the scan's slice index
    origin = ct.physical_points(np.array([[first_centre, 0.0, 0.0]]))[0]
    return ct.with_array(out, spacing=(ct.spacing[0], ct.spacing[1], float(slice_mm)),
                         origin=tuple(float(v) for v in origin), original=None,
                         format="array", meta={})  # no longer the file's (DICOM) slices
