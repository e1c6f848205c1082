"""Validation figures of the shipped default models, scored by `lungseg evaluate`.

Only data the models never trained on: the real CIP COPDGene case (left/right reference), the real
imlab3d id003 volume (both-lungs reference), 6 held-out synthetic phantoms (seeds 5000-5005, all
pathologies), the LIDC crops of the validation patients of configs/default_nodule.yaml's
patient split (reference = pixels marked by >= 2 of 4 readers), and whole-scan nodule finding on
4 synthetic 512x512x160 phantoms (seeds 5100-5103; the nodule model trained on seeds 1000-1059). The classical segmenter is scored
beside the default on the lung sets.

    .venv/bin/python benchmarks/default_model_eval.py [--lidc-patients N] [--out-dir runs/default_eval]
Prints each `lungseg evaluate` summary and writes benchmarks/results/default_model_eval.json.
`--nodule-checkpoint runs/X/best.pt --results other.json` scores a candidate nodule model the same way.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
KEY_METRICS = ("dice", "iou", "hd95", "assd", "surface_dice", "recall", "precision")


def evaluate(pred_dir: Path, ref_dir: Path, out_dir: Path, *extra: str) -> dict:
    cmd = [str(Path(sys.executable).with_name("lungseg")), "evaluate", str(pred_dir), str(ref_dir),
           "-o", str(out_dir), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"lungseg evaluate failed: {r.stderr.strip()}")
    print(r.stdout)
    return json.loads((out_dir / "summary.json").read_text())


def lung_sets(work: Path, segmenters: dict) -> dict:
    from lungseg.data.shared_sets import cip_labels
    from lungseg.io import read_ct, read_labels, write_labels
    from lungseg.synth import generate_case

    results = {}
    cip = read_ct(SHARED / "lungs/cip_copdgene/ct-64.nrrd")
    im3 = read_ct(SHARED / "lungs/imlab3d/id003-128x128x64.nii.gz")
    phantoms = [generate_case(s, size=(256, 256, 96)) for s in range(5000, 5006)]
    cip_ref = cip_labels(read_labels(SHARED / "lungs/cip_copdgene/lm-64.nrrd").array.astype(np.int64))
    sides = {"ct-64": cip_ref, **{f"synth{5000 + i}": c.lung_labels() for i, c in enumerate(phantoms)}}
    sets = {
        "cip_copdgene": ([("ct-64", cip)], SHARED / "lungs/cip_copdgene/lm-64.nrrd", "cip"),
        "imlab3d_id003": ([("id003-128x128x64", im3)], SHARED / "lungs/imlab3d/id003-128x128x64-msk.nii.gz", "imlab"),
    }
    ref_syn = work / "ref_synthetic"
    ref_syn.mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(phantoms):
        write_labels(case.lung_labels(), case.ct, ref_syn / f"synth{5000 + i}.nii.gz")
    sets["synthetic_val"] = ([(f"synth{5000 + i}", c.ct) for i, c in enumerate(phantoms)], ref_syn, "labels")
    for set_name, (cases, ref, ref_map) in sets.items():
        for seg_name, seg in segmenters.items():
            pred_dir = work / f"pred_{set_name}_{seg_name}"
            pred_dir.mkdir(parents=True, exist_ok=True)
            swaps = 0
            for name, ct in cases:
                labels = seg(ct).labels
                labels = np.where(labels == 3, 0, labels)  # lungs only here; nodules are scored below
                write_labels(labels, ct, pred_dir / f"{name}.nii.gz")
                if name in sides:
                    swaps += _is_swapped(labels, sides[name])
            summary = evaluate(pred_dir, Path(ref), work / f"eval_{set_name}_{seg_name}", "--ref-map", ref_map)
            results[f"{set_name}/{seg_name}"] = {"summary": _key_rows(summary), "left_right_swaps": swaps,
                                                  "cases": len(cases)}
    return results


def _is_swapped(labels, ref) -> int:
    """A left/right swap: the predicted sides overlap the opposite reference sides more."""
    same = ((labels == 1) & (ref == 1)).sum() + ((labels == 2) & (ref == 2)).sum()
    crossed = ((labels == 1) & (ref == 2)).sum() + ((labels == 2) & (ref == 1)).sum()
    return int(crossed > same)


SIZE_BINS = (0, 10, 30, 100, 300, None)  # reference pixels per crop


def lidc_val(work: Path, n_patients: int | None, split: str = "val", checkpoint: Path | None = None,
             tta: bool = False, lidc_hu: str = "window") -> dict:
    """Nodule crops of one part of the patient split: "val" (early stopping chose the epoch on
    it) or "test" (looked at once, for the model card, after every choice was made). Scored
    crop by crop (2D Dice of every crop whose reference is not empty) and nodule by nodule (3D
    Dice of each nodule's stack of crops, as LIDC nodule-segmentation papers report it), and by
    reference size: how many of those crops are a stack's first or last slice (whose missing
    neighbour repeats the crop itself), mean Dice and the median predicted/reference area.
    tta: as `lungseg segment --tta` runs the nodule model (every in-plane mirroring); its
    figures go under keys ending in "_tta"."""
    from PIL import Image

    from lungseg.data.crop_hu import crop_as_hu
    from lungseg.data.shared_sets import lidc_crops
    from lungseg.data.splits import split_patients
    from lungseg.inference.pipeline import NODULE
    from lungseg.inference.network import ModelSegmenter
    from lungseg.io import CTImage, write_labels

    cases = lidc_crops(min_readers=2, max_patients=None, as_hu=crop_as_hu(lidc_hu), stack=True)  # a stack per nodule
    val_ids = set(split_patients([c.patient_id for c in cases], (0.7, 0.2, 0.1), seed=0)[split])
    if n_patients:
        val_ids = set(sorted(val_ids)[:n_patients])
    seg = ModelSegmenter.from_checkpoint(checkpoint or NODULE, resize=False, tta=tta)  # 128 px: as on whole CT
    tag = split + ("_tta" if tta else "")  # folders and result keys
    dirs = {kind: work / f"{kind}_lidc_{tag}" for kind in ("pred", "ref", "pred_nodules", "ref_nodules")}
    crop_rows = []
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for c in cases:  # the model sees each crop with its neighbours (2.5D)
        if c.patient_id not in val_ids:
            continue
        image, label = c.load()
        ct = CTImage.from_array(image, spacing=(0.7, 0.7, 1.0), is_hu=True)
        pred = (seg(ct, postprocess=False).labels > 0).astype(np.uint8) * 3
        name = re.sub(r"[/]", "_", c.case_id)
        crop_rows += _crop_rows(pred > 0, label > 0)
        for k, number in enumerate(c.meta["slices"]):
            Image.fromarray(pred[k]).save(dirs["pred"] / f"{name}_slice-{number}.png")
            Image.fromarray(label[k].astype(np.uint8) * 3).save(dirs["ref"] / f"{name}_slice-{number}.png")
        if label.any():  # a nodule no two readers marked has no consensus to score against
            write_labels(pred, ct, dirs["pred_nodules"] / f"{name}.nii.gz")
            write_labels(label.astype(np.uint8) * 3, ct, dirs["ref_nodules"] / f"{name}.nii.gz")
    options = ("--patient-regex", r"^(LIDC-IDRI-\d+)", "--spacing", "0.7,0.7,1", "--classes", "nodule")
    crops = evaluate(dirs["pred"], dirs["ref"], work / f"eval_lidc_{tag}", *options)
    nodules = evaluate(dirs["pred_nodules"], dirs["ref_nodules"], work / f"eval_lidc_{tag}_nodules", *options)
    return {f"lidc_{tag}_crops": {"summary": _key_rows(crops), "patients": len(val_ids)},
            f"lidc_{tag}_nodules": {"summary": _key_rows(nodules), "patients": len(val_ids)},
            f"lidc_{tag}_crops_by_size": _by_size(crop_rows)}


def _crop_rows(pred: np.ndarray, ref: np.ndarray) -> list[dict]:
    """Per crop of one nodule's stack whose reference is not empty: size, Dice, area ratio, stack end."""
    rows = []
    for k in range(len(ref)):
        size = int(ref[k].sum())
        if size:
            area = int(pred[k].sum())
            rows.append({"ref_px": size, "dice": 2 * int((pred[k] & ref[k]).sum()) / (area + size),
                         "area_ratio": area / size, "stack_end": k in (0, len(ref) - 1)})
    return rows


def _by_size(rows: list[dict]) -> list[dict]:
    table = []
    for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:]):
        part = [r for r in rows if r["ref_px"] >= lo and (hi is None or r["ref_px"] < hi)]
        if part:
            table.append({"ref_px": f"{lo}-{hi}" if hi else f">={lo}", "crops": len(part),
                          "at_stack_end": round(float(np.mean([r["stack_end"] for r in part])), 3),
                          "dice": round(float(np.mean([r["dice"] for r in part])), 4),
                          "median_area_ratio": round(float(np.median([r["area_ratio"] for r in part])), 2)})
    print("\n".join(["reference px | crops | at stack end | mean Dice | median predicted/reference area"]
                    + [f"{t['ref_px']} | {t['crops']} | {t['at_stack_end']:.2f} | {t['dice']:.3f} | "
                       f"{t['median_area_ratio']:.2f}" for t in table]))
    return table


def phantom_nodules(seeds=range(5100, 5104), size=(512, 512, 160)) -> dict:
    """Whole-scan nodule finding on synthetic thin-slice CT never trained on (training phantoms
    are seeds 1000-1059): lesion recall, false-positive components per scan, voxel Dice."""
    from scipy import ndimage as ndi

    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.synth import generate_case

    seg = DefaultSegmenter()
    rows, full = [], np.ones((3, 3, 3))
    for s in seeds:
        case = generate_case(s, size=size, n_nodules=6)
        pred, truth = seg(case.ct).labels == 3, case.labels == 3
        t_lab, n_true = ndi.label(truth, full)
        p_lab, n_pred = ndi.label(pred, full)
        found = np.unique(t_lab[pred & truth])
        hit = np.unique(p_lab[pred & truth])
        diam = [(6 * (t_lab == i).sum() * np.prod(case.ct.spacing_zyx) / np.pi) ** (1 / 3) for i in range(1, n_true + 1)]
        rows.append({"seed": s, "true_nodules": n_true, "found": int((found > 0).sum()),
                     "found_10mm_plus": int(sum(1 for i in found if i and diam[i - 1] >= 10)),
                     "true_10mm_plus": int(sum(d >= 10 for d in diam)),
                     "false_positive_components": int(n_pred - (hit > 0).sum()),
                     "dice": float(2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1))})
        print(rows[-1], flush=True)
    total = {k: int(sum(r[k] for r in rows)) for k in ("true_nodules", "found", "found_10mm_plus", "true_10mm_plus",
                                                       "false_positive_components")}
    total.update(recall=total["found"] / max(total["true_nodules"], 1),
                 recall_10mm_plus=total["found_10mm_plus"] / max(total["true_10mm_plus"], 1),
                 false_positives_per_scan=total["false_positive_components"] / len(rows),
                 mean_dice=float(np.mean([r["dice"] for r in rows])), size_xyz=list(size))
    print(f"phantom nodules: recall {total['recall']:.2f} ({total['found']}/{total['true_nodules']}), "
          f">= 10 mm {total['recall_10mm_plus']:.2f}, {total['false_positives_per_scan']:.1f} false-positive "
          f"components per scan, mean Dice {total['mean_dice']:.3f}")
    return {"phantom_nodules": {"total": total, "cases": rows}}


def _key_rows(summary: dict) -> list[dict]:
    rows = summary.get("summary", summary)
    if isinstance(rows, dict):
        rows = rows.get("summary", [])
    keep = [r for r in rows if r.get("metric") in KEY_METRICS or str(r.get("metric", "")).startswith("dice")]
    return keep + list(summary.get("lesions", []))


def main() -> None:
    from lungseg.data.crop_hu import CROP_HU

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "default_eval")
    ap.add_argument("--lidc-patients", type=int, default=None, help="limit the LIDC validation patients")
    ap.add_argument("--skip-lidc", action="store_true")
    ap.add_argument("--skip-lungs", action="store_true")
    ap.add_argument("--skip-phantom-nodules", action="store_true")
    ap.add_argument("--lidc-split", choices=["val", "test"], default="val")
    ap.add_argument("--lidc-hu", choices=list(CROP_HU), default="window",
                    help="the crops' HU: the fixed window the shipped models learnt on (default, the recorded "
                         "figures), or each slice's own estimated scale (lungseg.data.crop_hu), as on real CT")
    ap.add_argument("--nodule-checkpoint", type=Path, default=None, help="score this nodule model on the LIDC crops "
                    "instead of the shipped one (use with --results)")
    ap.add_argument("--tta", action="store_true", help="LIDC crops with the nodule model's test-time augmentation")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "default_model_eval.json")
    args = ap.parse_args()
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.inference import ClassicalSegmenter

    out = args.results
    results = json.loads(out.read_text()) if out.exists() else {}
    if not args.skip_lungs:
        segmenters = {"default": DefaultSegmenter(nodules=False), "classical": ClassicalSegmenter()}
        results.update(lung_sets(args.out_dir, segmenters))
    if not args.skip_lidc:
        results.update(lidc_val(args.out_dir, args.lidc_patients, args.lidc_split, args.nodule_checkpoint, args.tta,
                                args.lidc_hu))
    if not args.skip_phantom_nodules:
        results.update(phantom_nodules())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
