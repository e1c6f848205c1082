"""Which runtime runs the default networks fastest on this CPU, with the same masks?

For each runtime (PyTorch fp32 / bf16 autocast, ONNX Runtime fp32, OpenVINO fp32 / bf16) the
shipped lung and nodule networks segment the same scans, side by side in one run; the table
gives network milliseconds per slice (best of 2 passes), each mask's Dice against the reference
(lungs: the CIP whole-lung mask and the phantom's lungs; nodules: the LIDC validation crops,
>= 2 of 4 readers, mean Dice over crops that hold a nodule) and its agreement with PyTorch fp32's
mask. Per network, a runtime qualifies when its Dice against the reference stays within 0.001 of
fp32's (the issue's rule); the agreement column shows how many voxels move at all. Speed on a
synthetic 512x512 phantom (its 0.68 mm pixels are what the nodule model sees on thin-slice CT).

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
    """The OpenVINO runtime's logic with ONNX Runtime underneath (benchmark only)."""

    @staticmethod
    def build(onnx_path, **kw):
        import onnxruntime as ort

        from lungseg.inference.network import ModelSegmenter
        from lungseg.inference.runtimes import divisibility
        from lungseg.inference.runtimes.openvino_runtime import OpenVINORuntime

        runtime = OpenVINORuntime(onnx_path, precision="fp32")
        runtime.divisibility = divisibility(runtime.meta)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        # every graph call goes through _start/_collect: ONNX Runtime runs at _collect
        runtime._start = lambda x, slot=0: x
        runtime._collect = lambda x: session.run(None, {"image": np.ascontiguousarray(x, np.float32)})[0]
        runtime.name = "onnxruntime"
        return ModelSegmenter(runtime, dict(runtime.meta, path=str(onnx_path)), **kw)


def make_segmenter(name: str, runtime: str, precision: str):
    from lungseg.inference.network import ModelSegmenter

    path = WEIGHTS / f"{name}.pt"
    if runtime == "onnxruntime":
        return OnnxRuntimeSegmenter.build(path.with_suffix(".onnx"))
    return ModelSegmenter.from_checkpoint(path, runtime=runtime, precision=precision, resize=name != "nodule")


def lung_labels(seg, ct) -> tuple[np.ndarray, float]:
    """Labels as `lungseg segment` computes them before post-processing (each runtime's own way
    back to the slice size: OpenVINO's graph stops at 256 and lungseg.inference.upsample takes the argmax)."""
    best, labels = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        labels = seg(ct, postprocess=False).labels
        best = min(best, time.perf_counter() - t)
    return labels.astype(np.uint8), 1000 * best / ct.shape[0]


def nodule_mask(seg, ct, lung_labels) -> tuple[np.ndarray, float]:
    from lungseg.inference.candidates import NoduleSegmenter

    finder = NoduleSegmenter(seg)
    best, mask = float("inf"), None
    for _ in range(2):
        t = time.perf_counter()
        mask = finder.probability(ct, lung_labels) >= finder.threshold
        best = min(best, time.perf_counter() - t)
    return mask, 1000 * best / int((lung_labels > 0).any(axis=(1, 2)).sum())


def dice(a: np.ndarray, b: np.ndarray, values) -> float:
    scores = []
    for v in values:
        x, y = a == v, b == v
        denom = x.sum() + y.sum()
        scores.append(1.0 if denom == 0 else 2.0 * (x & y).sum() / denom)
    return float(np.mean(scores))


def lidc_val_crops():
    """The LIDC validation crops of configs/default_nodule.yaml's patient split (reference: >= 2
    of 4 readers), one (slices, 128, 128) HU stack per nodule (the 2.5D nodule model sees each
    crop's neighbours), or None without ../shared/data."""
    from lungseg.data.shared_sets import lidc_crops
    from lungseg.data.splits import split_patients
    from lungseg.errors import LungsegError
    from lungseg.io import CTImage

    try:
        cases = lidc_crops(min_readers=2, max_patients=None, as_hu=[-1000, 400], stack=True)
    except LungsegError:
        return None
    val = set(split_patients([c.patient_id for c in cases], (0.7, 0.2, 0.1), seed=0)["val"])
    pairs = [c.load() for c in cases if c.patient_id in val]
    return [(CTImage.from_array(image, spacing=(0.7, 0.7, 1.0), is_hu=True), label > 0) for image, label in pairs]


def crop_dice(seg, stacks) -> tuple[np.ndarray, float, float]:
    """(masks, mean Dice over the crops whose reference holds a nodule, ms per crop)."""
    best, mask = float("inf"), None
    channel = seg.classes.index("nodule")
    for _ in range(2):
        t = time.perf_counter()
        mask = np.concatenate([p[:, channel] for ct, _ in stacks for _, p in seg.iter_probabilities(ct)]) >= 0.5
        best = min(best, time.perf_counter() - t)
    truth = np.concatenate([t for _, t in stacks])
    has = truth.any(axis=(1, 2))
    scores = [dice(a, b, (True,)) for a, b in zip(mask[has], truth[has])]
    return mask, float(np.mean(scores)), 1000 * best / truth.shape[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slices", type=int, default=120, help="slices of the synthetic 512x512 phantom")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "runtimes.json")
    args = ap.parse_args()
    from lungseg.io import read_ct, read_labels
    from lungseg.synth import generate_case

    cip = read_ct(ROOT / "src" / "lungseg" / "sample_data" / "sample_ct.nrrd")
    phantom = generate_case(1, size=(512, 512, args.slices), n_nodules=6)
    lidc = lidc_val_crops()
    runtimes = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"),
                ("openvino", "bf16")]
    truth = {"cip": read_labels(ROOT / "src" / "lungseg" / "sample_data" / "sample_wholelung.nrrd").array > 0,
             "phantom": phantom.lung_labels()}
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
        nodule = make_segmenter("nodule", runtime, precision)
        _, row["nodule_ms_per_slice_512"] = nodule_mask(nodule, phantom.ct, truth["phantom"])
        if lidc is not None:
            mask, row["nodule_dice_lidc"], row["nodule_ms_per_crop"] = crop_dice(nodule, lidc)
            fp32.setdefault("lidc", mask)
            row["nodule_agreement_lidc"] = dice(mask, fp32["lidc"], (True,))
        rows.append(row)
        print(f"{runtime} {precision} done", flush=True)
    checks = {"lung": ("lung_dice_cip", "lung_dice_phantom"), "nodule": ("nodule_dice_lidc",) if lidc else ()}
    for row in rows:  # the issue's rule, per network: Dice within 0.001 of PyTorch fp32's
        for net, keys in checks.items():
            row[f"{net}_dice_change"] = max([abs(row[k] - rows[0][k]) for k in keys], default=float("nan"))
            row[f"{net}_qualifies"] = bool(row[f"{net}_dice_change"] <= 0.001)
    print(f"\n{'runtime':12s} {'prec':5s} | {'lung ms/slice 512':>17s} {'CIP':>5s} {'Dice 512':>8s} {'CIP':>6s} "
          f"{'agree CIP':>9s} {'ok':>3s} | {'nodule ms/slice 512':>19s} {'Dice LIDC':>9s} {'agree':>6s} {'ok':>3s}")
    for r in rows:
        print(f"{r['runtime']:12s} {r['precision']:5s} | {r['lung_ms_per_slice_phantom']:17.1f} "
              f"{r['lung_ms_per_slice_cip']:5.1f} {r['lung_dice_phantom']:8.4f} {r['lung_dice_cip']:6.4f} "
              f"{r['lung_agreement_cip']:9.4f} {'yes' if r['lung_qualifies'] else 'no':>3s} | "
              f"{r['nodule_ms_per_slice_512']:19.1f} {r.get('nodule_dice_lidc', float('nan')):9.4f} "
              f"{r.get('nodule_agreement_lidc', float('nan')):6.4f} {'yes' if r['nodule_qualifies'] else 'no':>3s}")
    chosen = {}
    for net, speed in (("lung", "lung_ms_per_slice_phantom"), ("nodule", "nodule_ms_per_slice_512")):
        best = min((r for r in rows if r[f"{net}_qualifies"]), key=lambda r: r[speed])
        chosen[net] = f"{best['runtime']} {best['precision']}"
        print(f"fastest qualifying runtime for the {net} network: {chosen[net]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "fastest": chosen, "phantom_size_xyz": [512, 512, args.slices],
                                    "lidc_val_crops": None if lidc is None else sum(t.shape[0] for _, t in lidc)}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
