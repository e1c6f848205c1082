"""Fine-grid composition, one slab of slices at a time (small temporaries, cache friendly):
upsample the coarse fields, cut the lungs with the exact pleura, add bone shells, fissures,
vessels, airways, nodules and tumours at full resolution, then the scanner's noise and blur."""
from __future__ import annotations

from functools import partial

import numpy as np

from .acquisition import blur_and_noise, fov_mask, mix_slices, noise_amplitude, z_weights
from .anatomy import Anatomy
from .grid import Grid, upsample, upsample_nearest
from .pathology import render_nodule
from .tissue import LUNG_TISSUES
from .tissue import Tissue as T
from .tubes import prepare, rasterize, sheet_coverage
from .tumours import TUMOUR_LOCATIONS, render_tumour

SLAB_VOXELS = 3_000_000
VESSEL_MIN_RADIUS_MM = 0.4  # thinner vessels are drawn only on grids finer than 1.6 mm
CORTEX_MM = 1.4
FISSURE_MM = 0.3
FISSURES = ("right_oblique", "left_oblique", "right_horizontal")

_LUNGISH = np.zeros(256, bool)
_LUNGISH[[int(t) for t in LUNG_TISSUES]] = True


def render(grid: Grid, factors, fields: dict, anat: Anatomy, trees: dict, nodules: list[dict], params: dict,
           rng: np.random.Generator, progress=None):
    """HU volume (float32), public labels and tissue labels on the fine grid."""
    hu_t, acq = params["hu"], params["acquisition"]
    nz, ny, nx = grid.shape
    sp = grid.spacing
    w_n = float(np.mean(sp[:2]))
    vox = float(min(sp[:2]))
    hu = np.empty(grid.shape, np.float32)
    labels = np.zeros(grid.shape, np.uint8)
    tissue = np.zeros(grid.shape, np.uint8)
    tubes = _prepare_tubes(grid, trees, vox)
    amp = noise_amplitude(acq, grid)
    waves = _texture_waves(rng)
    step = max(1, SLAB_VOXELS // (ny * nx))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        zr = (z0, z1)
        X, Y, Z = grid.axis(2)[None, None, :], grid.axis(1)[None, :, None], grid.axis(0)[z0:z1, None, None]
        h = upsample(fields["soft"], factors, grid.shape, zr)
        dl = upsample(fields["lung_sdf"], factors, grid.shape, zr)
        a_l = np.clip(0.5 - dl / w_n, 0, 1)
        h += a_l * (upsample(fields["lung"], factors, grid.shape, zr) - h)
        lung = dl < 0
        lab = np.where(lung, np.where(X >= anat.midline(Y, Z), 2, 1), 0).astype(np.uint8)
        tis = upsample_nearest(fields["tissue"], factors, grid.shape, zr)
        lungish = _LUNGISH[tis]
        tis[lung & ~lungish] = T.LUNG
        tis[~lung & lungish] = T.MUSCLE
        _bones(h, tis, upsample(fields["bone_sdf"], factors, grid.shape, zr), hu_t, w_n)
        if acq["fissures"]:
            _fissures(h, tis, anat, X, Y, Z, a_l, lung, sp, waves)
        rest = a_l * (tis != T.EFFUSION)  # no vessels or airways in pleural fluid
        _vessels(h, tis, tubes, grid, zr, rest, hu_t)
        _airways(h, tis, lab, tubes, grid, zr, rest)
        _lesions(h, lab, tis, nodules, grid, zr, a_l, dl, lung, hu_t, waves)
        blur_and_noise(h, acq, grid, rng, amp)
        hu[z0:z1], labels[z0:z1], tissue[z0:z1] = h, lab, tis
        if progress is not None:
            progress(z1 - z0)
    mix_slices(hu, *z_weights(acq, grid))
    if acq["padding"] is not None:
        inside = fov_mask(grid, (0.0, 0.0) if "fov_center" not in params["grid"] else params["grid"]["fov_center"])
        hu[:, ~inside] = acq["padding"]
        tissue[:, ~inside] = T.OUTSIDE
        labels[:, ~inside] = 0
    np.rint(hu, out=hu)
    np.clip(hu, -3024, 3071, out=hu)
    return hu, labels, tissue


def _prepare_tubes(grid: Grid, trees: dict, vox: float) -> dict:
    aw, c, lob = trees["airway"], trees["central"], trees["lobar"]
    visible_lumen = aw["r"] >= max(0.6, 0.3 * vox)
    art, vein = trees["artery"], trees["vein"]
    # lobar arteries join the pulmonary artery ends in the hila to the lobar roots of the tree
    roots = art["parent"] < 0
    return dict(
        central=prepare(c["a"], c["b"], np.stack([c["r"] + c["wall"], c["r"]], 1), grid),
        lobar=prepare(lob["a"], lob["b"], np.stack([lob["r"] + lob["wall"], lob["r"]], 1), grid),
        airway=prepare(aw["a"][visible_lumen], aw["b"][visible_lumen],
                       np.stack([aw["r"] + aw["wall"], aw["r"]], 1)[visible_lumen], grid),
        artery=prepare(art["a"], art["b"], art["r"], grid, min_radius=max(VESSEL_MIN_RADIUS_MM, 0.25 * vox)),
        vein=prepare(vein["a"], vein["b"], vein["r"], grid, min_radius=max(VESSEL_MIN_RADIUS_MM, 0.25 * vox)),
        lobar_artery=prepare(trees["pa_ends"][roots], art["a"][roots], art["r"][roots], grid),
    )


def _lesions(h, lab, tis, nodules, grid, zr, a_l, dl, lung, hu_t, waves):
    """Nodules (inside the lung) and tumours (the lung plus the soft tissue they abut): label 3."""
    z0, z1 = zr
    texture = partial(_texture, waves)
    for nod in nodules:
        tumour = nod["location"] in TUMOUR_LOCATIONS
        if tumour:
            res = render_tumour(nod, grid, z0, z1, h, a_l, dl, tis, texture)
        else:
            res = render_nodule(nod, grid, z0, z1, h, a_l, hu_t["nodule"], texture)
        if res is None:
            continue
        local, occ = res
        m = (occ >= 0.5) if tumour else (occ >= 0.5) & lung[local]  # a tumour's room is set by render_tumour
        lab[local][m] = 3
        tis[local][m] = T.TUMOUR if tumour else T.NODULE


def _bones(h, tis, db, hu_t, w_n):
    idx = np.flatnonzero(db < 0.5 * w_n)
    if idx.size == 0:
        return
    d = db.reshape(-1)[idx]
    a = np.clip(0.5 - d / w_n, 0, 1)
    hv = h.reshape(-1)[idx]
    marrow = d < -CORTEX_MM
    texture = np.clip(hv - hu_t["muscle"], -30, 30) * 3.0  # reuse the soft-tissue mottle
    target = np.where(marrow, hu_t["marrow"] + texture, hu_t["cortical"])
    h.reshape(-1)[idx] = hv + a * (target - hv)
    t = tis.reshape(-1)
    own = a >= 0.5
    t[idx[own]] = np.where(marrow[own], T.MARROW, T.BONE)


def _fissures(h, tis, anat: Anatomy, X, Y, Z, a_l, lung, spacing, waves):
    """Visceral pleura between lobes: a sub-millimetre sheet, seen as a faint line.

    Only voxels in a thin band around each plane are evaluated (the distance is separable)."""
    hf, tf, af, lf = h.reshape(-1), tis.reshape(-1), a_l.reshape(-1), lung.reshape(-1)
    obl_r = None
    for which in FISSURES:
        g = anat.fissure_normal(which)
        norm = float(np.linalg.norm(g))
        width = float(np.sqrt(sum((s * v) ** 2 for s, v in zip(spacing, g)))) / norm
        reach = (0.5 * width + FISSURE_MM) * norm
        d = anat.fissure_dist(X, Y, Z, which)  # broadcasts from 1-D pieces
        idx = np.flatnonzero((np.abs(d) < reach) & lung)
        if idx.size == 0:
            continue
        zi, yi, xi = np.unravel_index(idx, h.shape)
        Xv, Yv, Zv = X.reshape(-1)[xi], Y.reshape(-1)[yi], Z.reshape(-1)[zi]
        left = anat.is_left(Xv, Yv, Zv)
        on_side = left if which == "left_oblique" else ~left
        if which == "right_horizontal":
            on_side &= anat.fissure_dist(Xv, Yv, Zv, "right_oblique") < 0  # only in front of the oblique
        dv = d.reshape(-1)[idx] if d.size == h.size else np.broadcast_to(d, h.shape).reshape(-1)[idx]
        gaps = np.clip(0.4 + 0.6 * _texture(waves, Xv, Yv, Zv), 0, 1)  # fissures are often incomplete
        occ = sheet_coverage(np.abs(dv) / norm, FISSURE_MM, width) * af[idx] * on_side * gaps
        hv = hf[idx]
        hf[idx] = hv + occ * (-60.0 - hv)
        tf[idx[occ >= 0.5]] = T.FISSURE


def _vessels(h, tis, tubes, grid, zr, rest, hu_t):
    art = np.zeros(h.shape, np.float32)
    vein = np.zeros(h.shape, np.float32)
    rasterize(tubes["artery"], grid, *zr, [art])
    rasterize(tubes["vein"], grid, *zr, [vein])
    art *= rest
    vein *= rest
    rasterize(tubes["lobar_artery"], grid, *zr, [art])
    h += art * (hu_t["arterial"] - h)
    h += vein * (hu_t["venous"] - h)
    tis[art >= 0.5] = T.ARTERY
    tis[vein >= 0.5] = T.VEIN


def _airways(h, tis, lab, tubes, grid, zr, rest):
    outer = np.zeros(h.shape, np.float32)
    inner = np.zeros(h.shape, np.float32)
    rasterize(tubes["airway"], grid, *zr, [outer, inner])
    outer *= rest
    inner *= rest
    rasterize(tubes["lobar"], grid, *zr, [outer, inner])
    h += outer * (30.0 - h)
    h += inner * (-1000.0 - h)
    tis[outer >= 0.5] = T.AIRWAY_WALL
    tis[inner >= 0.5] = T.AIRWAY
    outer[:] = 0
    inner[:] = 0
    rasterize(tubes["central"], grid, *zr, [outer, inner])
    h += outer * (60.0 - h)
    h += inner * (-1000.0 - h)
    tis[outer >= 0.5] = T.TRACHEA_WALL
    tis[inner >= 0.5] = T.TRACHEA
    lab[outer >= 0.5] = 0  # trachea and main bronchi are not lung


def _texture_waves(rng):
    k = rng.normal(size=(4, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= rng.uniform(0.6, 1.6, (4, 1))  # wavelengths of 4-10 mm
    return k.astype(np.float32), rng.uniform(0, 2 * np.pi, 4).astype(np.float32)


def _texture(waves, X, Y, Z):
    k, ph = waves
    t = 0
    for i in range(len(ph)):
        t = t + np.sin(k[i, 0] * X + k[i, 1] * Y + k[i, 2] * Z + ph[i])
    return (t / np.sqrt(len(ph) / 2)).astype(np.float32)
