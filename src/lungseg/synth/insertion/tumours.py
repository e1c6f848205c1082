"""Tumours: a lobulated soft-tissue mass, 25-50 HU, sometimes with a necrotic centre (10-20 HU),
either central (30-80 mm, at the hilum: the medial lung border at the level of the carina / main
bronchi, found by `find_carina`) or against the chest wall (20-60 mm, on the costal pleura). A
tumour replaces the lung it overlaps plus a 0-3 mm band of the adjacent soft tissue (-250..300 HU:
mediastinal fat, nodes, muscle), never bone nor the central airway; `tumour_labels` marks it as
label 3 where the caller wants that."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .geometry import (AIRWAY_HU, BONE_HU, SOFT_MIN_HU, Inserted, _bbox, _box, _medial_sign, _on_grid,
                       _paint, _pick_side, _rel_mm, _rotation, _shrink, _sides, _star_score, _tissue,
                       _unit)
from .noise import Noise, _smooth_field, estimate_noise

TUMOUR_KINDS = ("central_tumour", "chest_wall_tumour")
CENTRAL_MM = (30.0, 80.0)
CHEST_WALL_MM = (20.0, 60.0)
TUMOUR_HU = (25.0, 50.0)
NECROSIS_HU = (10.0, 20.0)
BAND_MM = (0.0, 3.0)


def tumour_labels(result: Inserted, tumour_label: int = 3) -> np.ndarray:
    """The labels with a tumour's voxels set to `tumour_label` (effusion/consolidation: unchanged)."""
    if result.kind not in TUMOUR_KINDS:
        return result.labels
    out = result.labels.copy()
    out[result.lesion] = tumour_label
    return out


def find_carina(hu: np.ndarray, labels: np.ndarray, spacing_zyx) -> dict | None:
    """The carina's slice and the main bronchi (y, x) per side, from the central airway: air
    (< -900 HU) outside the lung labels between the two lungs, the component reaching highest
    with the longest z extent; the carina is the first slice, going down, where it is two parts.
    None when no central airway is found."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, _ = _sides(labels)
    sub = labels_s[:, :: 4, :: 4]
    x = {v: np.nonzero(sub == v)[2] * 4 for v in (1, 2)}
    yl = np.nonzero(sub > 0)[1] * 4
    zl = np.flatnonzero((sub > 0).reshape(sub.shape[0], -1).any(axis=1))
    if not (x[1].size and x[2].size and zl.size):
        return None
    xa, xb = sorted((int(np.median(x[1])), int(np.median(x[2]))))
    box = (slice(int(zl[0]), hu.shape[0]), slice(int(yl.min()), int(yl.max()) + 1), slice(xa, xb + 1))
    step = 2 if min(spacing[1:]) < 1.2 else 1
    cand = (hu[box][:, ::step, ::step] < AIRWAY_HU) & (labels_s[box][:, ::step, ::step] == 0)
    lab, n = ndi.label(cand)
    if n == 0:
        return None
    objs = ndi.find_objects(lab)
    nz = cand.shape[0]
    top_needed = 0.55 * (zl[-1] - zl[0])
    best, best_ext = None, 0
    for i, sl in enumerate(objs):
        if sl is None:
            continue
        ext = sl[0].stop - sl[0].start
        cx = 0.5 * (sl[2].start + sl[2].stop)
        central = 0.2 * cand.shape[2] <= cx <= 0.8 * cand.shape[2]
        if ext >= 3 and sl[0].stop - 1 >= top_needed and central and ext * spacing[0] >= 20 and ext > best_ext:
            best, best_ext = i + 1, ext
    if best is None:
        return None
    comp = lab == best
    zs = np.flatnonzero(comp.reshape(nz, -1).any(axis=1))
    min_sep = 8.0 / (spacing[2] * step)
    for z in zs[::-1]:  # top down
        l2, m = ndi.label(comp[z])
        if m >= 2:
            sizes = np.bincount(l2.ravel())[1:]
            two = np.argsort(sizes)[::-1][:2] + 1
            cents = [np.argwhere(l2 == t).mean(axis=0) for t in two]
            if abs(cents[0][1] - cents[1][1]) >= min_sep:
                cents.sort(key=lambda c: c[1])  # low x = patient's right
                to_full = lambda c: (float(c[0] * step + box[1].start), float(c[1] * step + box[2].start))  # noqa: E731
                right, left = to_full(cents[0]), to_full(cents[1])
                if _medial_sign(labels_s, 1) < 0:  # right lung at high x (not LPS): swap
                    right, left = left, right
                return {"z": int(z + box[0].start), "bronchi": {1: right, 2: left}}
    return {"z": int(zs[0] + box[0].start), "bronchi": {}}


def _tumour_blob(rng, radius_mm):
    radii = radius_mm * np.exp(rng.uniform(np.log(0.85), np.log(1.15), 3))
    k = int(rng.integers(2, 6))
    return dict(radii=radii, rot=_rotation(rng), dirs=np.array([_unit(v) for v in rng.standard_normal((k, 3))]),
                amps=rng.uniform(0.1, 0.3, k), roughness=float(rng.uniform(0.02, 0.06)),
                necrosis=float(rng.uniform(0.35, 0.6)) if rng.random() < 0.4 else 0.0,
                band_mm=float(rng.uniform(*BAND_MM)), hu=float(rng.uniform(*TUMOUR_HU)),
                necrosis_hu=float(rng.uniform(*NECROSIS_HU)))


def _tumour_share(labels_s, side, centre, blob, spacing) -> float:
    """The share of the blob (centred at `centre`, voxels) that lies in this lung, on a grid of
    about 2 mm (a cheap test of a candidate position)."""
    step = np.maximum(1, np.round(2.0 / spacing)).astype(int).tolist()
    box = _box(centre, 1.6 * blob["radii"].max() / spacing + 1, labels_s.shape)
    box = tuple(slice(b.start, b.stop, k) for b, k in zip(box, step))
    rel = _rel_mm(box, centre, spacing)
    inside = _star_score(rel, blob["radii"], blob["rot"], blob["dirs"], blob["amps"], 6.0) <= 1.0
    core = int((inside & (labels_s[box] == side)).sum())
    return core / max(int(inside.sum()), 1) if core >= 2 else 0.0


def _tumour_at(hu, labels, labels_s, side, centre, blob, spacing, rng, noise, kind) -> Inserted | None:
    """The blob at `centre` (voxels) intersected with this lung, plus a band (0-3 mm) of the
    soft tissue it abuts; None when it misses the lung."""
    full = _box(centre, 1.8 * blob["radii"].max() / spacing + 2, hu.shape)
    box = full

    def blob_score(rel, sp):
        sc = _star_score(rel, blob["radii"], blob["rot"], blob["dirs"], blob["amps"], 6.0)
        return sc + blob["roughness"] * _smooth_field(sc.shape, sp, max(4.0, 0.3 * blob["radii"].mean()), rng)

    score = _on_grid(box, centre, spacing, blob_score)
    inside = score <= 1.0
    sub, lab = hu[box], labels_s[box]
    core = inside & (lab == side)
    if core.sum() < 8:
        return None
    lesion = core.copy()
    cand = inside & (lab == 0) & (sub >= SOFT_MIN_HU) & (sub <= BONE_HU)
    if blob["band_mm"] > 0 and cand.any():  # distances only around the candidate soft tissue
        pad = int(np.ceil(blob["band_mm"] / spacing.min())) + 1
        cb = _bbox(cand, pad)
        near = ndi.distance_transform_edt(~core[cb], sampling=spacing) <= blob["band_mm"]
        lesion[cb] |= cand[cb] & near
    target = _tissue(score.shape, spacing, blob["hu"], noise, rng)
    if blob["necrosis"] > 0:
        w = np.clip((blob["necrosis"] + 0.1 - score) / 0.2, 0.0, 1.0)
        target += w * np.float32(blob["necrosis_hu"] - blob["hu"])
    box, lesion_c = _shrink(box, lesion)
    inner = tuple(slice(n.start - o.start, n.stop - o.start) for n, o in zip(box, full))
    return _paint(hu, labels, box, lesion_c, target[inner], side, kind)


def central_tumour(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, diameter_mm=None,
                   noise: Noise | None = None) -> Inserted:
    """A lobulated mass (30-80 mm) at the hilum: on the lung's medial border at the level of the
    carina and main bronchi (or, without a visible carina, at 55 % of the lung's height)."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, present = _sides(labels)
    side = _pick_side(labels_s, present, rng, side)
    noise = noise or estimate_noise(hu, labels)
    diameter = float(np.exp(rng.uniform(*np.log(CENTRAL_MM)))) if diameter_mm is None else float(diameter_mm)
    R = diameter / 2
    blob = _tumour_blob(rng, R)
    lung_full = labels_s == side
    lbox = _bbox(lung_full)
    zs = np.arange(lbox[0].start, lbox[0].stop)
    carina = find_carina(hu, labels, spacing)
    msign = _medial_sign(labels_s, side)
    best = None
    for attempt in range(12):
        if carina is not None:
            zc = carina["z"] - float(rng.uniform(0.0, 25.0)) / spacing[0]
        else:
            zc = zs[0] + float(rng.uniform(0.45, 0.62)) * (zs[-1] - zs[0])
        zc = int(np.clip(round(zc), zs[0], zs[-1]))
        sl = lung_full[zc]
        if sl.sum() < 10:
            continue
        rows = np.flatnonzero(sl.any(axis=1))
        y0, y1 = rows[0], rows[-1]
        band_rows = rows[(rows >= y0 + 0.3 * (y1 - y0)) & (rows <= y0 + 0.72 * (y1 - y0))]
        if band_rows.size == 0:
            band_rows = rows
        bron = carina["bronchi"].get(side) if carina else None
        if bron is not None and attempt < 8:
            yc = bron[0] + rng.normal(0, 6.0) / spacing[1]
            yc = int(band_rows[np.argmin(np.abs(band_rows - yc))])
        else:
            yc = int(band_rows[int(rng.integers(0, band_rows.size))])
        xs = np.flatnonzero(sl[yc])
        xm = xs.max() if msign > 0 else xs.min()
        shift = float(rng.uniform(0.15, 0.5)) * R  # the mass overlaps the mediastinum by (1 - shift) R
        centre = np.array([zc, yc, xm - msign * shift / spacing[2]], float)
        share = _tumour_share(labels_s, side, centre, blob, spacing)
        fit = -abs(share - 0.75) if share > 0 else -np.inf  # mostly lung, but against the mediastinum
        if share > 0 and (best is None or fit > best[1]):
            best = (centre, fit, blob["radii"].copy())
        if best is not None and best[1] >= -0.2:
            break
        if attempt % 3 == 2:  # shrink a mass that does not fit
            blob["radii"] = blob["radii"] * 0.9
    return _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, "central_tumour")


def chest_wall_tumour(hu, labels, spacing_zyx, rng: np.random.Generator, *, side=None, diameter_mm=None,
                      noise: Noise | None = None) -> Inserted:
    """A lobulated mass (20-60 mm) against the costal pleura (lateral, anterior or posterior
    chest wall, not the mediastinum, apex or diaphragm), with a broad pleural base."""
    spacing = np.asarray(spacing_zyx, float)
    labels_s, present = _sides(labels)
    side = _pick_side(labels_s, present, rng, side)
    noise = noise or estimate_noise(hu, labels)
    diameter = float(np.exp(rng.uniform(*np.log(CHEST_WALL_MM)))) if diameter_mm is None else float(diameter_mm)
    blob = _tumour_blob(rng, diameter / 2)
    R = diameter / 2
    lung_full = labels_s == side
    lbox = _bbox(lung_full)
    zs = np.arange(lbox[0].start, lbox[0].stop)
    msign = _medial_sign(labels_s, side)
    best = None
    for attempt in range(12):
        zc = int(round(zs[0] + float(rng.uniform(0.2, 0.85)) * (zs[-1] - zs[0])))
        sl = lung_full[zc]
        if sl.sum() < 10:
            continue
        edge = sl & ~ndi.binary_erosion(sl)
        cols = np.flatnonzero(sl.any(axis=0))
        x_med, x_lat = (cols.max(), cols.min()) if msign > 0 else (cols.min(), cols.max())
        yx = np.argwhere(edge)
        frac = (yx[:, 1] - x_med) / float(x_lat - x_med if x_lat != x_med else 1)
        smooth = ndi.gaussian_filter(sl.astype(np.float32), np.maximum(1.0, 3.0 / spacing[1:]))
        gy, gx = np.gradient(smooth)
        ok = []
        for (y, x), f in zip(yx, frac):
            if f < 0.45:  # the outer part of the lung: lateral, or anterior/posterior away from the mediastinum
                continue
            n_in = _unit([gy[y, x] / spacing[1], gx[y, x] / spacing[2]])
            oy, ox = int(round(y - n_in[0] * 5.0 / spacing[1])), int(round(x - n_in[1] * 5.0 / spacing[2]))
            if 0 <= oy < sl.shape[0] and 0 <= ox < sl.shape[1] and hu[zc, oy, ox] > -500 and not sl[oy, ox]:
                ok.append((y, x, n_in))
        if not ok:
            continue
        y, x, n_in = ok[int(rng.integers(0, len(ok)))]
        shift = float(rng.uniform(0.2, 0.6)) * R
        centre = np.array([zc, y + n_in[0] * shift / spacing[1], x + n_in[1] * shift / spacing[2]], float)
        share = _tumour_share(labels_s, side, centre, blob, spacing)
        if share > 0 and (best is None or share > best[1]):
            best = (centre, share, blob["radii"].copy())
        if best is not None and best[1] >= 0.5:
            break
        if attempt % 3 == 2:
            blob["radii"] = blob["radii"] * 0.9
    return _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, "chest_wall_tumour")


def _place_best(best, hu, labels, labels_s, side, blob, spacing, rng, noise, kind: str) -> Inserted:
    """Draw the tumour at the best placement found (centre, fit, radii), or fail with one message."""
    res = None
    if best is not None:
        blob["radii"] = best[2]
        res = _tumour_at(hu, labels, labels_s, side, best[0], blob, spacing, rng, noise, kind)
    if res is None:
        raise ValueError(f"could not place a {kind.replace('_', ' ')}")
    return res
