"""Speed of the phantom generator, plus its realism numbers (HU per tissue, classical Dice).

Prints tables and writes benchmarks/results/synth_speed.json.
    .venv/bin/python benchmarks/synth_speed.py               # 128x128x64, 256x256x120, 512x512x300
    .venv/bin/python benchmarks/synth_speed.py --repeat 3 --big 600 --dice 6
Target: one 512x512x300 volume in <= 20 s on the 2-core development VM.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from lungseg.synth import Tissue, generate_case

GRIDS = [  # (label, overrides)
    ("128x128x64 (default)", dict(shape=(64, 128, 128))),
    ("256x256x120", dict(shape=(120, 256, 256))),
    ("512x512x300 0.7x0.7x1.0 mm", dict(shape=(300, 512, 512), spacing=(0.7, 0.7, 1.0))),
]


def time_grids(repeat: int, big: int | None) -> list[dict]:
    grids = list(GRIDS)
    if big:
        grids.append((f"512x512x{big} 0.7x0.7x0.6 mm", dict(shape=(big, 512, 512), spacing=(0.7, 0.7, 0.6))))
    rows = []
    for label, ov in grids:
        times = []
        for r in range(repeat):
            t = time.perf_counter()
            case = generate_case(r, difficulty="mixed", **ov)
            times.append(time.perf_counter() - t)
        nvox = int(np.prod(case.ct.shape))
        rows.append({"grid": label, "voxels_M": round(nvox / 1e6, 1), "median_s": round(statistics.median(times), 2),
                     "min_s": round(min(times), 2), "max_s": round(max(times), 2),
                     "Mvox_per_s": round(nvox / 1e6 / statistics.median(times), 1), "runs": repeat})
        print(f"{label:30s} {rows[-1]['voxels_M']:7.1f} Mvox  median {rows[-1]['median_s']:6.2f} s  "
              f"(min {rows[-1]['min_s']:.2f}, max {rows[-1]['max_s']:.2f})", flush=True)
    return rows


def hu_table(seed: int = 2) -> list[dict]:
    """Mean/std/5-95 percentiles of HU per tissue, on voxels whose in-plane neighbours share it."""
    case = generate_case(seed, shape=(120, 256, 256), difficulty="easy", contrast=False)
    arr, tis = case.ct.array, case.tissue
    rows = []
    for t in Tissue:
        m = ndi.binary_erosion((tis == t) & (arr > -1500), np.ones((1, 3, 3), bool))
        if m.sum() < 20:
            continue
        v = arr[m]
        rows.append({"tissue": t.name.lower(), "voxels": int(m.sum()), "mean": round(float(v.mean()), 1),
                     "std": round(float(v.std()), 1), "p5": round(float(np.percentile(v, 5))),
                     "p95": round(float(np.percentile(v, 95)))})
        r = rows[-1]
        print(f"{r['tissue']:14s} {r['voxels']:9d} {r['mean']:8.1f} {r['std']:7.1f} {r['p5']:7d} {r['p95']:7d}")
    return rows


def classical_dice(n: int) -> dict:
    from lungseg.classical import segment_classical

    def one(case):
        pred, ref = segment_classical(case.ct), case.lung_labels()
        return [float(2 * ((pred == k) & (ref == k)).sum() / max((pred == k).sum() + (ref == k).sum(), 1))
                for k in (1, 2)]

    out = {}
    for name, ov in (("easy", dict(difficulty="easy")),
                     ("hard", dict(difficulty="hard", effusion=True, consolidation=True, touching_lungs=True)),
                     ("touching only", dict(difficulty="easy", touching_lungs=True)),
                     ("effusion only", dict(difficulty="easy", effusion=True)),
                     ("consolidation only", dict(difficulty="easy", consolidation=True))):
        d = np.array([one(generate_case(s, **ov)) for s in range(n)])
        out[name] = {"mean": round(float(d.mean()), 4), "min": round(float(d.min()), 4),
                     "per_case_right_left": d.round(4).tolist()}
        print(f"{name:20s} mean Dice {d.mean():.3f}  min {d.min():.3f}  (n={n}, 128x128x64, right+left)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per grid (seeds 0..repeat-1)")
    ap.add_argument("--big", type=int, default=None, metavar="NZ", help="also time 512x512xNZ at 0.6 mm slices")
    ap.add_argument("--dice", type=int, default=4, metavar="N", help="classical Dice on N phantoms per set (0: skip)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "synth_speed.json"))
    args = ap.parse_args()
    print("== generation time ==")
    speed = time_grids(args.repeat, args.big)
    print("== HU per tissue (seed 2, 256x256x120, clean, no contrast) ==")
    print(f"{'tissue':14s} {'voxels':>9s} {'mean':>8s} {'std':>7s} {'p5':>7s} {'p95':>7s}")
    hu = hu_table()
    dice = {}
    if args.dice:
        print("== classical segmenter on phantoms ==")
        dice = classical_dice(args.dice)
    result = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "cpus": __import__("os").cpu_count()},
              "speed": speed, "hu_per_tissue": hu, "classical_dice": dice,
              "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"peak RSS {result['peak_rss_MB']} MB; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
