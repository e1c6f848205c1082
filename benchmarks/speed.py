"""End-to-end speed: lungseg's default model vs lungmask R231 on 512x512x300 CTs.

Volumes: a synthetic 512x512x300 phantom; REAL content: the LIDC-IDRI-0003 series (512x512x140,
2.5 mm) resampled to 512x512x300 (linear along z) as NIfTI, and the same series as it comes, a
DICOM zip. Both tools run as command-line tools in fresh processes (read -> mask written; ours
also writes the report and the preview, the whole `lungseg segment` job), side by side in one
run; lungmask on the 512x512x300 volumes. lungmask's weights cannot be downloaded here, so a randomly initialised R231 network is
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

LIDC_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "whole_scans" / "LIDC-IDRI-0003" / \
    "LIDC-IDRI-0003.zip"
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


def real_volume(path: Path, slices: int = 300) -> None:
    """LIDC-IDRI-0003 (real CT) resampled along z to `slices` slices, geometry kept consistent."""
    from scipy import ndimage as ndi

    from lungseg.io import read_ct, write_image

    ct = read_ct(LIDC_ZIP)
    factor = slices / ct.shape[0]
    array = ndi.zoom(ct.array, (factor, 1, 1), order=1, grid_mode=True, mode="nearest")
    spacing = (ct.spacing[0], ct.spacing[1], ct.spacing[2] / factor)
    write_image(ct.with_array(array, spacing=spacing, original=None, format="nifti"), path)


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
    ap.add_argument("--skip-lungmask", action="store_true", help="(lungmask comes with pip install -e '.[bench]')")
    ap.add_argument("--skip-real", action="store_true", help="synthetic volume only")
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours (the median is reported)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed.json")
    args = ap.parse_args()
    lungseg = str(Path(sys.executable).with_name("lungseg"))
    rows, flops = [], None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        volumes = {f"synthetic {'x'.join(map(str, args.size))}": (tmp / "ct.nii.gz", args.size[2])}
        t = time.perf_counter()
        make_volume(args.size, volumes[next(iter(volumes))][0])
        if not args.skip_real and LIDC_ZIP.exists():
            real_volume(tmp / "real300.nii.gz", 300)
            volumes["real LIDC-IDRI-0003 resampled 512x512x300"] = (tmp / "real300.nii.gz", 300)
            volumes["real LIDC-IDRI-0003 DICOM zip 512x512x140"] = (LIDC_ZIP, 140)
        print(f"volumes written in {time.perf_counter() - t:.1f} s", flush=True)
        weights = None
        for name, (vol, n_slices) in volumes.items():
            out = tmp / "ours.nii.gz"
            runs = [timed([lungseg, "segment", str(vol), "-o", str(out), "--model", args.model, "--report",
                           str(tmp / "r.json"), "--preview", str(tmp / "p.png"), "--quiet"])
                    for _ in range(args.repeats)]  # this VM is noisy: the median of a few runs
            r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
            rows.append({"volume": name, "slices": n_slices, "tool": f"lungseg ({args.model})", **r,
                         "all_seconds": [x["seconds"] for x in runs]})
            if flops is None and args.model == "default" and r["rc"] == 0:
                flops = model_flops(vol, out)
            if not args.skip_lungmask and n_slices == args.size[2]:
                if weights is None:
                    weights = tmp / "r231_random.pth"
                    random_r231(weights)
                lm = str(Path(sys.executable).with_name("lungmask"))
                r = timed([lm, str(vol), str(tmp / "lm.nii.gz"), "--modelpath", str(weights), "--noprogress"])
                rows.append({"volume": name, "slices": n_slices, "tool": "lungmask R231 (random weights)", **r})
    for row in rows:
        row["slices_per_s"] = row["slices"] / row["seconds"]
        if row["rc"] != 0:
            print(f"{row['tool']} on {row['volume']} failed: {row['stderr']}", file=sys.stderr)
    gflops = matmul_gflops()
    flops = flops or {"gflop_per_volume": float("nan")}
    floor_s = flops["gflop_per_volume"] / gflops
    print(f"\n{'volume':44s} {'tool':32s} {'seconds':>8s} {'slices/s':>9s} {'peak RSS MB':>12s}")
    for row in rows:
        print(f"{row['volume']:44s} {row['tool']:32s} {row['seconds']:8.1f} {row['slices_per_s']:9.1f} "
              f"{row['peak_rss_mb']:12.0f}")
    for name in dict.fromkeys(r["volume"] for r in rows):
        ours = next(r for r in rows if r["volume"] == name and r["tool"].startswith("lungseg"))
        print(f"{name}: lungseg median of {args.repeats} runs: {', '.join(f'{x:.1f}' for x in ours['all_seconds'])} s")
        lm = [r for r in rows if r["volume"] == name and r["tool"].startswith("lungmask")]
        if lm:
            print(f"{name}: speed-up vs lungmask {lm[0]['seconds'] / ours['seconds']:.1f}x")
    print(f"model FLOPs (synthetic volume): {flops['gflop_per_volume']:.0f} GFLOP; measured matmul {gflops:.0f} "
          f"GFLOP/s -> physical floor {floor_s:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"size_xyz": args.size, "rows": rows, "matmul_gflops": gflops, **flops,
                                    "floor_seconds": floor_s}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
