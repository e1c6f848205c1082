"""Which runtime runs the default networks fastest on this CPU, with the same masks?

For each runtime (PyTorch fp32 / bf16 autocast, ONNX Runtime fp32, OpenVINO fp32 / bf16) the
shipped lung and nodule networks segment the same scans, side by side in one run; the table
gives network milliseconds per slice (best of 2 passes), each mask's Dice against the reference
(the CIP whole-lung mask; the phantom's lungs and nodules) and its agreement with PyTorch fp32's
mask. A runtime qualifies when its Dice against the reference stays within 0.001 of fp32's
(the issue's rule); the agreement column shows how many voxels move at all. Scans: the bundled CIP sample (real, 4 mm) and a synthetic 512x512 phantom
with nodules (its 0.68 mm pixels are what the nodule model sees on thin-slice CT).

    .venv/bin/python benchmarks/runtimes.py [--slices 120]
Prints a table and writes benchmarks/results/runtimes.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "lungseg" / "weights"


class OnnxRuntimeSegmenter:
    """The OpenVINO segmenter's logic with ONNX Runtime underneath (benchmark only)."""

    @staticmethod
    def build(onnx_path, **kw):
        import onnxruntime as ort

        from lungseg.infer_openvino import OpenVINOSegmenter

        seg = OpenVINOSegmenter(onnx_path, precision="fp32", **kw)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        seg._run = lambda x: session.run(None, {"image": np.ascontiguousarray(x, np.float32)})[0]
        seg.runtime, seg.precision = "onnxruntime", "fp32"
        return seg


def make_segmenter(name: str, runtime: str, precision: str):
    from lungseg.infer import ModelSegmenter

    resize = name != "nodule"
    path = WEIGHTS / f"{name}.pt"
    if runtime == "onnxruntime":
        seg = OnnxRuntimeSegmenter.build(path.with_suffix(".onnx"))
    else:
        seg = ModelSegmenter.from_checkpoint(path, runtime=runtime, precision=precision, resize=resize)
    if not resize:
        seg.input_size = None
    return seg


def lung_labels(seg, ct) -> tuple[np.ndarray, float]:
    best, labels = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        winner = np.concatenate([p.argmax(axis=1) for _, p in seg.iter_probabilities(ct)])
        best = min(best, time.perf_counter() - t)
        labels = winner
    return labels.astype(np.uint8), 1000 * best / ct.shape[0]


def nodule_mask(seg, ct, lungs) -> tuple[np.ndarray, float]:
    from lungseg.nodules import NoduleSegmenter

    finder = NoduleSegmenter(seg)
    best, mask = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        mask = finder.probability(ct, lungs) >= finder.threshold
        best = min(best, time.perf_counter() - t)
    return mask, 1000 * best / int(lungs.any(axis=(1, 2)).sum())


def dice(a: np.ndarray, b: np.ndarray, values) -> float:
    scores = []
    for v in values:
        x, y = a == v, b == v
        denom = x.sum() + y.sum()
        scores.append(1.0 if denom == 0 else 2.0 * (x & y).sum() / denom)
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=120, help="slices of the synthetic 512x512 phantom")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "runtimes.json")
    args = ap.parse_args()
    from lungseg.io import read_ct, read_labels
    from lungseg.synth import generate_case

    cip = read_ct(ROOT / "src" / "lungseg" / "sample_data" / "sample_ct.nrrd")
    phantom = generate_case(1, size=(512, 512, args.slices), n_nodules=6)
    lungs = np.isin(phantom.lung_labels(), (1, 2))
    runtimes = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"),
                ("openvino", "bf16")]
    truth = {"cip": read_labels(ROOT / "src" / "lungseg" / "sample_data" / "sample_wholelung.nrrd").array > 0,
             "phantom": phantom.lung_labels(), "nodule": phantom.labels == 3}
    rows, fp32 = [], {}
    for runtime, precision in runtimes:
        row = {"runtime": runtime, "precision": precision}
        seg = make_segmenter("lung_hu", runtime, precision)
        for case, ct in (("cip", cip), ("phantom", phantom.ct)):
            labels, ms = lung_labels(seg, ct)
            fp32.setdefault(case, labels)
            row[f"lung_ms_per_slice_{case}"] = ms
            row[f"lung_agreement_{case}"] = dice(labels, fp32[case], (1, 2))
            row[f"lung_dice_{case}"] = dice(labels > 0, truth[case], (True,)) if case == "cip" else \
                dice(labels, truth[case], (1, 2))
        mask, ms = nodule_mask(make_segmenter("nodule", runtime, precision), phantom.ct, lungs)
        fp32.setdefault("nodule", mask)
        row["nodule_ms_per_slice"] = ms
        row["nodule_agreement"] = dice(mask, fp32["nodule"], (True,))
        row["nodule_dice"] = dice(mask, truth["nodule"], (True,))
        rows.append(row)
        print(f"{runtime} {precision} done", flush=True)
    for row in rows:
        row["max_dice_change"] = max(abs(row[k] - rows[0][k]) for k in ("lung_dice_cip", "lung_dice_phantom",
                                                                      "nodule_dice"))
        row["qualifies"] = row["max_dice_change"] <= 0.001
    print(f"\n{'runtime':12s} {'prec':5s} {'ms/slice: lung512':>17s} {'lungCIP':>8s} {'nodule':>7s} "
          f"{'Dice: lung512':>13s} {'lungCIP':>8s} {'nodule':>7s} {'agree: lung512':>14s} {'lungCIP':>8s} "
          f"{'nodule':>7s} {'max dDice':>9s} qualifies")
    for r in rows:
        print(f"{r['runtime']:12s} {r['precision']:5s} {r['lung_ms_per_slice_phantom']:17.1f} "
              f"{r['lung_ms_per_slice_cip']:8.1f} {r['nodule_ms_per_slice']:7.1f} {r['lung_dice_phantom']:13.4f} "
              f"{r['lung_dice_cip']:8.4f} {r['nodule_dice']:7.4f} {r['lung_agreement_phantom']:14.4f} "
              f"{r['lung_agreement_cip']:8.4f} {r['nodule_agreement']:7.4f} {r['max_dice_change']:9.4f} "
              f"{r['qualifies']}")
    fastest = min((r for r in rows if r["qualifies"]),
                  key=lambda r: r["lung_ms_per_slice_phantom"] + r["nodule_ms_per_slice"])
    print(f"fastest qualifying runtime: {fastest['runtime']} {fastest['precision']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "fastest": f"{fastest['runtime']} {fastest['precision']}",
                                    "phantom_size_xyz": [512, 512, args.slices]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
