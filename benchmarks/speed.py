"""End-to-end speed: lungseg's default model vs lungmask R231 on one synthetic 512x512x300 CT.

Both run as command-line tools in fresh processes (read NIfTI -> mask written), side by side in
one run. lungmask's weights cannot be downloaded here, so a randomly initialised R231 network is
saved and passed as --modelpath: its run time is the same as with trained weights.
Also prints the default networks' FLOPs on this volume over this machine's measured fp32 matmul
GFLOP/s: the physical floor of the network part.

    .venv/bin/python benchmarks/speed.py [--size 512 512 300] [--skip-lungmask] [--repeats 3] [--model default]
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


def model_flops(ct_path: Path, mask_path: Path) -> dict:
    """Forward FLOPs of the default's networks on this volume (torch's flop counter): the lung
    network on every slice at its input size; the nodule network on the windows it really ran
    on (each lung's box per batch of slices, padded as at inference), recorded by running the
    nodule finder again on the lungs of the mask our run wrote."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from lungseg.data.preprocess import input_channels
    from lungseg.inference.pipeline import LUNG_HU, NODULE
    from lungseg.inference.network import ModelSegmenter
    from lungseg.inference.runtimes import padded
    from lungseg.io import read_ct, read_labels
    from lungseg.inference.candidates import NoduleSegmenter

    def flops(seg, size) -> float:
        x = torch.zeros(1, input_channels(seg.meta.get("preprocessing", {})), *size)
        with FlopCounterMode(display=False) as fc, torch.inference_mode():
            seg.runtime.model(x)
        return fc.get_total_flops()

    labels = read_labels(mask_path).array
    lung = ModelSegmenter.from_checkpoint(LUNG_HU, runtime="torch", precision="fp32")
    out = {"gflop_lung": flops(lung, lung.input_size) * labels.shape[0] / 1e9}
    finder = NoduleSegmenter.from_checkpoint(NODULE)
    seen = []  # (slices, height, width) of every nodule-network call
    run = finder.segmenter.predict_batch

    def recorded(x):
        seen.append(x.shape[:1] + x.shape[2:])
        return run(x)

    finder.segmenter.predict_batch = recorded
    finder.box_probability(read_ct(ct_path), np.where(labels == 3, 0, labels))
    nodule = ModelSegmenter.from_checkpoint(NODULE, runtime="torch", precision="fp32", resize=False)
    per_size = {}
    for b, h, w in seen:
        size = padded((h, w), 16)
        per_size[size] = per_size.get(size) or flops(nodule, size)
        out["gflop_nodule"] = out.get("gflop_nodule", 0.0) + per_size[size] * b / 1e9
    out["gflop_per_volume"] = sum(out.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", nargs=3, type=int, default=[512, 512, 300], metavar=("X", "Y", "Z"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--skip-lungmask", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours (the median is reported)")
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
        runs = [timed([lungseg, "segment", str(vol), "-o", str(tmp / "ours.nii.gz"), "--model", args.model,
                       "--quiet"]) for _ in range(args.repeats)]  # this VM is noisy: the median of a few runs
        r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
        rows.append({"tool": f"lungseg ({args.model})", **r, "all_seconds": [x["seconds"] for x in runs]})
        flops = model_flops(vol, tmp / "ours.nii.gz") if args.model == "default" and r["rc"] == 0 else None
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
    flops = flops or {"gflop_per_volume": float("nan")}
    floor_s = flops["gflop_per_volume"] / gflops
    print(f"\n{'tool':34s} {'seconds':>8s} {'slices/s':>9s} {'peak RSS MB':>12s}")
    for row in rows:
        print(f"{row['tool']:34s} {row['seconds']:8.1f} {row['slices_per_s']:9.1f} {row['peak_rss_mb']:12.0f}")
    print(f"(lungseg: median of {args.repeats} runs: {', '.join(f'{x:.1f}' for x in rows[0]['all_seconds'])} s)")
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
