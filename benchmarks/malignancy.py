"""Malignancy classifiers side by side on the LIDC nodule crops (validation patients; --test adds
the test patients, to be run once for the final choice), and on the whole LIDC-IDRI-0003 scan.

Trained runs come from `lungseg compare configs/classifier_*.yaml -o RUNS` (or `lungseg train
configs/classifier_<name>.yaml -o RUNS/classifier_<name>`). For each: AUC (median > 3 vs < 3, indeterminate left out) with a 95% CI
resampling patients, accuracy / sensitivity / specificity at the threshold chosen on validation,
calibration (Brier, reliability plot), the size-only AUC on the same nodules, how the score
follows size (Spearman), the AUC inside a size band (does it see more than size?), and the AUC
under the stricter rule (median <= 2 vs >= 4). Writes benchmarks/results/malignancy.json and
malignancy_calibration.png.

    .venv/bin/python benchmarks/malignancy.py --runs runs/classifiers [--test]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from lungseg.classification.compare import weights_of
from lungseg.classification.metrics import roc_auc
from lungseg.classification.train import _with_features, patient_figures, predict_network, split_samples
from lungseg.classification.samples import load_samples
from lungseg.data.crop_hu import CROP_HU, crop_as_hu

NAMES = ("size_only", "radiomics", "small_cnn", "resnet34", "efficientnet_b4")
SIZE_BAND_MM = (8.0, 20.0)  # where size alone separates least well


def scorer_for(name: str, run: Path):
    weights = weights_of(run, name)
    if weights is None:  # size_only
        return lambda samples: np.array([s.meta["diameter_mm"] for s in samples])
    if weights.suffix == ".json":
        from lungseg.classification.radiomics import RadiomicsModel

        model = RadiomicsModel.load(weights)
        return lambda samples: model.predict([s.meta["features"] for s in samples])
    from lungseg.classification.train import load_classifier_state

    model, _ = load_classifier_state(weights)
    return lambda samples: predict_network(model, samples)


def threshold_of(name: str, run: Path) -> float | None:
    if name == "size_only":
        return None
    meta = json.loads((run / "classifier.json").read_text())
    return float(meta["threshold"])


def extra_figures(samples, scores) -> dict:
    lab = [i for i, s in enumerate(samples) if s.label is not None]
    y = np.array([samples[i].label for i in lab], bool)
    s = np.asarray(scores, float)[lab]
    d = np.array([samples[i].meta["diameter_mm"] for i in lab])
    band = (d >= SIZE_BAND_MM[0]) & (d < SIZE_BAND_MM[1])
    med = np.array([samples[i].meta["median"] for i in lab])
    strict = (med <= 2) | (med >= 4)
    return {"auc_in_size_band": {"band_mm": list(SIZE_BAND_MM), "n": int(band.sum()), "auc": roc_auc(y[band], s[band]),
                                 "size_only_auc": roc_auc(y[band], d[band])},
            "auc_strict_rule": {"rule": "median <= 2 vs >= 4", "n": int(strict.sum()), "auc": roc_auc(y[strict], s[strict])}}


def whole_scan_check(names, runs: Path) -> dict:
    """The classifiers on LIDC-IDRI-0003's consensus nodules (>= 2 readers), against the XML's ratings."""
    from lungseg.data.lidc import load_lidc_case
    from lungseg.data.malignancy import malignancy_label
    from lungseg.inference.classify import NoduleClassifier

    folder = Path(__file__).resolve().parents[2] / "shared/data/whole_scans/LIDC-IDRI-0003"
    if not folder.exists():
        return {}
    case = load_lidc_case(folder)
    hu = case.ct.array.astype(np.float32)
    rows = []
    for k, nodule in enumerate(n for n in case.nodules if n.n_readers >= 2):
        box, mask = nodule.consensus(2)
        pts = tuple(np.nonzero(mask)[i] + box[i].start for i in range(3))
        row = {"nodule": k, "diameter_mm": round(nodule.diameter_mm, 1), "ratings": nodule.malignancy_ratings,
               "median": nodule.median_malignancy, "label": malignancy_label(nodule.malignancy_ratings)}
        for name in names:
            if name == "size_only":
                continue
            clf = NoduleClassifier(weights_of(runs / f"classifier_{name}", name))
            t0 = time.perf_counter()
            row[name] = clf.classify(hu, case.ct.spacing_zyx, pts)
            row[name]["first_call_s"] = round(time.perf_counter() - t0, 3)  # includes compiling the network
        rows.append(row)
    return {"case": "LIDC-IDRI-0003", "nodules": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/classifiers"))
    ap.add_argument("--names", nargs="+", default=list(NAMES))
    ap.add_argument("--test", action="store_true", help="also score the test patients (once, for the final choice)")
    ap.add_argument("--crop-hu", choices=list(CROP_HU), default="estimate",
                    help="the crops' HU: the fixed [-1000, 400] window, or each slice's own estimated scale "
                         "(lungseg.data.crop_hu), as on real CT")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "malignancy.json")
    args = ap.parse_args(argv)

    from lungseg.data.config import SplitConfig

    source = {"type": "lidc_malignancy", "min_readers": 2, "as_hu": crop_as_hu(args.crop_hu)}
    parts = split_samples(_with_features(load_samples([source])),
                          SplitConfig(fractions=(0.7, 0.2, 0.1), seed=0))
    names = [n for n in args.names if n == "size_only" or (args.runs / f"classifier_{n}").exists()]
    result = {"split": {k: len(v) for k, v in parts.items()}, "crop_hu": args.crop_hu, "classifiers": {}}
    scores = {}
    for name in names:
        run = args.runs / f"classifier_{name}"
        score = scorer_for(name, run)
        entry = {}
        for split in ("val", "test") if args.test else ("val",):
            samples = parts[split]
            s = score(samples)
            scores[(name, split)] = (samples, s)
            t = threshold_of(name, run) if split == "test" or name != "size_only" else None
            if split == "test" and t is None:
                t = entry["val"]["threshold"]
            entry[split] = {**patient_figures(samples, s, t), **extra_figures(samples, s)}
        result["classifiers"][name] = entry
    result["whole_scan"] = whole_scan_check(names, args.runs)
    _plot(scores, args.out.with_name("malignancy_calibration.png"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(table(result))
    return 0


def table(result) -> str:
    lines = ["| classifier | split | AUC [95% CI] | accuracy | sensitivity | specificity | Brier | size-only AUC | "
             "Spearman vs size | AUC 8-20 mm (size only) | AUC strict rule |", "|" + "---|" * 11]
    for name, entry in result["classifiers"].items():
        for split, f in entry.items():
            a, band = f["auc"], f["auc_in_size_band"]
            brier = f["calibration"]["brier"] if name != "size_only" else math.nan
            lines.append(f"| {name} | {split} | {a['auc']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | {f['accuracy']:.3f} | "
                         f"{f['sensitivity']:.3f} | {f['specificity']:.3f} | {brier:.3f} | {f['size_only_auc']['auc']:.3f} | "
                         f"{f.get('spearman_score_vs_diameter', math.nan):.2f} | {band['auc']:.3f} ({band['size_only_auc']:.3f}, "
                         f"n={band['n']}) | {f['auc_strict_rule']['auc']:.3f} |")
    for row in result.get("whole_scan", {}).get("nodules", []):
        scores = ", ".join(f"{k} {v['malignancy_score']:.2f}" for k, v in row.items() if isinstance(v, dict))
        lines.append(f"LIDC-IDRI-0003 nodule {row['nodule']}: {row['diameter_mm']} mm, ratings {row['ratings']} "
                     f"(median {row['median']}, {row['label']}): {scores}")
    return "\n".join(lines)


def _plot(scores, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = sorted({k[1] for k in scores}, key=["val", "test"].index)
    fig, axes = plt.subplots(len(splits), 2, figsize=(10, 4.5 * len(splits)), squeeze=False)
    for r, split in enumerate(splits):
        roc_ax, cal_ax = axes[r]
        for (name, sp), (samples, s) in scores.items():
            if sp != split:
                continue
            lab = [i for i, x in enumerate(samples) if x.label is not None]
            y = np.array([samples[i].label for i in lab], bool)
            v = np.asarray(s, float)[lab]
            order = np.argsort(-v)
            tpr = np.concatenate([[0], np.cumsum(y[order]) / y.sum()])
            fpr = np.concatenate([[0], np.cumsum(~y[order]) / (~y).sum()])
            colour = f"C{NAMES.index(name)}" if name in NAMES else None  # one colour per classifier in both panels
            roc_ax.plot(fpr, tpr, color=colour, label=f"{name} (AUC {roc_auc(y, v):.3f})")
            if name == "size_only":
                continue
            edges = np.linspace(0, 1, 6)
            which = np.clip(np.digitize(v, edges) - 1, 0, 4)
            pts = [(v[which == b].mean(), y[which == b].mean()) for b in range(5) if (which == b).sum() >= 3]
            if pts:
                cal_ax.plot(*zip(*pts), "o-", color=colour, label=name)
        roc_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        roc_ax.set(title=f"ROC, {split} patients (median > 3 vs < 3)", xlabel="1 - specificity", ylabel="sensitivity")
        roc_ax.legend(fontsize=8, loc="lower right")
        cal_ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        cal_ax.set(title=f"calibration, {split} (bins with >= 3 nodules)", xlabel="mean malignancy_score",
                   ylabel="fraction rated malignant", xlim=(0, 1), ylim=(0, 1))
        cal_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
