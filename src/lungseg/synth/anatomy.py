"""The phantom's anatomy as distance-like fields in the patient frame (mm, negative inside).

X points to the patient's left, Y posterior, Z superior; Z = 0 is the top of the right diaphragm
dome. The thoracic cavity (inside the ribs) minus the mediastinum minus everything below the
diaphragm domes is the lungs; the mediastinum is a union of simple bodies (a central column,
heart, aorta, venae cavae, pulmonary trunk, hila, spine). Everything is a function of coordinate
arrays, so the same code fills a voxel grid and tests single points (tree attractors, nodules).
"""
from __future__ import annotations

import numpy as np

from .shapes import Prim, capsule, ellipsoid, eval_min, polyline, pwl, rotation, smooth_min

BIG = 1e3
LOBES = ("RUL", "RML", "RLL", "LUL", "LLL")


class Anatomy:
    def __init__(self, a: dict, z_range: tuple[float, float]):
        self.a = a
        self.z_bottom, self.z_top = z_range
        s = a["scale"]
        self.a0, self.b0, self.p = a["cav_a0"], a["cav_b0"], a["cav_p"]
        self.yc0 = a["cav_yc"]
        self.z_low, self.z_apex = a["z_low"], a["z_apex"]
        self.xm = a["xm"]
        # spine and posterior mediastinum, from back to front
        self.rv = a["vb_r"]
        self.y_back_cav = self.yc0 + self.b0 * (2.0 - a["cav_front"])  # deepest posterior gutter
        self.y_vb = self.y_back_cav - 0.6 * self.rv
        self.y_canal = self.y_vb + self.rv + 8.5 * s
        self.y_eso = self.y_vb - self.rv - 9 * s
        self.r_tr = a["trachea_r"]
        self.y_tr = self.y_eso - 9 * s - self.r_tr
        self.carina = np.array([self.xm - 1.0, self.y_tr + 4.0, a["z_carina"]])
        h = a["heart"]
        self.heart_c = np.array([self.xm + h["dx"], self.yc0 - h["dy"] * self.b0, a["dome_left"] + h["dz"]])
        self.heart_r = np.array([h["ax"], h["ay"], h["az"]])
        self.heart_R = rotation(-h["rot"], h["tilt"])
        self.z_heart_top = self.heart_c[2] + 0.85 * h["az"]
        self._bronchi()
        self.med = self._mediastinum()
        self.bones = self._bones()
        self.cartilage = [Prim(lambda X, Y, Z: self._ribs(X, Y, Z, cartilage=True),
                               (-self.a0 - 40, -self.b0 - 60, self.z_bottom), (self.a0 + 40, 0, self.z_top),
                               box_fn=lambda X, Y, Z, sl: self._ribs(X, Y, Z, cartilage=True, sl=sl))]
        self.cavity_grid: np.ndarray | None = None  # cavity_sdf on the grid being painted (a cache)

    # ---- cavity profile along Z ----------------------------------------------------------
    def _u(self, Z):
        return (Z - self.z_low) / (self.z_apex - self.z_low)

    def cav_a(self, Z):
        u = self._u(Z)
        k = self.a["apex_knee"]
        top = np.sqrt(np.clip(1 - (np.clip(u - k, 0, None) / (1 - k)) ** 2, 0, 1))
        return self.a0 * (1 - 0.1 * np.clip(u, 0, 1)) * np.maximum(top, 0.36)

    def cav_b(self, Z):
        u = self._u(Z)
        top = np.sqrt(np.clip(1 - (np.clip(u - 0.5, 0, None) / 0.5) ** 2, 0, 1))
        return self.b0 * (1 - 0.2 * np.clip(u, 0, 1)) * np.maximum(top, 0.5)

    def cav_yc(self, Z):
        u = self._u(Z)
        return self.yc0 + self.a["apex_shift_y"] * self.b0 * np.clip((u - 0.5) / 0.5, 0, 1)

    def cavity_sdf(self, X, Y, Z):
        A, B, yc = self.cav_a(Z), self.cav_b(Z), self.cav_yc(Z)
        Yr = Y - yc
        f = self.a["cav_front"]
        B = B * np.where(Yr < 0, f, 2.0 - f)
        rho = ((np.abs(X) / A) ** self.p + (np.abs(Yr) / B) ** self.p) ** (1.0 / self.p)
        r = np.sqrt(X * X + Yr * Yr)
        d = r * (1.0 - 1.0 / np.maximum(rho, 1e-3))
        # the two apical domes (cupulae) close the cavity on top
        ap = self.a
        y_ap = self.cav_yc(self.z_apex)
        z_cap = (self.z_apex - (np.abs(X) - ap["apex_x"]) ** 2 / (2 * ap["apex_rx"])
                 - (Y - y_ap) ** 2 / (2 * ap["apex_ry"]))
        return np.maximum(d, Z - z_cap)

    # ---- diaphragm -----------------------------------------------------------------------
    def diaphragm_z(self, X, Y, side: str):
        """Height of the lung base (top of the diaphragm) above (X, Y) for one side."""
        a = self.a
        xd = self.xm + (0.45 if side == "left" else -0.45) * self.a0
        top = a["dome_left"] if side == "left" else 0.0
        rec = a["recess"]
        yd = self.yc0 - 0.15 * self.b0
        ky = np.where(Y > yd, 1.1, 0.45) * rec
        return top - 3.4 * rec * ((X - xd) / self.a0) ** 2 - ky * ((Y - yd) / self.b0) ** 2

    def diaphragm_sdf(self, X, Y, Z):
        zd = np.where(self.is_left(X, Y, Z), self.diaphragm_z(X, Y, "left"), self.diaphragm_z(X, Y, "right"))
        return zd - Z

    # ---- lungs ---------------------------------------------------------------------------
    def mediastinum_sdf(self, X, Y, Z):
        return eval_min(self.med, X, Y, Z)

    def lung_sdf(self, X, Y, Z, med=None):
        med = self.mediastinum_sdf(X, Y, Z) if med is None else med
        return np.maximum(np.maximum(self.cavity_sdf(X, Y, Z), -med), self.diaphragm_sdf(X, Y, Z))

    def midline(self, Y, Z):
        """X of the plane between the lungs: the body midline, bent toward one side in front above
        the heart, where the anterior junction line often wanders off the midline."""
        yn = (Y - self.cav_yc(Z)) / self.cav_b(Z)
        front = np.clip((-yn - 0.3) / 0.4, 0, 1) * np.clip((Z - self.z_heart_top + 30) / 30, 0, 1)
        return self.xm + self.a["junction_shift"] * front

    def is_left(self, X, Y, Z):
        return X >= self.midline(Y, Z)

    def lobe(self, X, Y, Z):
        """Lobe index (see LOBES) of points assumed to be inside a lung."""
        left = self.is_left(X, Y, Z)
        obl = np.where(left, self.fissure_dist(X, Y, Z, "left_oblique"), self.fissure_dist(X, Y, Z, "right_oblique"))
        lower = obl > 0
        hor = self.fissure_dist(X, Y, Z, "right_horizontal") < 0  # below the horizontal fissure
        right = np.where(lower, 2, np.where(hor, 1, 0))
        return np.where(left, np.where(lower, 4, 3), right).astype(np.int8)

    def fissure_dist(self, X, Y, Z, which: str):
        """Signed distance (mm) to a fissure plane; > 0 on the lower-lobe (or below) side."""
        a = self.a
        H = self.z_apex - self.z_low
        if which == "right_horizontal":
            z_h = self.z_low + a["fissure_z_hor"] * H
            return z_h - Z + 0.08 * (Y - self.yc0)  # dips slightly toward the front
        z_post = self.z_low + a["fissure_z_post"] * H + (8.0 if which == "left_oblique" else 0.0)
        p1 = np.array([self.yc0 + self.b0, z_post])
        p2 = np.array([self.yc0 - 0.45 * self.b0, -12.0 + (a["dome_left"] if which == "left_oblique" else 0.0)])
        v = p2 - p1
        n = np.array([v[1], -v[0]]) / np.hypot(*v)  # normal in the (Y, Z) plane
        if n[0] < 0:
            n = -n  # point to posterior-inferior, the lower lobe
        lateral = np.abs(X - self.xm)
        # in axial slices the fissure runs from posteromedial to anterolateral, gently curved
        return (n[0] * (Y - p1[0]) + n[1] * (Z - p1[1]) + a["fissure_tilt"] * (lateral - 60.0)
                + a["fissure_bend"] * (lateral - 60.0) ** 2)

    def fissure_normal(self, which: str) -> np.ndarray:
        """Approximate gradient (X, Y, Z) of fissure_dist, for partial-volume widths."""
        if which == "right_horizontal":
            return np.array([0.0, 0.08, -1.0])
        H = self.z_apex - self.z_low
        z_post = self.z_low + self.a["fissure_z_post"] * H
        v = np.array([-1.45 * self.b0, -12.0 - z_post])
        n = np.abs(np.array([v[1], -v[0]])) / np.hypot(*v)
        return np.array([self.a["fissure_tilt"], n[0], n[1]])

    # ---- mediastinum ---------------------------------------------------------------------
    def _bronchi(self):
        a, s = self.a, self.a["scale"]
        c = self.carina
        tr, tl = np.radians(a["bronchus_angle_r"]), np.radians(a["bronchus_angle_l"])
        dr = np.array([-np.sin(tr), 0.15, -np.cos(tr)])
        dl = np.array([np.sin(tl), 0.2, -np.cos(tl)])
        self.bronchus_r = c + 22 * s * dr / np.linalg.norm(dr)
        self.bronchus_l = c + 46 * s * dl / np.linalg.norm(dl)

    def _column(self, X, Y, Z):
        a = self.a
        touch = a["touching_lungs"]
        wj = a["junction_touch_width"] if touch else a["junction_width"]
        top = a["z_arch"] + (45 if touch else 25)
        za = pwl(Z, [self.z_heart_top - 30, self.z_heart_top, top, self.z_apex], [14.0, wj, wj, a["w_inlet"]])
        zm = pwl(Z, [self.z_low, a["z_carina"], self.z_apex], [a["w_mid"] * 0.9, a["w_mid"], a["w_inlet"]])
        yn = (Y - self.cav_yc(Z)) / self.cav_b(Z)
        knee = -0.45 if touch else -0.7  # touching lungs meet over a deeper stretch behind the sternum
        w = pwl(yn, [-1.2, knee, -0.2, 0.2, 0.6], [za, za, 0.8 * zm, zm, a["w_post"] + 0 * zm])
        return np.abs(X - self.midline(Y, Z)) - w / 2

    def _mediastinum(self) -> list[Prim]:
        a, s = self.a, self.a["scale"]
        xm, zt, zb = self.xm, self.z_top + 60, self.z_bottom - 60
        prims: list[Prim] = []

        def add(items, name):
            for p in items if isinstance(items, list) else [items]:
                p.name = name
                prims.append(p)

        big = (BIG, BIG, BIG)
        add(Prim(self._column, tuple(-v for v in big), big), "column")
        h = a["heart"]
        add(Prim(ellipsoid(self.heart_c, self.heart_r, self.heart_R).fn, *_box(self.heart_c, self.heart_r)), "heart")
        la = self.heart_c + np.array([-12, 0.75 * h["ay"], 0.35 * h["az"]])
        add(ellipsoid(la, (32 * s, 20 * s, 20 * s)), "left_atrium")
        add(capsule((0, self.y_vb, zb), (0, self.y_vb, zt), self.rv + 4), "spine")
        ytr, ra = self.y_tr, a["aorta_r"]
        zc, zarch = a["z_carina"], a["z_arch"]
        x_dao, y_dao = xm + self.rv + 0.55 * ra, self.y_vb - 0.45 * self.rv
        root = self.heart_c + np.array([-8, -0.2 * h["ay"], 0.55 * h["az"]])
        aorta = [root, (xm - 3, ytr - 24, zarch - 12), (xm + 6, ytr - 6, zarch + 6),
                 (xm + 20, self.y_eso - 2, zarch), (x_dao, y_dao, zarch - 30), (x_dao, y_dao, zb)]
        add(polyline(aorta, [ra, ra, 0.9 * ra, 0.85 * ra, 0.8 * ra, 0.8 * ra]), "aorta")
        svc_x = xm - a["w_mid"] / 2 - 8
        svc = [(svc_x - 8, ytr - 12, zt), (svc_x, ytr - 16, zarch + 15), (svc_x, ytr - 12, self.z_heart_top - 20)]
        ivc = [(xm - 14, self.yc0 + 0.05 * self.b0, zb), (xm - 18, self.heart_c[1] + 10, -5.0)]
        add(polyline(svc, [10 * s] * 3), "vena_cava")
        add(polyline(ivc, [12 * s, 13 * s]), "vena_cava")
        add([capsule((xm, ytr - 16, zarch + 8), (xm - 16, ytr - 14, zt), 6.0 * s),
             capsule((xm + 8, ytr - 8, zarch + 10), (xm + 14, ytr - 6, zt), 4.5 * s),
             capsule((xm + 16, ytr, zarch + 6), (xm + 30, ytr + 4, self.z_apex - 15), 5.0 * s)], "aorta")
        add(capsule((xm + 45, ytr - 28, zarch + 35), (svc_x, ytr - 16, zarch + 22), 5.0 * s), "vena_cava")
        # pulmonary trunk and arteries to the hila, pulmonary veins to the left atrium
        rvot = self.heart_c + np.array([-5, -0.9 * h["ay"], 0.6 * h["az"]])
        bif = np.array([xm + 10, ytr - 10, zc - 10])
        self.pa_right_end = self.bronchus_r + (2, -14, -8)
        self.pa_left_end = self.bronchus_l + (4, 6, -8)
        add(polyline([rvot, bif], [14 * s, 13 * s]), "pulmonary_artery")
        add(polyline([bif, self.pa_right_end], [11 * s, 10 * s]), "pulmonary_artery")
        add(polyline([bif, (xm + 30, ytr + 4, zc - 2), self.pa_left_end], [11 * s, 10 * s, 9 * s]), "pulmonary_artery")
        self.pv_ends = {}
        for side, hil in (("right", self.bronchus_r), ("left", self.bronchus_l)):
            sx = -1 if side == "right" else 1
            sup = hil + (sx * 2, -16, -22)
            inf = hil + (0, 10, -45)
            self.pv_ends[side] = [sup, inf]
            add([capsule(sup, la, 7 * s), capsule(inf, la, 7 * s)], "pulmonary_vein")
            add(ellipsoid(hil + (sx * 2, 0, -6), (12 * s, 16 * s, 22 * s)), "hilum")
        add(capsule((xm + 2, self.y_eso, zt), (xm + 8, self.y_eso + 2, zb), 8 * s), "esophagus")
        add(capsule((xm - 1, ytr, zt), self.carina, self.r_tr + 2.5), "trachea")
        x_az, y_az = xm - self.rv * 0.6, self.y_vb - self.rv - 2
        add(polyline([(x_az, y_az, zb), (x_az, y_az, zc + 5), (svc_x, ytr - 8, zc + 8)], [4 * s] * 3), "vena_cava")
        self.left_atrium = la
        return prims

    # ---- body wall -----------------------------------------------------------------------
    def body_dims(self, Z):
        a = self.a
        fat = a["fat"]
        w = (self.a0 + a["rib_layer"] + a["muscle_lat"] + fat) * pwl(
            Z, [self.z_low, a["z_carina"], self.z_apex, self.z_apex + 60], [1.0, 1.03, 0.97, 0.9])
        front = np.maximum(self.cav_b(Z) - self.cav_yc(Z) + a["rib_layer"] + a["muscle_ant"] + fat * a["fat_ant"],
                           0.8 * (self.b0 + a["rib_layer"] + a["muscle_ant"] + fat * a["fat_ant"]))
        back = self.y_back_cav + a["rib_layer"] + a["muscle_post"] + fat * a["fat_post"]
        return w, front, back

    def body_sdf(self, X, Y, Z):
        w, front, back = self.body_dims(Z)
        yb = (back - front) / 2
        dpt = (back + front) / 2
        Yr = Y - yb
        rho = ((np.abs(X) / w) ** self.a["body_p"] + (np.abs(Yr) / dpt) ** self.a["body_p"]) ** (1 / self.a["body_p"])
        d = np.sqrt(X * X + Yr * Yr) * (1 - 1 / np.maximum(rho, 1e-3))
        d = np.maximum(d, Y - (back - 4.0))  # flattened on the table
        if self.a["breast"] > 0:
            b = self.a["breast"]
            zb = self.a["z_carina"] - 55
            wb, fb, _ = (float(v) for v in self.body_dims(np.float64(zb)))
            for sx in (-1, 1):
                c = (sx * 0.4 * wb, -fb + 0.45 * b, zb)  # supine: flattened, spread sideways
                e = ellipsoid(c, (1.6 * b, 0.8 * b, 1.2 * b)).fn(X, Y, Z)
                d = smooth_min(d, e, 12.0)
        return d

    def y_back(self):
        a = self.a
        return self.y_back_cav + a["rib_layer"] + a["muscle_post"] + a["fat"] * a["fat_post"] - 4.0

    def fat_depth(self, X, Y, Z):
        """Local subcutaneous fat thickness (mm)."""
        a = self.a
        phi = np.arctan2(np.abs(X), Y - self.yc0)  # 0 posterior, pi anterior
        return a["fat"] * pwl(phi, [0.0, np.pi / 2, np.pi], [a["fat_post"], 1.0, a["fat_ant"]])

    # ---- bones ---------------------------------------------------------------------------
    def _cav(self, X, Y, Z, sl=None):
        if sl is not None and self.cavity_grid is not None:
            return self.cavity_grid[sl]
        return self.cavity_sdf(X, Y, Z)

    def _ribs(self, X, Y, Z, cartilage: bool = False, sl=None):
        a = self.a
        hz, hr = a["rib_hz"], a["rib_hr"]
        dr = self._cav(X, Y, Z, sl) - (2.5 + hr)
        phi = np.arctan2(np.abs(X), Y - self.yc0)
        g = (1 - np.cos(phi)) / 2
        z1 = self.z_apex - 6.0
        q = (z1 - a["rib_drop"] * g - Z) / a["rib_pitch"] + 1.0
        k = np.rint(q)
        dz = (q - k) * a["rib_pitch"]
        size = 1.0 - 0.25 * (np.abs(k - 6) / 6)  # middle ribs are the broadest
        d = (np.sqrt((dz / (hz * size)) ** 2 + (dr / hr) ** 2) - 1.0) * hr
        ki = np.clip(k, 1, 12).astype(np.int64) - 1
        bone_end = np.pi * np.array([0.78, 0.8, 0.79, 0.77, 0.75, 0.73, 0.7, 0.68, 0.64, 0.58, 0.48, 0.4])
        cart_end = np.pi * np.array([0.9, 0.92, 0.92, 0.92, 0.91, 0.9, 0.89, 0.85, 0.8, 0.74, 0.48, 0.4])
        R = 90.0  # mm per radian near the wall
        if cartilage:
            d = np.maximum(d, np.maximum((bone_end[ki] - phi) * R, (phi - cart_end[ki]) * R))
        else:
            d = np.maximum(d, np.maximum((0.1 * np.pi - phi) * R, (phi - bone_end[ki]) * R))
        return np.where((k >= 1) & (k <= 12), d, BIG)

    def _spine(self, X, Y, Z):
        a = self.a
        pitch = a["vert_pitch"]
        zm = np.abs(np.mod(Z - self.z_apex + 10, pitch) - pitch / 2)
        rv = self.rv
        body = np.sqrt((X / (1.15 * rv)) ** 2 + ((Y - self.y_vb) / rv) ** 2) - 1.0
        d = np.maximum(body * rv, zm - (pitch - 6.0) / 2)
        rc = 7.5 * a["scale"]
        ring = np.abs(np.sqrt(X * X + (Y - self.y_canal) ** 2) - (rc + 2.2)) - 2.2
        ring = np.maximum(ring, np.maximum(zm - pitch * 0.3, self.y_vb - Y))
        d = np.minimum(d, ring)
        s = a["scale"]
        sp = capsule((0, self.y_canal + rc + 2, 0), (0, self.y_canal + rc + 26 * s, 0), 2.6 * s).fn(X, Y, zm * 0)
        tp = capsule((rc + 2, self.y_canal - 2, 0), (rc + 20 * s, self.y_canal + 9 * s, 0), 3.2 * s).fn(
            np.abs(X), Y, zm * 0)
        d = np.minimum(d, np.maximum(np.minimum(sp, tp), zm - pitch * 0.28))
        return d

    def canal_sdf(self, X, Y, Z):
        return np.sqrt(X * X + (Y - self.y_canal) ** 2) - 7.5 * self.a["scale"]

    def _sternum(self, X, Y, Z):
        y = self.cav_yc(Z) - self.cav_b(Z) * self.a["cav_front"] - 6.0
        zt = self.z_apex - 40 * self.a["scale"]
        half = pwl(Z, [-10.0, zt - 60, zt - 45, zt], [10.0, 14.0, 24.0, 26.0])
        d = np.maximum(np.abs(X) - half, np.abs(Y - y) - 4.5)
        return np.maximum(d, np.maximum(-15.0 - Z, Z - zt))

    def _scapulae(self, X, Y, Z, sl=None):
        """Thin blades lying on the posterior ribs, under the back muscles."""
        a = self.a
        zt, zb = self.z_apex + 15, self.z_apex - 150 * a["scale"]
        ds = self._cav(X, Y, Z, sl) - (a["rib_layer"] + a["scapula_off"])
        phi = np.arctan2(np.abs(X), Y - self.yc0)
        t = np.clip((Z - zb) / (zt - zb), 0, 1)
        lat = 0.2 * np.pi + 0.24 * np.pi * t ** 0.6
        thick = 1.5 + 3.0 * np.clip((phi - 0.2 * np.pi) / 0.25, 0, 1)
        d = np.abs(ds) - thick
        d = np.maximum(d, np.maximum((50 * a["scale"] - np.abs(X)), (phi - lat) * 90))
        return np.maximum(d, np.maximum(zb - Z, Z - zt))

    def _bones(self) -> list[Prim]:
        a, s = self.a, self.a["scale"]
        wall = (self.a0 + 40, self.b0 + 60, 0)
        prims = [
            Prim(self._spine, (-45, self.y_vb - self.rv - 2, self.z_bottom), (45, self.y_canal + 45, self.z_top),
                 "spine"),
            Prim(self._ribs, (-wall[0], -wall[1], self.z_bottom), (wall[0], wall[1], self.z_top), "ribs",
                 box_fn=lambda X, Y, Z, sl: self._ribs(X, Y, Z, sl=sl)),
            Prim(self._sternum, (-30, -self.b0 - 40, -20), (30, -self.b0 * 0.3, self.z_apex), "sternum"),
            Prim(self._scapulae, (-self.a0 - 60, 0, self.z_apex - 160 * s),
                 (self.a0 + 60, self.b0 + 80, self.z_apex + 20), "scapulae",
                 box_fn=lambda X, Y, Z, sl: self._scapulae(X, Y, Z, sl=sl)),
        ]
        y0 = self.cav_yc(self.z_apex) - self.cav_b(self.z_apex)
        for sx in (-1, 1):
            pts = [(sx * 20, y0 - 20, self.z_apex - 35), (sx * 90, y0 - 12, self.z_apex - 5),
                   (sx * 150, y0 + 25, self.z_apex + 8)]
            prims += polyline(pts, [7 * s, 6.5 * s, 7 * s])
        return prims


def _box(c, r):
    e = float(np.max(r))
    return tuple(np.asarray(c) - e), tuple(np.asarray(c) + e)
