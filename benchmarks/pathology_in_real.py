"""Dense pathology inserted into the real shared volumes (lungseg.synth.insertion): pleural
effusion, consolidation, central (hilar) and chest-wall tumours, each inserted into CIP COPDGene
(10002K, 64x64x79, 4.2 mm) and imlab3d id003 (128x128x64, 3.0 x 3.0 x 5.6 mm), then segmented by
the shipped default model. Per kind: how much of the lesion the predicted lung mask (labels 1, 2, 3)
keeps (the R231 convention: effusion, consolidation and tumours are lung), the lungs' Dice against
the new reference (the lung labels with the lesion as lung) and, for tumours, the Dice of label 3
against the lesion.

By default only CIP COPDGene and imlab3d id003 are used: the shipped lung model was trained on
imlab3d id001 and id002 and these two were its validation volumes (configs/default_lung_tumours.yaml),
so they are validation, not test, data. `--volumes lidc-0003` adds the real thin-slice whole scan
LIDC-IDRI-0003 (a validation patient everywhere in lungseg; see volumes() for its lung reference):
the one real volume whose pixels are fine enough for the nodule stage as it is, so it is where
label 3 on an inserted tumour is measured on real CT. Its own nodules' label 3 (found on the
untouched scan) is not counted against the inserted tumour. Seeds: numpy default_rng([SEED,
volume, kind, repeat]); repeat j of n draws the lesion's size (volume or diameter, log scale)
from the j-th of n strata of its range.

Grids: "native" is the volume as stored (the nodule stage does not run on pixels > 1.5 mm, so
no label 3 there); "1.0mm" resamples each slice to 1 mm pixels (image linear, labels nearest)
so that the nodule stage runs and label 3 can appear; "z5" rebuilds the volume as 5 mm slices
(any thickness after the z: lungseg.synth.reslice, slab means; labels and lesion where their slab
share is >= 0.5), as a thick-slice reconstruction of the same patient.

    .venv/bin/python benchmarks/pathology_in_real.py [--repeats 3] [--grids native 1.0] [--no-montage]
    .venv/bin/python benchmarks/pathology_in_real.py --volumes lidc-0003 --grids native \
        --out benchmarks/results/pathology_in_lidc.json --montage docs/pathology_in_lidc.png
Prints a markdown table, writes benchmarks/results/pathology_in_real.json and docs/pathology_in_real.png.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 2025
# (volume, kind, repeat) shown in the montage: repeat 2 of 3 is the largest size stratum
MONTAGE = [("imlab3d-id003", "pleural_effusion", 1), ("cip-10002K", "consolidation", 2),
           ("imlab3d-id003", "central_tumour", 2), ("cip-10002K", "chest_wall_tumour", 2)]
MONTAGE_LIDC = [("lidc-0003", kind, 2) for kind in ("pleural_effusion", "consolidation", "central_tumour",
                                                     "chest_wall_tumour")]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return float(2 * (a & b).sum() / s) if s else 1.0


def stratified_size(kind: str, rep: int, repeats: int, rng) -> dict:
    """Repeat j of n draws its size (log scale) from the j-th of n equal strata of the kind's
    range, so a few repeats still cover small to large lesions."""
    from lungseg.synth import insertion as ins

    key, (lo, hi) = {"pleural_effusion": ("volume_ml", ins.EFFUSION_ML),
                     "consolidation": ("volume_ml", ins.CONSOLIDATION_ML),
                     "central_tumour": ("diameter_mm", ins.CENTRAL_MM),
                     "chest_wall_tumour": ("diameter_mm", ins.CHEST_WALL_MM)}[kind]
    a, b = np.log(lo), np.log(hi)
    return {key: float(np.exp(rng.uniform(a + (b - a) * rep / repeats, a + (b - a) * (rep + 1) / repeats)))}


LIDC_ZIP = ROOT.parent / "shared" / "data" / "whole_scans" / "LIDC-IDRI-0003" / "LIDC-IDRI-0003.zip"
VOLUMES = ("cip-10002K", "imlab3d-id003", "lidc-0003")


def volumes(names=VOLUMES[:2]):
    """(id, HU, lung labels 1/2, spacing (z, y, x)) per volume. lidc-0003: the real thin-slice
    whole scan (512x512x140, 0.82 mm pixels: the nodule stage runs on it as it is); it has no lung
    reference, so the shipped model's lungs on the untouched scan stand in for one (its lung Dice
    figures then say how much a lesion moves the mask, not how right the mask is)."""
    from lungseg.data.shared_sets import cip_copdgene, imlab3d

    out = []
    cases = (cip_copdgene() if "cip-10002K" in names else []) + \
        (imlab3d(ids=["id003"], split_sides=True) if "imlab3d-id003" in names else [])
    for case in cases:
        hu, labels = case.load()
        out.append((case.case_id, hu, labels, tuple(reversed(case.spacing))))  # spacing (x,y,z) -> (z,y,x)
    if "lidc-0003" in names:
        from lungseg.inference.pipeline import DefaultSegmenter
        from lungseg.io import read_ct

        ct = read_ct(LIDC_ZIP)
        labels = DefaultSegmenter(nodules=False, low_confidence=False)(ct).labels
        out.append(("lidc-0003", ct.array, np.where(labels == 3, 0, labels), ct.spacing_zyx))
    return out


def to_grid(hu, labels, lesion, spacing_zyx, pixel_mm):
    """In-plane resampling to `pixel_mm` pixels (None: unchanged; "zT": T mm slices instead).
    Returns arrays and spacing (z,y,x)."""
    if pixel_mm is None:
        return hu, labels, lesion, spacing_zyx
    if isinstance(pixel_mm, str):
        return to_slices(hu, labels, lesion, spacing_zyx, float(pixel_mm[1:]))
    from scipy import ndimage as ndi

    f = [1.0] + [s / pixel_mm for s in spacing_zyx[1:]]
    hu2 = ndi.zoom(hu, f, order=1, grid_mode=True, mode="nearest")
    lab2 = ndi.zoom(labels, f, order=0, grid_mode=True, mode="nearest")
    les2 = ndi.zoom(lesion.astype(np.uint8), f, order=0, grid_mode=True, mode="nearest").astype(bool)
    sp = (spacing_zyx[0],) + tuple(s * n / m for s, n, m in zip(spacing_zyx[1:], hu.shape[1:], hu2.shape[1:]))
    return hu2, lab2, les2, sp


def to_slices(hu, labels, lesion, spacing_zyx, slice_mm):
    """The volume rebuilt as `slice_mm` slices (slab means); masks where their slab share is >= 0.5."""
    from lungseg.io import CTImage
    from lungseg.synth.reslice import reslice

    def slabs(array):
        return reslice(CTImage.from_array(array.astype(np.float32), spacing=tuple(reversed(spacing_zyx))), slice_mm)

    hu2 = slabs(hu)
    labels2 = np.zeros(hu2.shape, np.uint8)
    for value in (1, 2):
        labels2[slabs(labels == value).array >= 0.5] = value
    return hu2.array, labels2, slabs(lesion).array >= 0.5, hu2.spacing_zyx


def segment(segmenter, hu, spacing_zyx):
    from lungseg.io import CTImage

    ct = CTImage.from_array(hu, spacing=tuple(reversed(spacing_zyx)), is_hu=True)
    t = time.perf_counter()
    out = segmenter(ct)
    return out.labels, time.perf_counter() - t


def main() -> None:
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.synth.insertion import INSERTERS, KINDS, TUMOUR_KINDS, estimate_noise

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="lesions of each kind per volume")
    ap.add_argument("--grids", nargs="+", default=["native", "1.0"], help="'native', in-plane pixel sizes (mm) and/or 'zT' (T mm slices)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pathology_in_real.json")
    ap.add_argument("--montage", type=Path, default=ROOT / "docs" / "pathology_in_real.png")
    ap.add_argument("--no-montage", action="store_true")
    ap.add_argument("--volumes", nargs="+", default=list(VOLUMES[:2]), choices=VOLUMES)
    ap.add_argument("--lung-checkpoint", type=Path, help="a lung checkpoint to try instead of the shipped one (torch)")
    args = ap.parse_args()
    grids = [None if g == "native" else g if g.startswith("z") else float(g) for g in args.grids]
    gname = lambda g: "native" if g is None else f"{g[1:]}mm-slices" if isinstance(g, str) else f"{g:g}mm"  # noqa: E731
    t_start = time.perf_counter()
    segmenter = DefaultSegmenter(low_confidence=False)
    if args.lung_checkpoint:
        from lungseg.inference.network import ModelSegmenter

        segmenter.lungs.hu = ModelSegmenter.from_checkpoint(args.lung_checkpoint, runtime="torch", low_confidence=False)
    vols = volumes(args.volumes)
    rows, baselines, keep, own_nodules = [], {}, {}, {}
    for vi, (vid, hu, labels, sp) in enumerate(vols):
        noise = estimate_noise(hu, labels)
        print(f"{vid}: shape {hu.shape}, spacing zyx {tuple(round(s, 2) for s in sp)}, noise sd {noise.sigma:.1f} HU, "
              f"smoothing {tuple(round(s, 2) for s in noise.smooth_zyx)} voxels", flush=True)
        for g in grids:  # the model on the untouched volume: what the lesions are compared with
            h2, l2, _, sp2 = to_grid(hu, labels, np.zeros(hu.shape, bool), sp, g)
            pred, dt = segment(segmenter, h2, sp2)
            baselines[(vid, gname(g))] = {"volume": vid, "grid": gname(g),
                                          "lung_dice": round(dice(np.isin(pred, (1, 2, 3)), np.isin(l2, (1, 2))), 4),
                                          "label3_voxels": int((pred == 3).sum()), "segment_s": round(dt, 2)}
            own_nodules[(vid, gname(g))] = pred == 3  # the scan's own nodules: not the inserted lesion
            print(f"  baseline {gname(g)}: {baselines[(vid, gname(g))]}", flush=True)
        for ki, kind in enumerate(KINDS):
            for rep in range(args.repeats):
                rng = np.random.default_rng([SEED, vi, ki, rep])
                t = time.perf_counter()
                res = INSERTERS[kind](hu, labels, sp, rng, noise=noise, **stratified_size(kind, rep, args.repeats, rng))
                t_ins = time.perf_counter() - t
                vox_ml = float(np.prod(sp)) / 1000
                side = int(np.bincount(res.labels[res.lesion]).argmax())
                pts = np.argwhere(res.lesion) * np.asarray(sp)
                for g in grids:
                    h2, l2, les2, sp2 = to_grid(res.hu, res.labels, res.lesion, sp, g)
                    pred, dt = segment(segmenter, h2, sp2)
                    lungs = np.isin(pred, (1, 2, 3))
                    row = {"volume": vid, "kind": kind, "repeat": rep, "grid": gname(g), "side": side,
                           "lesion_ml": round(res.lesion.sum() * vox_ml, 1),
                           "lesion_extent_mm": round(float((pts.max(0) - pts.min(0)).max()), 1),
                           "inside_lung_mask": round(float(lungs[les2].mean()), 4),
                           "lesion_correct_side": round(float((pred[les2] == side).mean()), 4),
                           "lung_dice": round(dice(lungs, np.isin(l2, (1, 2))), 4),
                           "baseline_lung_dice": baselines[(vid, gname(g))]["lung_dice"],
                           "label3_dice": round(dice((pred == 3) & ~own_nodules[(vid, gname(g))], les2), 4)
                           if kind in TUMOUR_KINDS else None,
                           "label3_voxels": int((pred == 3).sum()),
                           "insert_s": round(t_ins, 3), "segment_s": round(dt, 2)}
                    rows.append(row)
                    print("  " + json.dumps(row), flush=True)
                    if (vid, kind, rep) in MONTAGE + MONTAGE_LIDC:
                        keep[(vid, kind, gname(g))] = (hu, res.hu, res.lesion if g is None else les2, pred,
                                                       h2 if g is not None else None)
    total = time.perf_counter() - t_start
    summary = summarise(rows, grids, gname)
    print_tables(summary, baselines, args)
    print(f"\ntotal {total:.0f} s ({len(rows)} segmentations of inserted volumes + {len(baselines)} baselines); "
          f"insertion {np.mean([r['insert_s'] for r in rows]):.3f} s per lesion on these small volumes")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python benchmarks/pathology_in_real.py " + " ".join(sys.argv[1:]),
        "volumes": args.volumes,
        "note": "validation, not test, data: CIP COPDGene and imlab3d id003 were the shipped lung model's "
                "validation volumes (it trained on imlab3d id001/id002); LIDC-IDRI-0003 is a validation patient "
                "(its lung reference: the shipped model's lungs on the untouched scan).",
        "seed": SEED, "repeats": args.repeats, "grids": [gname(g) for g in grids], "total_s": round(total, 1),
        "machine": f"{platform.machine()}, {platform.processor() or ''}".strip(", "),
        "summary": summary, "baselines": list(baselines.values()), "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    if not args.no_montage:
        render_montage(keep, args.montage, grids, gname)
        print(f"wrote {args.montage}")


def summarise(rows, grids, gname):
    from lungseg.synth.insertion import KINDS, TUMOUR_KINDS

    out = []
    for g in grids:
        for kind in KINDS:
            for vol in (None,) + VOLUMES:
                sel = [r for r in rows if r["grid"] == gname(g) and r["kind"] == kind
                       and (vol is None or r["volume"] == vol)]
                if not sel:
                    continue
                m = lambda k: round(float(np.mean([r[k] for r in sel])), 4)  # noqa: E731
                out.append({"grid": gname(g), "kind": kind, "volume": vol or "both", "n": len(sel),
                            "lesion_ml": round(m("lesion_ml"), 1), "inside_lung_mask": m("inside_lung_mask"),
                            "inside_lung_mask_min": round(min(r["inside_lung_mask"] for r in sel), 4),
                            "lesion_correct_side": m("lesion_correct_side"),
                            "lung_dice": m("lung_dice"), "baseline_lung_dice": m("baseline_lung_dice"),
                            "label3_dice": m("label3_dice") if kind in TUMOUR_KINDS else None})
    return out


def print_tables(summary, baselines, args):
    print("\nBaselines (no lesion inserted): " + "; ".join(
        f"{b['volume']} {b['grid']} lung Dice {b['lung_dice']:.4f}" for b in baselines.values()))
    grids = " ".join(args.grids)
    print(f"\n`.venv/bin/python benchmarks/pathology_in_real.py --repeats {args.repeats} --grids {grids}`\n")
    print("| grid | kind | volume | n | lesion mL | in lung mask (mean / min) | right side | lung Dice (no lesion) "
          "| label-3 Dice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        l3 = "–" if s["label3_dice"] is None else f"{s['label3_dice']:.3f}"
        print(f"| {s['grid']} | {s['kind']} | {s['volume']} | {s['n']} | {s['lesion_ml']:.0f} | "
              f"{s['inside_lung_mask']:.3f} / {s['inside_lung_mask_min']:.3f} | {s['lesion_correct_side']:.3f} | "
              f"{s['lung_dice']:.4f} ({s['baseline_lung_dice']:.4f}) | {l3} |")


def render_montage(keep, path: Path, grids, gname):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fine = next((g for g in grids if g is not None), None)
    nrows = 3 + (fine is not None)
    shown = [m for m in MONTAGE + MONTAGE_LIDC if (m[0], m[1], "native") in keep][:4]
    fig, axes = plt.subplots(nrows, len(shown), figsize=(4.2 * len(shown), 4.2 * nrows), squeeze=False)
    cmap = ListedColormap([(0, 0, 0, 0), (1, 0.2, 0.2, 0.35), (0.2, 1, 0.2, 0.35), (1, 0.1, 1, 0.6)])
    for col, (vid, kind, _rep) in enumerate(shown):
        native = keep.get((vid, kind, "native"))
        if native is None:
            continue
        orig, new, lesion, pred, _ = native
        z = int(np.argmax(lesion.sum(axis=(1, 2))))
        titles = [f"{vid}\n{kind}: original, z={z}", "inserted (yellow: lesion)",
                  "prediction, native grid\n(red R, green L, magenta label 3)"]
        for row, (img, over) in enumerate([(orig, None), (new, None), (new, pred)]):
            ax = axes[row, col]
            ax.imshow(img[z], cmap="gray", vmin=-1000, vmax=300, interpolation="nearest")
            if over is not None:
                ax.imshow(over[z], cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
            if row:
                ax.contour(lesion[z], levels=[0.5], colors="yellow", linewidths=0.9)
            ax.set_title(titles[row], fontsize=9)
            ax.axis("off")
        if fine is not None and (vid, kind, gname(fine)) in keep:
            _, _, les2, pred2, h2 = keep[(vid, kind, gname(fine))]
            ax = axes[3, col]
            z2 = z if les2.shape[0] == lesion.shape[0] else int(np.argmax(les2.sum(axis=(1, 2))))  # thick slices
            ax.imshow(h2[z2], cmap="gray", vmin=-1000, vmax=300, interpolation="nearest")
            ax.imshow(pred2[z2], cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
            ax.contour(les2[z2], levels=[0.5], colors="yellow", linewidths=0.9)
            ax.set_title(f"prediction on the {gname(fine)} grid", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
