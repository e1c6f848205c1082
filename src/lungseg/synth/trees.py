"""Bronchial, arterial and venous trees that fill the lungs and thin toward the periphery.

Volume-filling branching (Kitaoka 1999, Tawhai 2000): a branch serves a set of attractor points
spread through its lobe; it grows from its parent's end part of the way to their centroid (10% in
the first generation, so lobar and segmental vessels crowd the hilum, 40% from the fifth on), and
the set is split in two by the plane through the centroid across its main spread, each half
feeding one child. The spread is measured with Z shrunk (SPLIT_Z), so sets are mostly split side
by side and their branches run cranio-caudally, seen end-on in axial slices as in real lungs.
Radii follow Murray's law through the territory size (r ~ n^(1/3)), so vessels thin toward the
pleura, to a 0.3-0.6 mm radius at the attractors (which lie down to 1.5 mm from it). All branches
of one generation are processed at once with numpy.
Segments are returned as arrays (start, end, radius) in the patient frame (mm).
"""
from __future__ import annotations

import numpy as np

from .anatomy import Anatomy

# airway radius by lobe root (mm, scaled by patient size); arteries run beside the bronchi
LOBAR_RADIUS = (4.6, 3.4, 5.2, 5.2, 5.0)
FRACS = (0.1, 0.15, 0.25, 0.35, 0.4)  # share of the way to the centroid, by generation
SPLIT_Z = 0.5  # weight of Z when choosing the split plane: < 1 favours cranio-caudal branches


def sample_lung_points(anat: Anatomy, rng: np.random.Generator, n: int, inset: float = 1.5) -> np.ndarray:
    """Uniform random points inside the lungs (at least `inset` mm from the pleura)."""
    lo = np.array([-anat.a0, anat.yc0 - anat.b0, anat.z_low - anat.a["recess"] * 0.8])
    hi = np.array([anat.a0, anat.yc0 + anat.b0, anat.z_apex])
    out = []
    have = 0
    while have < n:
        p = rng.uniform(lo, hi, size=(max(2 * n, 1000), 3)).astype(np.float32)
        keep = p[anat.lung_sdf(p[:, 0], p[:, 1], p[:, 2]) < -inset]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:n]


def lung_volume_ml(anat: Anatomy, rng: np.random.Generator, n: int = 40000) -> float:
    lo = np.array([-anat.a0, anat.yc0 - anat.b0, anat.z_low - anat.a["recess"] * 0.8])
    hi = np.array([anat.a0, anat.yc0 + anat.b0, anat.z_apex])
    p = rng.uniform(lo, hi, size=(n, 3))
    inside = anat.lung_sdf(p[:, 0], p[:, 1], p[:, 2]) < 0
    return float(inside.mean() * np.prod(hi - lo) / 1000.0)


def grow(starts, radii, points, owner, frac=FRACS, min_len: float = 2.0, split_z: float = SPLIT_Z):
    """Volume-filling trees from R roots. owner[i] = root of point i. Returns segment arrays.

    frac: share of the way to the centroid, one number or one per generation (the last repeats)."""
    fracs = np.atleast_1d(np.asarray(frac, float))
    w = np.array([1.0, 1.0, split_z])
    starts = np.asarray(starts, np.float64)
    k = np.asarray(radii, float) / np.maximum(np.bincount(owner, minlength=len(starts)), 1) ** (1 / 3)
    g_start, g_k = starts, k
    g_parent = np.full(len(starts), -1)
    P = np.asarray(points, np.float64)
    g = np.asarray(owner, np.int64)
    gen = 0
    segs_a, segs_b, segs_r, segs_parent, segs_n = [], [], [], [], []
    n_seg = 0
    while len(P):
        order = np.argsort(g, kind="stable")
        P, g = P[order], g[order]
        ids, first, counts = np.unique(g, return_index=True, return_counts=True)
        C = np.add.reduceat(P, first, axis=0) / counts[:, None]
        S = g_start[ids]
        E = S + fracs[min(gen, len(fracs) - 1)] * (C - S)
        gen += 1
        E[counts == 1] = C[counts == 1]
        d = E - S
        L = np.linalg.norm(d, axis=1)
        short = L < min_len
        full = C - S
        Lf = np.linalg.norm(full, axis=1)
        E[short] = S[short] + full[short] * np.minimum(1.0, min_len / np.maximum(Lf[short], 1e-6))[:, None]
        r = g_k[ids] * counts ** (1 / 3)
        seg_ids = n_seg + np.arange(len(ids))
        segs_a.append(S), segs_b.append(E), segs_r.append(r), segs_parent.append(g_parent[ids]), segs_n.append(counts)
        n_seg += len(ids)
        # split every group with more than one point across its main spread
        alive = counts > 1
        if not alive.any():
            break
        gi = np.repeat(np.arange(len(ids)), counts)  # group index of each point
        keep = alive[gi]
        P, gi = P[keep], gi[keep]
        # main spread across the branch, measured with Z shrunk by split_z
        dv = E - S
        dv /= np.maximum(np.linalg.norm(dv, axis=1, keepdims=True), 1e-9)
        Q = (P - C[gi]) * w
        cov = np.zeros((len(ids), 3, 3))
        np.add.at(cov, gi, Q[:, :, None] * Q[:, None, :])
        proj = np.eye(3)[None] - dv[:, :, None] * dv[:, None, :]
        cov = proj @ cov @ proj
        axis = np.linalg.eigh(cov)[1][:, :, -1]
        t = np.einsum("ij,ij->i", Q, axis[gi])
        order = np.lexsort((t, gi))
        P, gi, t = P[order], gi[order], t[order]
        first_alive = np.zeros(len(ids), np.int64)
        cnt = np.bincount(gi, minlength=len(ids))
        first_alive[1:] = np.cumsum(cnt)[:-1]
        rank = np.arange(len(P)) - first_alive[gi]
        child = (rank >= cnt[gi] // 2).astype(np.int64)
        new_group = 2 * gi + child
        # new groups: start at the parent's end, inherit its radius constant
        uniq, g = np.unique(new_group, return_inverse=True)
        parent_idx = uniq // 2
        g_start = E[parent_idx]
        g_k = g_k[ids][parent_idx]
        g_parent = seg_ids[parent_idx]
    return dict(a=np.concatenate(segs_a), b=np.concatenate(segs_b), r=np.concatenate(segs_r),
                parent=np.concatenate(segs_parent), n=np.concatenate(segs_n))


def offset_tree(tree: dict, dist, rng: np.random.Generator) -> dict:
    """A companion tree beside `tree` (arteries along bronchi): every node is moved sideways,
    perpendicular to the branch ending there, so branches stay connected."""
    a, b, parent = tree["a"], tree["b"], tree["parent"]
    d = b - a
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    ref = rng.normal(size=3)
    side = np.cross(d, ref / np.linalg.norm(ref))
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-9)
    off_end = side * np.asarray(dist)[:, None]
    off_start = np.where(parent[:, None] >= 0, off_end[np.maximum(parent, 0)], off_end)
    out = dict(tree)
    out["a"], out["b"] = a + off_start, b + off_end
    return out


def build_trees(anat: Anatomy, rng: np.random.Generator, n_points: int | None = None) -> dict:
    """Airways, arteries and veins of both lungs, plus the central airways (not lung)."""
    s = anat.a["scale"]
    vol = lung_volume_ml(anat, rng)
    n = int(n_points or np.clip(vol * 1000 / 7.5**3, 2000, 14000))
    pts = sample_lung_points(anat, rng, n)
    lobe = anat.lobe(pts[:, 0], pts[:, 1], pts[:, 2])
    roots = _lobar_roots(anat)
    radii = np.array(LOBAR_RADIUS) * s
    # drop lobes without points (e.g. a tiny middle lobe): their points go to the neighbour
    present = np.bincount(lobe, minlength=5) > 0
    bron = grow(roots[present], radii[present], pts, _reindex(lobe, present))
    wall = 0.18 * bron["r"] + 0.25
    art = offset_tree(bron, bron["r"] + wall + 1.15 * bron["r"] + 0.4, rng)
    art["r"] = 1.15 * bron["r"]
    # veins: a second, independent set of attractors drained toward the left atrium
    vpts = sample_lung_points(anat, rng, n)
    vlobe = anat.lobe(vpts[:, 0], vpts[:, 1], vpts[:, 2])
    vroot_of_lobe = np.array([0, 0, 1, 2, 3])  # RUL+RML -> right superior, RLL -> right inferior, ...
    vroots = np.array([anat.pv_ends["right"][0], anat.pv_ends["right"][1], anat.pv_ends["left"][0],
                       anat.pv_ends["left"][1]], float)
    vowner = vroot_of_lobe[vlobe]
    vpresent = np.bincount(vowner, minlength=4) > 0
    vein = grow(vroots[vpresent], np.full(vpresent.sum(), 6.5 * s), vpts,
                _reindex(vowner, vpresent))
    central = _central_airways(anat)
    pa_ends = np.where((art["a"][:, 0] < anat.xm)[:, None], anat.pa_right_end, anat.pa_left_end)
    return dict(airway=dict(bron, wall=wall), artery=art, vein=vein, central=central, pa_ends=pa_ends,
                lobar=_lobar_segments(anat, roots), n_points=n, lung_volume_ml=vol)


def _reindex(owner, present):
    new = np.cumsum(present) - 1
    return new[owner]


def _lobar_roots(anat: Anatomy):
    """Start points of the five lobar bronchial trees (RUL, RML, RLL, LUL, LLL)."""
    s = anat.a["scale"]
    br, bl = anat.bronchus_r, anat.bronchus_l
    bi = br + np.array([-4, 4, -24]) * s  # bronchus intermedius
    offsets = np.array([(-12, -2, 8), (-6, -10, -8), (-4, 6, -12), (10, -6, 10), (6, 6, -14)]) * s
    roots = np.array([br, bi, bi, bl, bl]) + offsets
    return roots


def _lobar_segments(anat: Anatomy, roots) -> dict:
    s = anat.a["scale"]
    br, bl = anat.bronchus_r, anat.bronchus_l
    bi = br + np.array([-4, 4, -24]) * s
    a = np.array([br, bi, bi, br, bl, bl])
    b = np.array([bi, roots[1], roots[2], roots[0], roots[3], roots[4]])
    r = np.array([5.2, 3.0, 4.5, 4.0, 4.5, 4.5]) * s
    return dict(a=a, b=b, r=r, wall=0.15 * r + 0.5)


def _central_airways(anat: Anatomy) -> dict:
    """Trachea and main bronchi (label 0 in the lung map, like lungmask R231)."""
    c = anat.carina
    top = np.array([anat.xm - 1.0, anat.y_tr, anat.z_top + 30])
    mid = np.array([anat.xm - 2.5, anat.y_tr, anat.a["z_arch"] + 10])
    rt = anat.r_tr
    s = anat.a["scale"]
    a = np.array([top, mid, c, c])
    b = np.array([mid, c, anat.bronchus_r, anat.bronchus_l])
    r = np.array([rt, rt, 6.8 * s, 6.0 * s])
    return dict(a=a, b=b, r=r, wall=np.array([2.2, 2.2, 1.6, 1.5]) * s)
