"""Whole-scan nodule detection of the shipped default model, scored as `lungseg evaluate
--detection` scores it (LUNA16 rules: FROC, CPM, patient-bootstrap CIs), before and after the
candidate scorer.

Cases: the real LIDC-IDRI-0003 series with its 4 readers' XML (references: nodules of >= 2
readers; no part of lungseg was trained on this scan, the shipped operating point was not set on
it) and 4 held-out whole-scan phantoms (512x512x160, 6 nodules each, seeds 5100-5103: never used
by any training or threshold choice). Configurations: the nodule list as `lungseg segment`
writes it with each scorer ("probability": the nodule network's mean probability, the scorer
before the candidate CNN; "network": the candidate CNN), and with --nodule-threshold 0 (every
candidate, for the whole FROC curve).

    .venv/bin/python benchmarks/whole_scan_detection.py [--configs probability,network] [--work out/bench]
Prints the tables and writes benchmarks/results/whole_scan_detection.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LIDC = SHARED / "whole_scans" / "LIDC-IDRI-0003"
PHANTOM_SEEDS = (5100, 5101, 5102, 5103)


def phantoms(work: Path) -> Path:
    """The held-out phantoms as NIfTI scans + label maps (generated once, then reused)."""
    import lungseg
    from lungseg.io import write_image
    from lungseg.synth import generate_case

    folder = work / "phantoms"
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for seed in PHANTOM_SEEDS:
        scan = folder / f"synth_{seed}.nii.gz"
        if not scan.exists():
            case = generate_case(seed, size=(512, 512, 160), n_nodules=6)
            lungseg.write_labels(case.labels, case.ct, folder / "labels" / f"synth_{seed}_labels.nii.gz")
            write_image(case.ct, scan)
    return folder


def segment_reports(scans: list[Path], out: Path, scorer: str, threshold: float | None) -> list[float]:
    import lungseg

    out.mkdir(parents=True, exist_ok=True)
    seconds = []
    for scan in scans:
        name = scan.name.split(".")[0]
        t = time.perf_counter()
        result = lungseg.segment(scan, scorer=scorer, **({"nodule_threshold": threshold} if threshold is not None else {}))
        seconds.append(time.perf_counter() - t)
        result.save_report(out / f"{name}.report.json")
    return seconds


def main() -> None:
    from lungseg.evaluation.detection import froc_to_json
    from lungseg.evaluation.detection_run import evaluate_detection

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--configs", default="probability,network")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "bench" / "detection")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "whole_scan_detection.json")
    args = ap.parse_args()
    ph = phantoms(args.work)
    sets = {"LIDC-IDRI-0003": ([LIDC / "LIDC-IDRI-0003.zip"], LIDC),
            "phantoms 5100-5103": (sorted(ph.glob("synth_*.nii.gz")), ph / "labels")}
    results = {}
    for scorer in args.configs.split(","):
        for threshold in (None, 0.0):
            config = f"{scorer}, {'listed' if threshold is None else 'every candidate'}"
            for set_name, (scans, ref) in sets.items():
                pred = args.work / scorer / ("listed" if threshold is None else "all") / set_name.split()[0]
                seconds = segment_reports(scans, pred, scorer, threshold)
                r = evaluate_detection(pred, ref, pred / "eval", n_boot=args.n_boot, label=f"{set_name} [{config}]")
                print(r["table"], "\n", flush=True)
                results[f"{set_name} [{config}]"] = {"seconds_per_scan": sum(seconds) / len(seconds),
                                                     "rows": {k: froc_to_json(v) for k, v in r["rows"].items()},
                                                     "cases": r["cases"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
