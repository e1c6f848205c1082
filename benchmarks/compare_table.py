"""The architecture comparison: every configs/compare/*.yaml trained on the same data, split and
budget, scored on the same validation (synthetic) and test (real) cases, timed on the same slices.

    .venv/bin/python benchmarks/compare_table.py             # full: 6 epochs each (tens of minutes on CPU)
    .venv/bin/python benchmarks/compare_table.py --quick     # 1 epoch of 16 slices each (a smoke run)
    .venv/bin/python benchmarks/compare_table.py --reuse     # re-score the models already trained

Runs `lungseg.compare.compare` (the `lungseg compare` command) into runs/bench/compare[_quick]/
(git-ignored; compare.csv/json, per_case.csv, compare.png there) and writes
benchmarks/results/compare.json (the table, settings and each model's summary; "quick" says which
mode). Inference times on a shared, busy CPU are noisy: use --threads 1 there, and compare times
only within one run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lungseg.compare import compare, format_table  # noqa: E402
from lungseg.evaluation.tables import write_json  # noqa: E402

FIRST = ("fast_unet", "unet", "attention_unet", "se_unet_aux")  # table order; the first one's data is used
QUICK = ["data.samples_per_epoch=16", "data.val_samples=16"]


def config_paths() -> list[Path]:
    paths = sorted((ROOT / "configs" / "compare").glob("*.yaml"))
    rank = {name: i for i, name in enumerate(FIRST)}
    return sorted(paths, key=lambda p: (rank.get(p.stem, len(FIRST)), p.stem))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 epoch of 16 slices per model, 200 bootstrap resamples")
    ap.add_argument("--epochs", type=int, help="epochs per model (default: the configs' 6; 1 with --quick)")
    ap.add_argument("--budget-minutes", type=float, help="wall-clock training budget per model")
    ap.add_argument("--reuse", action="store_true", help="reuse trained models in the run folder")
    ap.add_argument("--threads", type=int, help="CPU inference threads for timing (default: all cores)")
    args = ap.parse_args(argv)
    out = ROOT / "runs" / "bench" / ("compare_quick" if args.quick else "compare")
    overrides = ["progress=false", "tensorboard=false", "curves=false"] + (QUICK if args.quick else [])
    paths = config_paths()
    result = compare(paths, out, epochs=args.epochs or (1 if args.quick else None),
                     budget_minutes=args.budget_minutes, reuse=args.reuse, overrides=overrides,
                     n_boot=200 if args.quick else 1000, timing_slices=8 if args.quick else 16,
                     threads=args.threads)
    print(format_table(result))
    light = [{k: v for k, v in m.items() if k != "results"} for m in result["models"]]
    for m, full in zip(light, result["models"]):
        m["lesions"] = {s: r.get("lesions", []) for s, r in full["results"].items()}
    write_json({"quick": args.quick, "configs": [str(p.relative_to(ROOT)) for p in paths], "run_folder":
                str(out.relative_to(ROOT)), "rule": result["rule"], "settings": result["settings"],
                "data": result["data"], "notes": result["notes"], "table": result["table"], "models": light},
               ROOT / "benchmarks" / "results" / "compare.json")
    print(f"wrote benchmarks/results/compare.json; figure and per-case rows in {out.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
