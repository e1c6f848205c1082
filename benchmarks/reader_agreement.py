"""Inter-reader agreement on the shared LIDC nodule crops: each reader vs the consensus of the others.

Prints per-crop and per-nodule tables (Dice mean with patient-bootstrap 95% CI) and writes
benchmarks/results/reader_agreement.json and reader_agreement.png. This is the human reference a
nodule model is placed against (see lungseg.evaluation.readers_agreement for the rules).

    .venv/bin/python benchmarks/reader_agreement.py [--max-patients N] [--n-boot 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from lungseg.evaluation.readers_agreement import MIN_VOTES, format_table, reader_agreement
from lungseg.evaluation.tables import write_json

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("LUNGSEG_SHARED_DATA") or REPO.parent / "shared" / "data")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tarball", type=Path, default=shared_data() / "nodules/lidc_crops_128/lidc_crops_shared.tar.gz")
    ap.add_argument("--max-patients", type=int, default=None, help="first N patients only (quick check)")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-votes", type=int, default=MIN_VOTES, help="consensus: pixels marked by >= this many "
                                                                      "of the other readers (default 2 of 3)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/reader_agreement.json")
    args = ap.parse_args(argv)
    if not args.tarball.exists():
        print(f"LIDC crops not found: {args.tarball} (set LUNGSEG_SHARED_DATA)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = reader_agreement(args.tarball, args.n_boot, args.seed, args.max_patients, args.min_votes)
    seconds = time.perf_counter() - t0
    print(f"LIDC crops: {res['n_patients']} patients, {res['n_nodules']} nodules, {res['n_crops']} crops; "
          f"crops marked by 0..4 readers: {res['readers_marking_crop']}")
    print(f"reference for reader r = pixels marked by >= {args.min_votes} of the other readers; crops where that "
          "consensus is empty are left out (cons.empty; 'alone' = reader r marked something there)\n")
    print(format_table(res["per_crop"], "per 2D crop"))
    print()
    print(format_table(res["per_nodule"], "per nodule (slices stacked)"))
    print(f"\n{seconds:.1f} s")
    crop_rows = res.pop("crop_rows")
    write_json({**res, "tarball": str(args.tarball), "n_boot": args.n_boot, "seed": args.seed,
                "seconds": round(seconds, 1), "rules": reader_rules()}, args.out)
    _plot(crop_rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def reader_rules() -> str:
    import lungseg.evaluation.readers_agreement as m

    return " ".join(m.__doc__.split())


def _plot(crop_rows, path):
    from lungseg.evaluation.plots import reader_agreement_plot

    readers = sorted({r["reader"] for r in crop_rows})
    per_reader = {f"reader {k}": np.array([r["dice"] for r in crop_rows if r["reader"] == k and r["defined"]])
                  for k in readers}
    reader_agreement_plot(per_reader, path, "LIDC crops: each reader vs consensus (>= 2) of the others, per crop")


if __name__ == "__main__":
    sys.exit(main())
