"""End-to-end speed: lungseg's default model vs lungmask R231 on one synthetic 512x512x300 CT.

Both run as command-line tools in fresh processes (read NIfTI -> mask written), side by side in
one run. lungmask's weights cannot be downloaded here, so a randomly initialised R231 network is
saved and passed as --modelpath: its run time is the same as with trained weights.
Also prints the default model's FLOPs per volume over this machine's measured matmul GFLOP/s.

    .venv/bin/python benchmarks/speed.py [--size 512 512 300] [--skip-lungmask] [--model default]
Prints a table and writes benchmarks/results/speed.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNER = (
    "import resource, subprocess, sys, time, json\n"
    "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "dt = time.perf_counter() - t\n"
    "print(json.dumps({'rc': r.returncode, 'seconds': dt, 'peak_rss_mb': "
    "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 'stderr': r.stderr[-400:]}))\n"
)


def timed(cmd: list[str]) -> dict:
    """Wall time and peak RSS of a command, measured by a fresh parent process."""
    out = subprocess.run([sys.executable, "-c", RUNNER, *cmd], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_volume(size, path: Path, seed: int = 0) -> None:
    from lungseg.io import write_image
    from lungseg.synth import generate_case

    case = generate_case(seed, size=tuple(size))
    write_image(case.ct, path)


def random_r231(path: Path) -> None:
    import torch
    from lungmask.mask import get_model  # noqa: F401  (import check)
    from lungmask.resunet import UNet

    torch.manual_seed(0)
    model = UNet(n_classes=3, padding=True, depth=5, up_mode="upsample", batch_norm=True, residual=False)
    torch.save(model.state_dict(), path)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def model_flops(model_arg: str, shape_zyx) -> dict:
    """Forward FLOPs of the networks behind `model_arg` for one volume (torch's flop counter).
    A network without a fixed input size (the nodule model) is counted on whole slices: an
    upper bound, since it really runs on the lungs' bounding box only."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lungseg.data.preprocess import num_channels
    from lungseg.segmenters import resolve_segmenter

    seg = resolve_segmenter(model_arg)
    parts = [p for p in getattr(seg, "parts", [seg]) if hasattr(p, "model")]
    if hasattr(seg, "lung_image"):  # HU input never reaches the image-mode model
        parts = [p for p in parts if p is not seg.lung_image]
    total = 0.0
    for part in parts:
        size = tuple(part.input_size or shape_zyx[1:])
        x = torch.zeros(1, num_channels(part.intensity), *size)
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            part.model(x)
        total += fc.get_total_flops() * shape_zyx[0]
    return {"gflop_per_volume": total / 1e9}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", nargs=3, type=int, default=[512, 512, 300], metavar=("X", "Y", "Z"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--skip-lungmask", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed.json")
    args = ap.parse_args()
    lungseg = str(Path(sys.executable).with_name("lungseg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vol = tmp / "ct.nii.gz"
        t = time.perf_counter()
        make_volume(args.size, vol)
        print(f"synthetic {args.size} volume written in {time.perf_counter() - t:.1f} s", flush=True)
        n_slices = args.size[2]
        r = timed([lungseg, "segment", str(vol), "-o", str(tmp / "ours.nii.gz"), "--model", args.model, "--quiet"])
        rows.append({"tool": f"lungseg ({args.model})", **r})
        if not args.skip_lungmask:
            weights = tmp / "r231_random.pth"
            random_r231(weights)
            lm = str(Path(sys.executable).with_name("lungmask"))
            r = timed([lm, str(vol), str(tmp / "lm.nii.gz"), "--modelpath", str(weights), "--noprogress"])
            rows.append({"tool": "lungmask R231 (random weights)", **r})
    for row in rows:
        row["slices_per_s"] = n_slices / row["seconds"]
        if row["rc"] != 0:
            print(f"{row['tool']} failed: {row['stderr']}", file=sys.stderr)
    gflops = matmul_gflops()
    flops = model_flops(args.model, (args.size[2], args.size[1], args.size[0]))
    floor_s = flops["gflop_per_volume"] / gflops
    print(f"\n{'tool':34s} {'seconds':>8s} {'slices/s':>9s} {'peak RSS MB':>12s}")
    for row in rows:
        print(f"{row['tool']:34s} {row['seconds']:8.1f} {row['slices_per_s']:9.1f} {row['peak_rss_mb']:12.0f}")
    if len(rows) == 2:
        print(f"speed-up vs lungmask: {rows[1]['seconds'] / rows[0]['seconds']:.1f}x")
    print(f"model FLOPs: {flops['gflop_per_volume']:.0f} GFLOP per volume; measured matmul {gflops:.0f} GFLOP/s "
          f"-> physical floor {floor_s:.2f} s (ours is {rows[0]['seconds'] / max(floor_s, 1e-9):.1f}x the floor)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"size_xyz": args.size, "rows": rows, "matmul_gflops": gflops, **flops,
                                    "floor_seconds": floor_s}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
