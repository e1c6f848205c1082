"""Every random choice of a phantom, drawn from a seed, plus the user's overrides.

Each concern draws from its own random stream (spawned from the seed), always in the same order
and whatever the flags say, so that switching on effusion or changing the grid leaves the
anatomy (and so the lung labels in mm) of a seed unchanged. The result is a plain JSON-able dict.
"""
from __future__ import annotations

import numpy as np

from ..errors import LungsegError

STREAMS = ("grid", "anatomy", "trees", "pathology", "acquisition", "texture", "noise")
DEFAULT_SHAPE = (64, 128, 128)  # (z, y, x): fast enough for unit tests, like imlab3d's volumes
DIFFICULTIES = ("easy", "mixed", "hard")
THICKNESSES = (0.6, 0.625, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)

# probability of each pathology / hard feature per difficulty
PROBS = {
    "easy": dict(effusion=0.0, consolidation=0.0, emphysema=0.0, touching=0.0, low_dose=0.0,
                 contrast=0.2, gas=0.3, nodules=1.0, tumour=0.0),
    "mixed": dict(effusion=0.15, consolidation=0.15, emphysema=0.15, touching=0.3, low_dose=0.35,
                  contrast=0.35, gas=0.5, nodules=1.5, tumour=0.15),
    "hard": dict(effusion=0.8, consolidation=0.7, emphysema=0.3, touching=0.8, low_dose=0.6,
                 contrast=0.4, gas=0.8, nodules=2.0, tumour=0.3),
}

OVERRIDES = {"shape", "size", "spacing", "difficulty", "effusion", "consolidation", "emphysema",
             "touching_lungs", "n_nodules", "nodule_kinds", "noise", "dose", "contrast", "blur",
             "padding", "inspiration", "patient_scale", "gas", "fissures", "tumour"}
TUMOURS = ("central", "chest-wall")  # large masses (lungseg.synth.tumours); central is the commoner


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(STREAMS, children)}


def _u(rng, lo, hi) -> float:
    return float(rng.uniform(lo, hi))


def draw_params(seed: int, **overrides) -> dict:
    """All parameters of a case as a JSON-serialisable dict (see generate_case for overrides)."""
    unknown = set(overrides) - OVERRIDES
    if unknown:
        raise LungsegError(f"unknown phantom option(s): {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(OVERRIDES))})")
    difficulty = overrides.get("difficulty", "mixed")
    if difficulty not in DIFFICULTIES:
        raise LungsegError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    r = streams(seed)
    anatomy = _draw_anatomy(r["anatomy"], overrides)
    path = _draw_pathology(r["pathology"], PROBS[difficulty], overrides)
    anatomy["touching_lungs"] = bool(overrides.get("touching_lungs", path.pop("_touching")))
    acq = _draw_acquisition(r["acquisition"], PROBS[difficulty], overrides)
    hu = _draw_hu(r["texture"], anatomy, acq)
    grid = _draw_grid(r["grid"], anatomy, overrides)
    return dict(seed=int(seed), difficulty=difficulty, grid=grid, anatomy=anatomy, pathology=path,
                acquisition=acq, hu=hu)


# ---- anatomy ---------------------------------------------------------------------------------
def _draw_anatomy(g: np.random.Generator, ov: dict) -> dict:
    a: dict = {}
    a["sex"] = "female" if g.random() < 0.45 else "male"
    s = float(np.clip(g.normal(1.0, 0.06), 0.86, 1.16)) * (0.94 if a["sex"] == "female" else 1.0)
    s_user = ov.get("patient_scale")
    if s_user is not None:
        s = float(s_user)
    a["scale"] = s
    insp = 1.0 - 0.6 * g.random() ** 2  # most chest CTs are taken at full inspiration
    if ov.get("inspiration") is not None:
        insp = float(np.clip(ov["inspiration"], 0.0, 1.0))
    a["inspiration"] = insp
    # thoracic cavity (inside the ribs), Z = 0 at the top of the right diaphragm dome
    a["cav_a0"] = 140 * s * _u(g, 0.94, 1.06)  # half-width at the base
    a["cav_b0"] = 80 * s * _u(g, 0.92, 1.08)  # half-depth at the base
    a["cav_p"] = _u(g, 1.9, 2.2)
    a["cav_front"] = _u(g, 0.8, 0.9)  # the front of the cavity is shallower than the back
    a["cav_yc"] = 0.0
    a["z_apex"] = 212 * s * (0.86 + 0.14 * insp) * _u(g, 0.93, 1.07)
    a["recess"] = 70 * s * (0.8 + 0.2 * insp) * _u(g, 0.85, 1.15)  # costophrenic recess depth
    a["z_low"] = -a["recess"]
    a["dome_left"] = -_u(g, 8, 24)
    a["apex_x"] = 48 * s * _u(g, 0.9, 1.1)
    a["apex_rx"] = _u(g, 40, 55)
    a["apex_ry"] = _u(g, 45, 60)
    a["apex_knee"] = _u(g, 0.36, 0.48)
    a["apex_shift_y"] = _u(g, 0.15, 0.35)
    # body wall: fat by BMI, muscle by region
    a["fat"] = _u(g, 3, 12) + 24 * g.random() ** 2
    a["fat_ant"] = _u(g, 0.6, 1.2)
    a["fat_post"] = _u(g, 0.5, 1.1)
    a["muscle_ant"] = _u(g, 6, 16) * s
    a["muscle_lat"] = _u(g, 2, 7) * s
    a["muscle_post"] = _u(g, 38, 48) * s
    a["rib_layer"] = _u(g, 8, 11)
    a["muscle_plane"] = _u(g, 5, 10)
    a["body_p"] = _u(g, 1.9, 2.3)
    a["breast"] = _u(g, 15, 45) * s if a["sex"] == "female" else 0.0
    a["table_gap"] = _u(g, 0, 4)
    # mediastinum
    a["xm"] = _u(g, -3, 5)
    a["junction_width"] = _u(g, 4, 22)
    a["junction_touch_width"] = _u(g, 0.3, 0.9)
    a["junction_shift"] = float(g.choice([-1, 1])) * _u(g, 4, 22)
    a["w_mid"] = _u(g, 34, 44) * s
    a["w_post"] = _u(g, 34, 44) * s
    a["w_inlet"] = _u(g, 40, 55) * s
    a["z_carina"] = a["z_apex"] - _u(g, 95, 120) * s
    a["z_arch"] = a["z_carina"] + _u(g, 15, 28)
    a["heart"] = dict(dx=_u(g, 16, 30), dy=_u(g, 0.15, 0.3), dz=_u(g, 28, 40),
                      ax=_u(g, 62, 76) * s, ay=_u(g, 46, 56) * s, az=_u(g, 44, 54) * s,
                      rot=_u(g, 25, 45), tilt=_u(g, 22, 38), fat=_u(g, 2, 7))
    a["aorta_r"] = _u(g, 12.5, 16) * s
    a["vb_r"] = _u(g, 16, 20) * s
    a["trachea_r"] = _u(g, 7.5, 9.5) * s
    a["bronchus_angle_r"] = _u(g, 22, 35)
    a["bronchus_angle_l"] = _u(g, 38, 50)
    # bones
    a["rib_pitch"] = _u(g, 21, 26) * s
    a["rib_drop"] = _u(g, 95, 130) * s
    a["rib_hz"] = _u(g, 5.0, 7.0) * s
    a["rib_hr"] = _u(g, 2.4, 3.2) * s
    a["vert_pitch"] = _u(g, 23, 27) * s
    a["scapula_off"] = _u(g, 4, 9)
    a["fissure_z_post"] = _u(g, 0.55, 0.68)
    a["fissure_tilt"] = _u(g, 0.25, 0.6)
    a["fissure_bend"] = _u(g, 0.002, 0.006)
    a["fissure_z_hor"] = _u(g, 0.42, 0.52)
    a["lung_wobble"] = [[_u(g, 0, 2 * np.pi), _u(g, 0.6, 2.2)] for _ in range(4)]
    return a


# ---- pathology -----------------------------------------------------------------------------------
def _draw_pathology(g: np.random.Generator, probs: dict, ov: dict) -> dict:
    p: dict = {}
    flags = {k: g.random() < probs[k] for k in ("effusion", "consolidation", "emphysema", "touching", "gas")}
    p["_touching"] = flags["touching"]
    p["effusion"] = bool(ov.get("effusion", flags["effusion"]))
    sides = ["right", "left", "both"][int(g.integers(0, 3))]
    p["effusion_sides"] = sides
    p["effusion_depth"] = _u(g, 0.12, 0.35)  # thickness at the back of the base, fraction of cavity depth
    p["effusion_height"] = _u(g, 0.3, 0.75)  # fraction of lung height it reaches (posteriorly)
    p["consolidation"] = bool(ov.get("consolidation", flags["consolidation"]))
    p["consolidation_lobe"] = int(g.integers(0, 5))
    p["consolidation_size"] = _u(g, 35, 75)
    p["consolidation_center"] = [_u(g, -1, 1), _u(g, 0.0, 1.0), _u(g, 0.1, 0.6)]
    p["emphysema"] = bool(ov.get("emphysema", flags["emphysema"]))
    p["emphysema_severity"] = _u(g, 0.08, 0.3)
    p["gas"] = bool(ov.get("gas", flags["gas"]))
    p["gas_size"] = _u(g, 15, 40)
    n = ov.get("n_nodules")
    p["n_nodules"] = int(n) if n is not None else int(min(g.poisson(probs["nodules"]), 6))
    kinds = ov.get("nodule_kinds", ("solid", "part-solid", "ground-glass"))
    p["nodule_kinds"] = list(kinds)
    p["nodule_seed"] = int(g.integers(0, 2**31 - 1))
    # drawn last and always, so that the draws above (and so older seeds' cases) do not change
    has_tumour, central = g.random() < probs["tumour"], g.random() < 0.6
    tumour = ov.get("tumour", (TUMOURS[0] if central else TUMOURS[1]) if has_tumour else None)
    if tumour is not None and tumour not in TUMOURS:
        raise LungsegError(f"tumour must be None, 'central' or 'chest-wall', not {tumour!r}")
    p["tumour"] = tumour
    return p


# ---- acquisition ----------------------------------------------------------------------------------
def _draw_acquisition(g: np.random.Generator, probs: dict, ov: dict) -> dict:
    q: dict = {}
    low = g.random() < probs["low_dose"]
    dose = ov.get("dose", "low" if low else "standard")
    if dose not in ("low", "standard"):
        raise LungsegError(f"dose must be 'low' or 'standard', not {dose!r}")
    q["dose"] = dose
    sharp = g.random() < 0.5
    q["kernel"] = "sharp" if sharp else "soft"
    sigma_std, sigma_low = _u(g, 10, 22), _u(g, 30, 60)
    q["noise"] = float(ov.get("noise", (sigma_low if dose == "low" else sigma_std) * (1.6 if sharp else 1.0)))
    blur = _u(g, 0.35, 0.55) if sharp else _u(g, 0.6, 0.95)
    q["blur_mm"] = float(ov.get("blur", blur))
    pad = [None, -2048, -3024, -1024][int(g.choice(4, p=[0.35, 0.3, 0.25, 0.1]))]
    q["padding"] = ov.get("padding", pad)
    contrast = g.random() < probs["contrast"]
    q["contrast"] = bool(ov.get("contrast", contrast))
    q["fissures"] = bool(ov.get("fissures", True))
    q["table_z_mm"] = _u(g, -400, -50)
    return q


def _draw_hu(g: np.random.Generator, anat: dict, acq: dict) -> dict:
    c = acq["contrast"]
    h = dict(
        air=-1000.0,
        fat=_u(g, -112, -88),
        muscle=_u(g, 38, 55),
        skin=_u(g, 20, 45),
        blood=_u(g, 35, 48),
        liver=_u(g, 52, 68),
        spleen=_u(g, 42, 54),
        stomach=_u(g, 5, 30),
        csf=_u(g, 5, 25),
        cartilage=_u(g, 80, 200),
        cortical=_u(g, 750, 1300),
        marrow=_u(g, 140, 320),
        lung=-880.0 + 120.0 * (1.0 - anat["inspiration"]) + _u(g, -25, 25),
        lung_gradient=_u(g, 25, 70),  # denser toward the dependent (posterior) lung
        effusion=_u(g, 0, 22),
        consolidation=_u(g, 15, 45),
        nodule=_u(g, 15, 55),
        table=_u(g, 150, 400),
    )
    h["arterial"] = _u(g, 200, 380) if c else h["blood"]
    h["venous"] = _u(g, 140, 220) if c else h["blood"]
    h["myocardium"] = _u(g, 90, 130) if c else h["blood"] + 5
    if c:
        h["liver"] += _u(g, 30, 50)
        h["spleen"] += _u(g, 40, 60)
    return h


# ---- grid ----------------------------------------------------------------------------------------
def _draw_grid(g: np.random.Generator, anat: dict, ov: dict) -> dict:
    s = anat["scale"]
    body_w = 2 * (anat["cav_a0"] + anat["rib_layer"] + anat["muscle_lat"] + anat["fat"]) + 10
    fov = float(np.clip(body_w * _u(g, 1.06, 1.2), 300, 500))
    z_bottom = anat["z_low"] - _u(g, 12, 45) * s
    z_top = anat["z_apex"] + _u(g, 12, 40) * s
    shape_random = _draw_random_shape(g, fov, z_top - z_bottom)
    shift = [_u(g, -12, 12), _u(g, -10, 10)]

    shape = ov.get("shape")
    if ov.get("size") is not None:
        if shape is not None:
            raise LungsegError("give either shape=(z, y, x) or size=(nx, ny, nz), not both")
        shape = tuple(reversed(ov["size"])) if not isinstance(ov["size"], str) else ov["size"]
    spacing = ov.get("spacing")
    if isinstance(shape, str):
        if shape != "random":
            raise LungsegError(f"shape must be (z, y, x) or 'random', not {shape!r}")
        shape, rand_spacing = shape_random
        spacing = spacing or rand_spacing
    shape = tuple(int(n) for n in (shape or DEFAULT_SHAPE))
    if len(shape) != 3 or min(shape) < 1 or shape[1] < 32 or shape[2] < 32:
        raise LungsegError(f"phantom shape must be (z, y, x) with at least 32x32 pixels in-plane, got {shape}")
    if max(shape) > 1024 or shape[0] > 1000:
        raise LungsegError(f"phantom shape {shape} is too large (at most 1024 in-plane, 1000 slices)")
    if spacing is None:
        spacing = (fov / shape[2], fov / shape[2], (z_top - z_bottom) / shape[0])
    elif np.isscalar(spacing):
        spacing = (float(spacing),) * 3
    spacing = tuple(float(v) for v in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise LungsegError(f"spacing must be (sx, sy, sz) in mm, got {spacing}")
    nz, ny, nx = shape
    # the field of view is centred on the scanner isocentre; the patient sits a little off it
    fov_x, fov_y = nx * spacing[0], ny * spacing[1]
    y_body = anat["muscle_post"] / 2 - anat["muscle_ant"] / 2  # body centre is posterior to the cavity's
    cx, cy = -shift[0], y_body - shift[1]
    cz = (z_top + z_bottom) / 2
    origin = (cx - (nx - 1) / 2 * spacing[0], cy - (ny - 1) / 2 * spacing[1], cz - (nz - 1) / 2 * spacing[2])
    return dict(shape=list(shape), spacing=list(spacing), origin=list(origin),
                fov_center=[cx, cy], fov_mm=[fov_x, fov_y], z_range=[z_bottom, z_top])


def _draw_random_shape(g: np.random.Generator, fov: float, coverage: float):
    n = int(g.choice([256, 384, 512], p=[0.15, 0.1, 0.75]))
    if n == 512:
        fov = float(np.clip(fov, 512 * 0.5, 512 * 0.98))
    thick = float(g.choice(THICKNESSES))
    nz = int(min(600, max(8, round(coverage / thick))))
    return (nz, n, n), (fov / n, fov / n, thick)
