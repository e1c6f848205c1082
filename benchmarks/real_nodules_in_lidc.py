"""Whole-scan detection on REAL nodules of every size: the LIDC nodules (>= 2 readers' consensus
mask and their own HU, from the crop stacks) of the VALIDATION patients are moved into the real
whole scan LIDC-IDRI-0003 (lungseg.synth.insertion.real_nodule: resampled to its 0.82 x 0.82 x
2.5 mm grid, blended into parenchyma; their HU estimated slice by slice, lungseg.data.crop_hu, as
each crop slice was scaled from its own HU range), --per-scan of them at a time, and the nodule list of the
shipped default model (as `lungseg segment` writes it) is scored by the LUNA16 rules
(lungseg.evaluation.detection: FROC, CPM; a hit lies within the reference's radius).

Why: lungseg has one whole real scan with 3 nodules; the crop stacks have hundreds of real
nodules but no whole-scan context (benchmarks/lidc_crop_listing.py). Here every nodule sits in a
real scan's lung with real vessels around it. Each scan's references are its inserted nodules plus
LIDC-IDRI-0003's own 3 (its readers' other marks are ignored, as LUNA16 does); false findings
come from the same base scan every time, so the FP axis is that one scan's, repeated.
Validation data throughout: the crops' validation patients (84; the 70/20/10 patient split, seed
0) and LIDC-IDRI-0003, a validation patient. Limits: the nodule is cut from its own parenchyma
(a juxtapleural or juxtavascular nodule loses its wall or vessel), and it is placed in parenchyma
only, never against the pleura.

    .venv/bin/python benchmarks/real_nodules_in_lidc.py [--per-scan 8] [--seed 0 [1 2 ...]] [--every-candidate]
        [--why-missed] [--scorer other.pt] [--nodule-checkpoint other.pt] [--slice-mm 1.25|5]
Several seeds pool their placements (each seed places every nodule once more, elsewhere) and
also give each seed's listed CPM: one seed's placements move the CPM by about +-0.02, so a
difference between two models under ~0.04 needs three or more seeds (see the model card).
Prints the FROC table (with --every-candidate also the FROC of every candidate, listed or not: the
curve beyond the operating point) and a table by size; writes benchmarks/results/real_nodules_in_lidc.json
and docs/real_nodules_in_lidc.png (a few inserted nodules, as the model sees them).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
LIDC = ROOT.parent / "shared" / "data" / "whole_scans" / "LIDC-IDRI-0003"
SIZE_BINS_MM = ((3, 6), (6, 10), (10, 20), (20, 31))
# the inserted nodule's mean HU on the scan's grid (partial volume included: a 4 mm solid nodule on
# 2.5 mm slices reads ~-400 HU): solid, faint/part-solid, ground glass
DENSITY_BANDS_HU = (("solid >= -300 HU", -300, np.inf), ("-600..-300 HU", -600, -300),
                    ("ground glass < -600 HU", -np.inf, -600))
MAX_DIAMETER_MM = 30.0


def diameter_mm(mask: np.ndarray, spacing_zyx) -> float:
    """The larger of the volume's sphere diameter and the widest axial section's circle diameter
    (readers measure the longest in-plane axis: this stays close to it for round nodules)."""
    from lungseg.evaluation.lesions import equivalent_diameter

    return max(equivalent_diameter(int(mask.sum()), spacing_zyx, single_slice=False),
               equivalent_diameter(int(mask.sum(axis=(1, 2)).max()), spacing_zyx, single_slice=True))


def nodule_pool(exclude: str, crop_hu: str = "estimate") -> list:
    from lungseg.classification.samples import lidc_malignancy, samples_of_split
    from lungseg.data.crop_hu import crop_as_hu

    return [s for s in samples_of_split(lidc_malignancy(as_hu=crop_as_hu(crop_hu)), "val") if s.patient_id != exclude
            and 3.0 <= diameter_mm(s.mask, s.spacing_zyx) <= MAX_DIAMETER_MM]


def main() -> None:
    import lungseg
    from lungseg.data.crop_hu import CROP_HU
    from lungseg.evaluation.detection import (DetectionCase, Finding, Prediction, format_froc_table, froc,
                                              froc_bootstrap, froc_to_json, match_case)
    from lungseg.evaluation.detection_cases import reference_cases
    from lungseg.inference.pipeline import DefaultSegmenter
    from lungseg.io import read_ct
    from lungseg.synth.insertion.real_nodule import move_nodules_in
    from lungseg.synth.reslice import reslice

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-scan", type=int, default=8)
    ap.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more placements (pooled)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--max-scans", type=int, help="stop after this many scans (a quick look)")
    ap.add_argument("--nodule-checkpoint", type=Path, help="a nodule checkpoint to try instead of the shipped one")
    ap.add_argument("--candidate-threshold", type=float,
                    help="the nodule network's voxel probability that starts a candidate (default: the shipped one)")
    ap.add_argument("--crop-hu", choices=list(CROP_HU), default="estimate",
                    help="the crops' HU: each slice's own estimated scale (lungseg.data.crop_hu, default), or the "
                         "fixed [-1000, 400] window of the results before that was found (solid nodules ~300 HU darker)")
    ap.add_argument("--every-candidate", action="store_true",
                    help="also score every candidate (operating point 0): the FROC beyond the operating point")
    ap.add_argument("--scorer", type=Path, help="a candidate scorer to try instead of the shipped one (its own "
                    "operating point)")
    ap.add_argument("--why-missed", action="store_true",
                    help="trace every placed nodule through the pipeline (lungseg.evaluation.missed): the stage that "
                         "lost it, by size (one more nodule-network pass per copy)")
    ap.add_argument("--slice-mm", type=float, help="reconstruct each copy at this slice thickness and spacing "
                    "after the nodules are placed (lungseg.synth.reslice; default: the scan's own 2.5 mm)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_nodules_in_lidc.json")
    ap.add_argument("--montage", type=Path, default=ROOT / "docs" / "real_nodules_in_lidc.png")
    args = ap.parse_args()
    if args.why_missed and args.slice_mm:
        ap.error("--why-missed traces the nodules on the scan's own slices: leave out --slice-mm")
    t0 = time.perf_counter()
    ct = read_ct(LIDC / "LIDC-IDRI-0003.zip")
    img = ct.to_sitk()
    (own, ignored), = reference_cases(LIDC, 2).values()
    lungs = DefaultSegmenter(nodules=False, low_confidence=False)(ct).labels  # where nodules may go
    sp = np.asarray(ct.spacing_zyx)

    def world(zyx) -> tuple:
        return tuple(img.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in zyx[::-1])))

    def index_mm(point) -> np.ndarray:
        return np.asarray(img.TransformPhysicalPointToContinuousIndex(point))[::-1] * sp

    pool = nodule_pool("LIDC-IDRI-0003", args.crop_hu)
    model = DefaultSegmenter(low_confidence=False, classify=False)
    if args.scorer:
        from lungseg.inference.scoring import NetworkScorer

        model.nodule.scorer = NetworkScorer(args.scorer)
    if args.nodule_checkpoint:  # the shipped scorer and operating point, another candidate network
        from lungseg.inference.candidates import NoduleSegmenter
        from lungseg.inference.pipeline import CANDIDATE_LUNG_MARGIN_MM

        scorer = model.nodule.scorer
        model.nodule = NoduleSegmenter.from_checkpoint(args.nodule_checkpoint, lung_margin_mm=CANDIDATE_LUNG_MARGIN_MM,
                                                       threshold=model.nodule.threshold, outline=model.nodule.outline)
        model.nodule.scorer = scorer
    if args.candidate_threshold is not None:
        model.nodule.threshold = args.candidate_threshold
    op = float(model.nodule.scorer.min_score)
    if args.every_candidate:
        model.nodule.scorer.min_score = 0.0  # the list at the operating point is the part scoring >= op
    cases, every, nodules, shown = [], [], [], []
    placements = []  # (seed, its rng, scan number, the pool indices it places)
    for seed in args.seed:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(pool))
        chunks = [order[i:i + args.per_scan] for i in range(0, len(order), args.per_scan)][:args.max_scans]
        placements += [(seed, rng, k, chunk) for k, chunk in enumerate(chunks)]
    for seed, rng, k, chunk in tqdm(placements, desc="scans"):
        tag = f"{k}" if len(args.seed) == 1 else f"{seed}:{k}"  # one seed keeps the names it always had
        hu = ct.array.copy()
        refs, avoid = list(own), [index_mm(f.center_mm) for f in own + ignored]
        picked = [pool[i] for i in chunk]
        masks = {}  # nodule index -> its mask, for --why-missed
        for s, placed in zip(picked, move_nodules_in(hu, lungs, [(s.hu, s.mask, s.spacing_zyx) for s in picked],
                                                     ct.spacing_zyx, rng, avoid)):
            if placed is None:
                nodules.append({"case": s.case_id, "seed": seed, "scan": k, "placed": False})
                continue
            mask, centre = placed
            if args.why_missed:
                masks[len(nodules)] = mask
            d = diameter_mm(mask, sp)
            refs.append(Finding(world(centre), d))
            nodules.append({"case": s.case_id, "seed": seed, "scan": k, "placed": True, "diameter_mm": round(d, 2),
                            "mean_hu": round(float(hu[mask].mean()), 1), "ref": len(refs) - 1})
            size_bin = next((b for b in SIZE_BINS_MM if b[0] <= d < b[1]), None)
            if sum(1 for item in shown if item[4] == size_bin) < 2:  # two of each size in the picture
                shown.append((hu[int(round(centre[0]))].copy(), centre, d, s.case_id, size_bin))
        scan = ct.with_array(hu) if args.slice_mm is None else reslice(ct.with_array(hu), args.slice_mm)
        result = lungseg.segment(scan, model=model)
        preds = [Prediction(tuple(map(float, n["centroid_mm_lps"])), float(n["detection_score"]))
                 for n in result.report["nodules"]]
        every.append(DetectionCase(f"LIDC-IDRI-0003+{tag}", refs, preds, list(ignored), patient=f"scan-{tag}"))
        case = replace(every[-1], predictions=[p for p in preds if p.score >= op])  # the list at the operating point
        cases.append(case)
        scores = match_case(case).detection_scores
        best = match_case(every[-1]).detection_scores if args.every_candidate else None
        for n in nodules:
            if n["seed"] == seed and n["scan"] == k and n["placed"]:
                n["detection_score"] = float(scores[n["ref"]]) if np.isfinite(scores[n["ref"]]) else None
                if best is not None:  # its best candidate's score, listed or not
                    n["candidate_score"] = float(best[n["ref"]]) if np.isfinite(best[n["ref"]]) else None
        if masks:
            trace(model, ct.with_array(hu), masks, nodules)
    lists = {"": cases, " [every candidate]": every} if args.every_candidate else {"": cases}
    rows = {f"real nodules in LIDC-IDRI-0003{which}, {name}": froc_bootstrap(c, n_boot=args.n_boot, min_diameter_mm=d)
            for which, c in lists.items() for name, d in (("all >= 3 mm", 0.0), (">= 10 mm", 10.0))}
    if len(args.seed) > 1:  # each placement's own listed figure: how far one seed's result can move
        seeds_of_cases = [seed for seed, *_ in placements]
        for seed in args.seed:
            own_cases = [c for c, s in zip(cases, seeds_of_cases) if s == seed]
            rows[f"real nodules in LIDC-IDRI-0003, all >= 3 mm, seed {seed}"] = froc(own_cases)
    print(format_froc_table(rows))
    placed = [n for n in nodules if n["placed"]]
    by_size = listed_by(placed, args.every_candidate)
    fp = [len(match_case(c).false_positive_scores) for c in cases]
    print(f"\n{len(placed)} real nodules placed in {len(cases)} copies of the scan ({len(nodules) - len(placed)} "
          f"found no place); false findings per scan at the operating point {op:.3f}: {np.mean(fp):.2f}")
    print(f"{'size':>10} {'density':>24} {'nodules':>8} {'listed':>7}" + (f" {'any candidate':>14}" if args.every_candidate else ""))
    for b in by_size:
        print(f"{b['size']:>10} {b.get('density', 'all'):>24} {b['nodules']:>8} {b['listed']:>7.3f}" +
              (f" {b['any_candidate']:>14.3f}" if args.every_candidate else ""))
    stages = None
    if args.why_missed:
        from lungseg.evaluation.missed import SHORT, STAGES, stages_by_size

        stages = stages_by_size(placed, SIZE_BINS_MM)
        print("\nwhere the placed nodules were lost (the first stage each failed; lungseg.evaluation.missed):")
        print(f"{'size':>10} {'nodules':>8} " + " ".join(f"{SHORT[name]:>12}" for name in STAGES))
        for r in stages:
            print(f"{r['size']:>10} {r['nodules']:>8} " + " ".join(f"{r[name]:>12}" for name in STAGES))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join(["python benchmarks/real_nodules_in_lidc.py", *sys.argv[1:]]), "note": __doc__.split("\n\n")[0],
        "per_scan": args.per_scan, "crop_hu": args.crop_hu, "slice_mm": args.slice_mm or ct.spacing_zyx[0], "seed": args.seed[0] if len(args.seed) == 1 else args.seed, "operating_point": op, "total_s": round(time.perf_counter() - t0),
        "rows": {k: froc_to_json(v) for k, v in rows.items()}, "by_size": by_size,
        "false_findings_per_scan": float(np.mean(fp)), **({"lost_at_stage": stages} if stages else {}),
        "nodules": nodules}, indent=1))
    print(f"wrote {args.out}")
    render(shown, args.montage)
    print(f"wrote {args.montage}")


def trace(model, scan, masks: dict, nodules: list[dict]) -> None:
    """Record in each of this copy's placed nodules (index -> mask) the stage that lost it."""
    from lungseg.evaluation.missed import candidate_id_map, trace_nodule
    from lungseg.postprocess import min_nodule_size

    lungs = model.lungs(scan).labels
    probability = model.nodule.probability(scan, lungs)
    found = model.nodule.find_candidates(scan, lungs)
    ids = candidate_id_map(found, scan.shape)
    for i, mask in masks.items():
        n = nodules[i]
        n.update(trace_nodule(mask, probability, ids, found, min_nodule_size(scan.spacing_zyx),
                              model.nodule.scorer.min_inside, listed=n["detection_score"] is not None))


def listed_by(placed: list[dict], every_candidate: bool) -> list[dict]:
    """Share listed (and, with every_candidate, share that became any candidate) per size bin, then
    per size bin and density band: where the nodules that are missed sit."""
    def row(sel, **key):
        return {**key, "nodules": len(sel), "listed": round(sum(n["detection_score"] is not None for n in sel) / len(sel), 3),
                **({"any_candidate": round(sum(n["candidate_score"] is not None for n in sel) / len(sel), 3)}
                   if every_candidate else {})}

    rows, by_density = [], []
    for lo, hi in SIZE_BINS_MM:
        sel = [n for n in placed if lo <= n["diameter_mm"] < hi]
        if sel:
            rows.append(row(sel, size=f"{lo}-{hi} mm"))
        for name, hu_lo, hu_hi in DENSITY_BANDS_HU:
            band = [n for n in sel if hu_lo <= n["mean_hu"] < hu_hi]
            if band:
                by_density.append(row(band, size=f"{lo}-{hi} mm", density=name))
    return rows + by_density


def render(shown, path: Path) -> None:
    """A row of 48 mm axial windows around some of the inserted nodules (lung window)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.2 * max(1, len(shown)), 2.6), facecolor="black")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(shown))))
    for ax, (plane, (z, y, x), d, name, _) in zip(axes, sorted(shown, key=lambda item: item[2])):
        h = 30  # pixels each side: ~48 mm at 0.82 mm
        y, x = int(round(y)), int(round(x))
        ax.imshow(plane[max(0, y - h):y + h, max(0, x - h):x + h], cmap="gray", vmin=-1350, vmax=150)
        ax.set_title(f"{name.split('/')[0][-4:]} {d:.0f} mm", color="white", fontsize=8)
        ax.axis("off")
    fig.suptitle("real LIDC nodules moved into LIDC-IDRI-0003 (centre of each window)", color="white", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, facecolor="black")


if __name__ == "__main__":
    main()
