"""generate_case(seed, **overrides) -> SynthCase: the phantom generator's one entry point."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io import CTImage
from .anatomy import Anatomy
from .compose import render
from .grid import Grid
from .paint import paint_coarse
from .params import draw_params, streams
from .pathology import pick_consolidation_point, place_nodules
from .tissue import Tissue
from .trees import build_trees
from .tumours import place_tumour

COARSE_MM = 2.0  # label fields are computed at about this spacing, then upsampled


@dataclass
class SynthCase:
    """One phantom. `ct` is in HU on the canonical LPS grid; `labels` 0 background, 1 right lung,
    2 left lung, 3 nodule or tumour; `tissue` uses lungseg.synth.Tissue codes; `params` holds every
    random choice (JSON-serialisable); `nodules` one dict per nodule or tumour (world LPS centre in
    mm; a tumour has kind "mass", location "central" or "chest-wall")."""

    ct: CTImage
    labels: np.ndarray
    tissue: np.ndarray
    params: dict
    nodules: list[dict] = field(default_factory=list)

    def lung_labels(self) -> np.ndarray:
        """Labels with every nodule and tumour voxel given to the lung it lies in (1/2): lungmask-style
        lungs. A tumour's few voxels in the soft tissue it abuts count too: masses against the lung
        belong to the lung mask."""
        lab = self.labels.copy()
        idx = np.flatnonzero(lab == 3)
        if idx.size:
            gp = self.params["grid"]
            anat = Anatomy(self.params["anatomy"], tuple(gp["z_range"]))
            zyx = np.stack(np.unravel_index(idx, lab.shape), 1).astype(float)
            X, Y, Z = (np.asarray(gp["origin"]) + zyx[:, ::-1] * np.asarray(gp["spacing"])).T
            lab.reshape(-1)[idx] = np.where(anat.is_left(X, Y, Z), 2, 1)
        return lab

    def lung_volume_ml(self, side: int | None = None) -> float:
        lab = self.lung_labels()
        n = np.count_nonzero(lab == side) if side else np.count_nonzero(lab)
        return n * self.ct.voxel_volume_ml


def generate_case(seed: int = 0, progress=None, **overrides) -> SynthCase:
    """A synthetic chest CT with exact labels, deterministic for a seed.

    Overrides: shape=(z, y, x) or 'random', size=(nx, ny, nz), spacing=(sx, sy, sz) mm,
    difficulty='easy'|'mixed'|'hard' (default 'mixed'), effusion=, consolidation=, emphysema=,
    touching_lungs=, gas= (bool), n_nodules=, nodule_kinds=, tumour='central'|'chest-wall'|None (a
    30-100 mm mass at the hilum or a 20-60 mm one at the chest wall; drawn by default in 15% of
    mixed and 30% of hard cases, never in easy ones), noise= (HU std), dose='low'|'standard',
    blur= (mm), contrast= (bool), padding= (None or HU such as -2048/-3024), inspiration= (0..1),
    patient_scale=, fissures= (bool). The default grid is 128x128x64 (fast); shape='random' draws
    a clinical one (256-512 in-plane, 0.6-5 mm slices, up to 600 slices).
    `progress(n)` is called after every n slices rendered.
    """
    params = draw_params(seed, **overrides)
    rng = streams(seed)
    gp = params["grid"]
    grid = Grid(tuple(gp["shape"]), tuple(gp["spacing"]), tuple(gp["origin"]))
    anat = Anatomy(params["anatomy"], tuple(gp["z_range"]))
    trees = build_trees(anat, rng["trees"])
    path = params["pathology"]
    tumours = [place_tumour(anat, np.random.default_rng(path["nodule_seed"] + 2), path["tumour"])] \
        if path["tumour"] else []
    nodules = place_nodules(anat, trees, np.random.default_rng(path["nodule_seed"]), path["n_nodules"],
                            path["nodule_kinds"], avoid=tumours) + tumours
    if path["consolidation"]:
        path["consolidation_point"] = pick_consolidation_point(
            anat, np.random.default_rng(path["nodule_seed"] + 1), path["consolidation_lobe"])
    cgrid, factors = grid.coarse(COARSE_MM)
    fields = paint_coarse(anat, cgrid, params, rng["texture"])
    hu, labels, tissue = render(grid, factors, fields, anat, trees, nodules, params, rng["noise"], progress)

    # world (scanner) coordinates: the field of view is centred on the isocentre
    shift = np.array([gp["fov_center"][0], gp["fov_center"][1], -params["acquisition"]["table_z_mm"]])
    origin = np.asarray(gp["origin"]) - shift
    ct = CTImage.from_array(hu, spacing=gp["spacing"], origin=origin, is_hu=True, source=f"synth:{seed}",
                            format="synth")
    gp["world_origin"] = [float(v) for v in origin]
    params["anatomy"]["lung_volume_ml_analytic"] = trees["lung_volume_ml"]
    for nod in nodules:
        c = np.asarray(nod["center_patient"])
        nod["center_mm"] = [float(v) for v in c - shift]
        nod["center_index_zyx"] = [float(v) for v in ((c - np.asarray(gp["origin"])) / gp["spacing"])[::-1]]
    for t in tumours:  # what is left of the mass once it is cut to the lung
        vol = float(np.count_nonzero(tissue == Tissue.TUMOUR) * grid.voxel_ml)
        t["volume_ml"], t["equivalent_diameter_mm"] = vol, float((6000 * vol / np.pi) ** (1 / 3))
    params["nodules"] = nodules
    return SynthCase(ct=ct, labels=labels, tissue=tissue, params=params, nodules=nodules)
