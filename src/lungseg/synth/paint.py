"""Coarse-grid fields: soft-tissue HU image, lung HU image, tissue labels, lung and bone distances.

Painter's algorithm: each structure blends its HU over what is below with an anti-aliased
coverage `clip(0.5 - d / w, 0, 1)` of its distance field d, and claims the voxels it covers by
half or more in the tissue map. The lungs are not painted here: their coverage is computed on the
fine grid from the upsampled lung distance (sharp pleura), blending `soft` (what surrounds the
lungs) with `lung` (parenchyma with pathology).
"""
from __future__ import annotations

import numpy as np

from .anatomy import BIG, Anatomy
from .grid import Grid, smooth_noise
from .shapes import ellipsoid, eval_min_grid
from .tissue import Tissue as T

MED_TISSUE = {  # mediastinal structure -> (tissue, HU key)
    "column": (T.FAT, "fat"), "spine": (T.MUSCLE, "muscle"), "hilum": (T.LYMPH_NODE, "muscle"),
    "esophagus": (T.ESOPHAGUS, "muscle"), "trachea": (T.MUSCLE, "muscle"), "aorta": (T.GREAT_VESSEL, "arterial"),
    "vena_cava": (T.GREAT_VESSEL, "venous"), "pulmonary_artery": (T.GREAT_VESSEL, "arterial"),
    "pulmonary_vein": (T.GREAT_VESSEL, "venous"), "left_atrium": (T.HEART, "venous"),
}


class Painter:
    def __init__(self, grid: Grid, hu: dict):
        self.grid = grid
        self.hu = hu
        self.w = float(np.mean(grid.spacing[:2]))
        self.soft = np.full(grid.shape, hu["air"], np.float32)
        self.tissue = np.zeros(grid.shape, np.uint8)

    def paint(self, d, value, tissue, sl=(slice(None),) * 3, target=None, frac: float = 1.0):
        img = self.soft if target is None else target
        a = np.clip(0.5 - d / self.w, 0.0, 1.0).astype(np.float32)
        if frac != 1.0:
            a *= frac
        view = img[sl]
        a = np.broadcast_to(a, view.shape)
        view += a * (np.asarray(value, np.float32) - view)
        if tissue is not None:
            tv = self.tissue[sl]
            tv[a >= 0.5] = tissue

    def coords(self, lo=None, hi=None):
        g = self.grid
        if lo is None:
            sl = (slice(None),) * 3
        else:
            sl = g.index_box(lo, hi)
        X = g.axis(2)[sl[2]][None, None, :]
        Y = g.axis(1)[sl[1]][None, :, None]
        Z = g.axis(0)[sl[0]][:, None, None]
        return sl, X, Y, Z


def paint_coarse(anat: Anatomy, grid: Grid, params: dict, rng: np.random.Generator) -> dict:
    """All coarse fields of a case: soft, lung (HU), tissue (uint8), lung_sdf, bone_sdf (mm)."""
    hu = params["hu"]
    path = params["pathology"]
    P = Painter(grid, hu)
    sp = np.asarray(grid.spacing)
    fine = smooth_noise(rng, grid.shape, max(1.0, 1.2 / sp.min()))
    blot = smooth_noise(rng, grid.shape, max(1.0, 5.0 / sp.min()))
    sl, X, Y, Z = P.coords()

    _table(P, anat, hu)
    d_cav = anat.cavity_sdf(X, Y, Z)
    anat.cavity_grid = d_cav
    d_body = anat.body_sdf(X, Y, Z)
    P.paint(d_body, hu["skin"], T.MUSCLE)
    P.paint(d_body + 1.8, hu["fat"] + 6 * fine + 4 * blot, T.FAT)
    fat_d = anat.fat_depth(X, Y, Z)
    P.paint(d_body + fat_d + 1.8, hu["muscle"] + 5 * fine, T.MUSCLE)
    # a fat plane between the superficial and deep muscle layers, with gaps
    plane = np.abs(d_body + fat_d + 1.8 + anat.a["muscle_plane"]) - 1.0 + 2.5 * np.clip(blot, 0, None)
    P.paint(np.maximum(plane, d_cav_outer(anat, X, Y, Z)), hu["fat"] + 10 * fine, T.FAT)
    if anat.a["breast"] > 0:
        _breasts(P, anat, hu, blot)
    del d_body, fat_d, plane

    _abdomen(P, anat, hu, path, d_cav, fine)
    med = np.full(grid.shape, BIG, np.float32)
    eval_min_grid(anat.med, grid, med)
    _mediastinum(P, anat, hu, d_cav, med, fine, rng)
    P.paint(anat.canal_sdf(X, Y, Z), hu["csf"], T.SPINAL_CANAL)
    cart = np.full(grid.shape, BIG, np.float32)
    eval_min_grid(anat.cartilage, grid, cart, margin=5)
    P.paint(cart, hu["cartilage"] + 15 * fine, T.CARTILAGE)
    del cart

    lung_sdf = np.maximum(np.maximum(d_cav, -med), anat.diaphragm_sdf(X, Y, Z)).astype(np.float32)
    del med
    lung = _lung_field(P, anat, params, X, Y, Z, d_cav, lung_sdf, fine, blot, rng)
    bone = np.full(grid.shape, BIG, np.float32)
    eval_min_grid(anat.bones, grid, bone, margin=5)
    anat.cavity_grid = None
    return dict(soft=P.soft, lung=lung, tissue=P.tissue, lung_sdf=lung_sdf, bone_sdf=bone)


def d_cav_outer(anat: Anatomy, X, Y, Z):
    """Negative outside the rib layer: keeps muscle-layer details off the ribs and cavity."""
    return -(anat._cav(X, Y, Z) - anat.a["rib_layer"] - 3.0)


# ---- body and surroundings ---------------------------------------------------------------------
def _table(P: Painter, anat: Anatomy, hu: dict):
    g = P.grid
    X = g.axis(2)[None, :]
    Y = g.axis(1)[:, None]
    y0 = anat.y_back() + anat.a["table_gap"] + 1.0
    top = y0 - 28.0 * np.clip(np.abs(X) / 230.0, 0, 1) ** 2  # the couch curves up at its sides
    inside_x = np.abs(X) - 230.0
    foam = np.maximum(np.maximum(top - Y, Y - (top + 30.0)), inside_x)
    shell = np.maximum(np.minimum(np.abs(Y - top) - 1.2, np.abs(Y - (top + 30.0)) - 1.5), inside_x)
    img = np.full(g.shape[1:], hu["air"], np.float32)
    lab = np.zeros(g.shape[1:], np.uint8)
    for d, v in ((foam, -880.0), (shell, hu["table"])):
        a = np.clip(0.5 - d / P.w, 0, 1)
        img += a * (v - img)
        lab[a >= 0.5] = T.TABLE
    P.soft[:] = img[None]
    P.tissue[:] = lab[None]


def _breasts(P: Painter, anat: Anatomy, hu: dict, blot):
    w, front, back = anat.body_dims(anat.a["z_carina"] - 55)
    b = anat.a["breast"]
    for sx in (-1, 1):
        c = (sx * 0.4 * float(w), -float(front) + 0.1 * b, anat.a["z_carina"] - 55)
        e = ellipsoid(c, (1.0 * b, 0.45 * b, 0.75 * b))
        sl, X, Y, Z = P.coords(e.lo, e.hi)
        gland = np.clip(blot[sl] * 0.6 + 0.5, 0, 1)
        P.paint(e.fn(X, Y, Z), hu["fat"] + gland * (25.0 - hu["fat"]), T.GLAND, sl)


def _abdomen(P: Painter, anat: Anatomy, hu: dict, path: dict, d_cav, fine):
    a = anat.a
    sl, X, Y, Z = P.coords()
    zd = anat.diaphragm_sdf(X, Y, Z) + Z
    d_abd = np.maximum(d_cav, Z - (zd - 4.0))
    P.paint(d_abd, hu["fat"] + 10 * fine, T.FAT)
    yn = (Y - anat.yc0) / anat.b0
    x_lim = anat.xm + 5 + 55 * np.clip(-yn, 0, 1)  # the left lobe of the liver reaches left in front
    P.paint(np.maximum(d_abd + 2, X - x_lim), hu["liver"] + 6 * fine, T.LIVER)
    s = a["scale"]
    zl = a["dome_left"]
    st_c = (anat.xm + 0.42 * anat.a0, anat.yc0 - 0.25 * anat.b0, zl - 48 * s)
    st_r = (48 * s, 44 * s, 42 * s)
    st = ellipsoid(st_c, st_r)
    sp = ellipsoid((anat.xm + 0.72 * anat.a0, anat.yc0 + 0.5 * anat.b0, zl - 45 * s), (28 * s, 50 * s, 45 * s))
    for prim, t, v in ((sp, T.SPLEEN, hu["spleen"]), (st, T.STOMACH, hu["stomach"])):
        s2, X2, Y2, Z2 = P.coords(prim.lo, prim.hi)
        P.paint(np.maximum(prim.fn(X2, Y2, Z2), d_abd[s2] + 2), v + 6 * fine[s2], t, s2)
    if path["gas"]:
        s2, X2, Y2, Z2 = P.coords(st.lo, st.hi)
        level = st_c[1] - st_r[1] + path["gas_size"]  # supine: gas rises to the front
        d = np.maximum(np.maximum(st.fn(X2, Y2, Z2) + 2.5, d_abd[s2] + 4), Y2 - level)
        P.paint(d, hu["air"], T.GAS, s2)
        colon = ellipsoid((anat.xm + 0.62 * anat.a0, anat.yc0 - 0.35 * anat.b0, zl - 80 * s), (20 * s, 15 * s, 14 * s))
        s3, X3, Y3, Z3 = P.coords(colon.lo, colon.hi)
        P.paint(np.maximum(colon.fn(X3, Y3, Z3), d_abd[s3] + 3), hu["air"], T.GAS, s3)


def _mediastinum(P: Painter, anat: Anatomy, hu: dict, d_cav, med, fine, rng):
    inside = np.maximum(med, d_cav)
    P.paint(inside, hu["fat"] + 8 * fine, T.FAT)
    for prim in anat.med:
        if prim.name in ("column", "heart"):
            continue
        tissue, key = MED_TISSUE[prim.name]
        sl, X, Y, Z = P.coords(tuple(v - 3 for v in prim.lo), tuple(v + 3 for v in prim.hi))
        P.paint(np.maximum(prim.fn(X, Y, Z), d_cav[sl]), hu[key] + 4 * fine[sl], tissue, sl)
    # heart: epicardial fat, myocardium, then the blood pools either side of the septum
    hp = next(p for p in anat.med if p.name == "heart")
    sl, X, Y, Z = P.coords(hp.lo, hp.hi)
    dh = hp.fn(X, Y, Z)
    fat = anat.a["heart"]["fat"]
    P.paint(dh, hu["fat"] + 8 * fine[sl], T.FAT, sl)
    P.paint(dh + fat, hu["myocardium"] + 4 * fine[sl], T.HEART, sl)
    # chambers in the heart's own axes (x along the long axis toward the apex, y toward the back):
    # the left ventricle's thick wall behind, the right ventricle's thin crescent in front
    R, c, r = anat.heart_R, anat.heart_c, anat.heart_r
    xl = R[0, 0] * (X - c[0]) + R[0, 1] * (Y - c[1]) + R[0, 2] * (Z - c[2])
    yl = R[1, 0] * (X - c[0]) + R[1, 1] * (Y - c[1]) + R[1, 2] * (Z - c[2])
    zl = R[2, 0] * (X - c[0]) + R[2, 1] * (Y - c[1]) + R[2, 2] * (Z - c[2])
    lv = (np.sqrt(((xl - 0.12 * r[0]) / (0.62 * r[0])) ** 2 + ((yl - 0.22 * r[1]) / (0.5 * r[1])) ** 2
                  + (zl / (0.62 * r[2])) ** 2) - 1) * 0.5 * r[1]
    rv = (np.sqrt(((xl + 0.05 * r[0]) / (0.7 * r[0])) ** 2 + ((yl + 0.45 * r[1]) / (0.42 * r[1])) ** 2
                  + (zl / (0.6 * r[2])) ** 2) - 1) * 0.42 * r[1]
    P.paint(np.maximum(rv, np.maximum(-lv - 9.0, dh + fat + 3.0)), hu["venous"] + 4 * fine[sl], T.HEART, sl)
    P.paint(np.maximum(lv, dh + fat + 8.0), hu["arterial"] + 4 * fine[sl], T.HEART, sl)
    # a few lymph nodes in the mediastinal fat (paratracheal, subcarinal, hilar)
    c = anat.carina
    for _ in range(int(rng.integers(2, 6))):
        off = rng.uniform((-25, -18, -40), (25, 5, 30))
        r = rng.uniform(3, 7, 3)
        e = ellipsoid(c + off, r)
        sl, X, Y, Z = P.coords(e.lo, e.hi)
        d = np.maximum(e.fn(X, Y, Z), med[sl])
        lymph = P.tissue[sl] == T.FAT
        P.paint(np.where(lymph, d, BIG), hu["muscle"] - 5 + 4 * fine[sl], T.LYMPH_NODE, sl)


# ---- lung parenchyma and pathology ------------------------------------------------------------
def _lung_field(P: Painter, anat: Anatomy, params: dict, X, Y, Z, d_cav, lung_sdf, fine, blot, rng):
    hu, path, a = params["hu"], params["pathology"], anat.a
    yn = (Y - anat.cav_yc(Z)) / anat.cav_b(Z)
    lung = (hu["lung"] + hu["lung_gradient"] * 0.5 * np.clip(yn, -1, 1) + 14 * blot + 7 * fine).astype(np.float32)
    in_lung = lung_sdf < 0
    P.tissue[in_lung] = T.LUNG
    if path["emphysema"]:
        from scipy.special import ndtri

        holes = smooth_noise(rng, P.grid.shape, max(1.0, 3.5 / min(P.grid.spacing)))
        u = np.clip(anat._u(Z), 0, 1)
        # about `severity` of the lung destroyed, more in the upper zones (centrilobular pattern)
        thr = ndtri(1.0 - path["emphysema_severity"]) - 0.9 * (u - 0.5)
        m = np.clip((holes - thr) * 4.0, 0, 1).astype(np.float32)
        lung += m * (-990.0 - lung)
        P.tissue[in_lung & (m >= 0.5)] = T.EMPHYSEMA
    if path["consolidation"]:
        c = np.asarray(path["consolidation_point"])
        r = path["consolidation_size"]
        lobe = anat.lobe(X, Y, Z)
        d = ellipsoid(c, (r, 0.8 * r, 1.1 * r)).fn(X, Y, Z) + 12.0 * blot
        d = np.where(lobe == path["consolidation_lobe"], d, np.maximum(d, 3.0))
        P.paint(d, hu["consolidation"] + 12 * blot + 6 * fine, None, target=lung)
        P.tissue[in_lung & (d < 0)] = T.CONSOLIDATION
    if path["effusion"]:
        # supine: fluid lies along the dependent (posterior) chest wall as a crescent, thickest at the
        # back of the base, thinning toward the sides and upward; the lung floats on it
        depth = path["effusion_depth"] * 2 * anat.b0
        top = anat.z_low + path["effusion_height"] * (anat.z_apex - anat.z_low)
        taper = np.sqrt(np.clip((top - Z) / (top - anat.z_low), 0, 1))
        dependent = np.clip(0.35 + 0.65 * yn, 0, 1) ** 1.5
        d = (-d_cav - depth * taper * dependent + 4.0 * blot).astype(np.float32)
        sides = path["effusion_sides"]
        if sides != "both":
            d = np.where(anat.is_left(X, Y, Z) == (sides == "left"), d, BIG)
        band = np.clip(1.0 - d / 8.0, 0, 1) * (d > 0)  # compressive atelectasis next to the fluid
        lung += (0.6 * band).astype(np.float32) * (-380.0 + 40 * blot - lung)
        P.paint(d, hu["effusion"] + 4 * fine, None, target=lung)
        P.tissue[in_lung & (d < 0)] = T.EFFUSION
    return lung
