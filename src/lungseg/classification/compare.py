"""`lungseg compare` on `task: classification` configs: train (or reuse) each malignancy classifier
on the same labelled nodules and patient split, then one table: parameters, training minutes,
milliseconds per nodule, validation AUC [95% CI], accuracy/sensitivity/specificity at each
model's threshold, and the size-only AUC on the same nodules.

Fairness rule (compare.json "rule"): the data section (sources, split) and seed of the FIRST
config apply to every config (each keeps its batch size); --epochs sets every network's epochs
(default: each config's own, with its early stopping); architecture and optimiser come from each
config. The figures are those each run's train_classifier wrote to <out>/<name>/metrics.json
(validation nodules of the shared split; threshold chosen on them by Youden, so accuracy,
sensitivity and specificity there are optimistic)."""
from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from ..errors import LungsegError

RULE = ("data section (sources, split) and seed of the first config for all (batch size per model); "
        "--epochs for every network, else each config's own (early stopping per config); architecture "
        "and optimiser from each config; figures from each run's metrics.json on the same validation nodules")
TRAIN_RECORD = "compare_train.json"
TIMING_NODULES = 10
METRICS = "metrics.json"


def load_configs(paths, overrides=None) -> list:
    from ..train import load_config

    if not paths:
        raise LungsegError("lungseg compare needs at least one config")
    return [load_config(p, overrides) for p in paths]


def task_of(cfgs, paths) -> str:
    """'classification' or 'segmentation'; a mix is an error (they share no metric)."""
    tasks = {c.task for c in cfgs}
    if len(tasks) == 1:
        return tasks.pop()
    cls = [Path(p).name for p, c in zip(paths, cfgs) if c.task == "classification"]
    seg = [Path(p).name for p, c in zip(paths, cfgs) if c.task != "classification"]
    raise LungsegError(f"compare either classification configs ({', '.join(cls)}) or segmentation configs "
                       f"({', '.join(seg)}), not both in one table")


def prepare_configs(cfgs, epochs: int | None = None) -> list:
    """The fairness rule applied; run names (folders) must be unique."""
    from ..compare import check_runs, with_shared_data

    check_runs(cfgs, epochs)
    first, out = cfgs[0], []
    for cfg in cfgs:
        cfg = with_shared_data(cfg, first)
        if epochs is not None:
            cfg.epochs, cfg.phases = int(epochs), []
        out.append(cfg)
    return out


# ---- training --------------------------------------------------------------------------------
def train_or_reuse(cfg, out: Path, reuse: bool, log) -> dict:
    """Train cfg into out with lungseg.train.train (or reuse out/metrics.json); returns
    {seconds, epochs, reused}: seconds is the whole train_classifier call (data, features, fit)."""
    from ..train import train

    metrics = out / METRICS
    if reuse and metrics.is_file():
        arch = json.loads(metrics.read_text()).get("meta", {}).get("arch")
        if arch != cfg.model.name:
            raise LungsegError(f"--reuse: {metrics} is of classifier '{arch}', this comparison asks for "
                               f"'{cfg.model.name}'; rerun without --reuse or choose another -o folder")
        log(f"{cfg.name}: reusing {metrics}")
        record = json.loads((out / TRAIN_RECORD).read_text()) if (out / TRAIN_RECORD).is_file() else \
            {"seconds": math.nan, "epochs": None}
        return {**record, "reused": True}
    for stale in (METRICS, TRAIN_RECORD, "classifier.pt", "classifier.onnx", "classifier.json"):
        (out / stale).unlink(missing_ok=True)  # a fresh comparison never mixes in an older run
    log(f"{cfg.name}: training {cfg.model.name}" + (f" for up to {cfg.epochs} epoch(s)" if _is_network(cfg.model.name)
                                                    else ""))
    t0 = time.perf_counter()
    result = train(cfg, output_dir=out)
    record = {"seconds": time.perf_counter() - t0, "epochs": len(result.history) or None}
    out.mkdir(parents=True, exist_ok=True)
    (out / TRAIN_RECORD).write_text(json.dumps(record, indent=1))
    return {**record, "reused": False}


def _is_network(arch: str) -> bool:
    from .networks import CLASSIFIERS

    return arch in CLASSIFIERS and CLASSIFIERS[arch].network


def weights_of(run_dir: Path, arch: str) -> Path | None:
    """The classifier file a run wrote (None for size_only, which keeps no model)."""
    if _is_network(arch):
        return run_dir / "classifier.pt"
    if arch == "radiomics":
        return run_dir / "classifier.json"
    return None


def count_parameters(run_dir: Path, arch: str) -> int:
    """Networks: the sum of their tensors' sizes; radiomics: its coefficients (with the intercept);
    size_only: none (its threshold aside, as every model's)."""
    weights = weights_of(run_dir, arch)
    if weights is None:
        return 0
    if weights.suffix == ".json":
        return len(json.loads(weights.read_text())["coef"]) + 1
    from .train import load_classifier_state

    model, _ = load_classifier_state(weights)
    return int(sum(p.numel() for p in model.parameters()))


# ---- timing ----------------------------------------------------------------------------------
def validation_samples(cfg) -> list:
    """The validation nodules of the shared split (every model was scored on the labelled ones;
    the indeterminate ones count in the run's data summary, so they are kept here too)."""
    from .samples import load_samples
    from .train import split_samples

    return split_samples(load_samples(cfg.data.sources), cfg.data.split)["val"]


def time_classifier(run_dir: Path, arch: str, samples, runtime: str = "auto") -> float:
    """Milliseconds per nodule of NoduleClassifier.classify (crop, patch or features, model) on
    up to TIMING_NODULES validation nodules, after one warm-up call; size_only: its one feature,
    the longest axial diameter."""
    samples = samples[:TIMING_NODULES]
    if not samples:
        return math.nan
    weights = weights_of(run_dir, arch)
    if weights is None:
        from .features import diameter_mm

        def run(s):
            return diameter_mm(s.mask, s.spacing_zyx)
    else:
        from ..inference.classify import NoduleClassifier

        classifier = NoduleClassifier(weights, runtime=runtime)

        def run(s):
            return classifier.classify(s.hu, s.spacing_zyx, np.nonzero(s.mask))
    run(samples[0])  # warm-up: compiles the network
    times = []
    for s in samples:
        t0 = time.perf_counter()
        run(s)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


# ---- the comparison ----------------------------------------------------------------------------
def compare_classifiers(config_paths, out_dir="runs/compare", *, epochs: int | None = None, reuse: bool = False,
                        overrides=None, threads: int | None = None, cfgs=None, log=None) -> dict:
    """Train/reuse every classification config, time it, read its metrics; writes compare.csv and
    compare.json into out_dir and returns the compare.json content."""
    log = log or (lambda msg: None)
    out_dir = Path(out_dir)
    cfgs = prepare_configs(cfgs if cfgs is not None else load_configs(config_paths, overrides), epochs)
    from ..threads import torch_threads

    with torch_threads(threads):
        return _compare(config_paths, cfgs, out_dir, epochs, reuse, overrides, log)


def _compare(config_paths, cfgs, out_dir: Path, epochs, reuse: bool, overrides, log) -> dict:
    from ..evaluation.tables import write_csv, write_json

    val_all = validation_samples(cfgs[0])
    val_summary = _summary(val_all)
    val = [s for s in val_all if s.label is not None]
    log(f"validation nodules: {val_summary['nodules']} ({val_summary['malignant']} malignant, "
        f"{val_summary['patients']} patients)")
    models = []
    for path, cfg in zip(config_paths, cfgs):
        run_dir = out_dir / cfg.name
        trained = train_or_reuse(cfg, run_dir, reuse, log)
        metrics = json.loads((run_dir / METRICS).read_text())
        _check_same_nodules(cfg.name, metrics, val_summary)
        arch = cfg.model.name
        log(f"{cfg.name}: timing on {min(len(val), TIMING_NODULES)} validation nodule(s)")
        models.append({"name": cfg.name, "config": str(path), "classifier": arch,
                       "parameters": count_parameters(run_dir, arch), "train_minutes": trained["seconds"] / 60,
                       "epochs": trained.get("epochs"), "best_epoch": metrics.get("meta", {}).get("best_epoch"),
                       "reused": trained["reused"], "ms_per_nodule": time_classifier(run_dir, arch, val),
                       "weights": str(weights_of(run_dir, arch)) if weights_of(run_dir, arch) else None,
                       "validation": metrics["validation"], "data": metrics.get("data")})
    result = {"task": "classification", "rule": RULE,
              "settings": {"configs": [str(p) for p in config_paths], "out_dir": str(out_dir),
                           "epochs": epochs, "overrides": list(overrides or []), "seed": cfgs[0].seed,
                           "timing": f"median over up to {TIMING_NODULES} validation nodules of "
                                     "NoduleClassifier.classify after 1 warm-up, per nodule"},
              "data": {"sources": cfgs[0].data.sources, "validation": val_summary},
              "notes": ["accuracy, sensitivity and specificity are at each model's threshold, chosen on these "
                        "validation nodules (Youden): optimistic; the AUC does not depend on it",
                        "labels: the LIDC readers' suspicion scale, not a diagnosis"]
                       + (["size_only's threshold is a diameter in mm"] if any(m["classifier"] == "size_only"
                                                                              for m in models) else []),
              "table": table_rows(models), "models": models}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(result["table"], out_dir / "compare.csv")
    write_json(result, out_dir / "compare.json")
    return result


def _summary(samples) -> dict:
    """As train_classifier summarises a split (all its nodules and patients, indeterminate ones
    included), plus the labelled nodules the figures are on."""
    from .train import split_summary

    summary = split_summary(samples)
    return {**summary, "nodules": summary["malignant"] + summary["benign"]}


def _check_same_nodules(name: str, metrics: dict, ours: dict) -> None:
    """Every run must have been validated on our nodules (same sources, same split)."""
    theirs = (metrics.get("data") or {}).get("val")
    if theirs is None:
        return
    if any(theirs.get(k) != ours[k] for k in ("malignant", "benign", "indeterminate", "patients")):
        raise LungsegError(f"{name} validated on other nodules than the comparison ({theirs.get('malignant')}+"
                           f"{theirs.get('benign')} vs {ours['malignant']}+{ours['benign']}): the data sources "
                           "or split differ (rerun without --reuse)")


def table_rows(models: list[dict]) -> list[dict]:
    rows = []
    for m in models:
        v = m["validation"]
        auc, size = v.get("auc") or {}, v.get("size_only_auc") or {}
        rows.append({"name": m["name"], "classifier": m["classifier"], "parameters": m["parameters"],
                     "train_minutes": m["train_minutes"], "epochs": m["epochs"], "ms_per_nodule": m["ms_per_nodule"],
                     "auc": auc.get("auc"), "auc_ci_low": auc.get("ci_low"), "auc_ci_high": auc.get("ci_high"),
                     "n_nodules": auc.get("n"), "n_malignant": auc.get("n_malignant"),
                     "n_patients": auc.get("n_patients"), "threshold": v.get("threshold"),
                     "accuracy": v.get("accuracy"), "sensitivity": v.get("sensitivity"),
                     "specificity": v.get("specificity"), "brier": (v.get("calibration") or {}).get("brier"),
                     "size_only_auc": size.get("auc"), "size_only_auc_ci_low": size.get("ci_low"),
                     "size_only_auc_ci_high": size.get("ci_high"), "reused": m["reused"]})
    return rows


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _f(v, digits: int) -> str:
    v = _num(v)
    return "-" if math.isnan(v) else f"{v:.{digits}f}"


def _ci(row, key) -> str:
    mean = _num(row.get(key))
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f} [{_f(row.get(f'{key}_ci_low'), 3)}, {_f(row.get(f'{key}_ci_high'), 3)}]"


def format_table(result: dict) -> str:
    rows = result["table"]
    val = result["data"]["validation"]
    heads = [("name", 22), ("classifier", 15), ("params", 11), ("train min", 9), ("ms/nodule", 9),
             ("val AUC [95% CI]", 22), ("acc", 5), ("sens", 5), ("spec", 5), ("thr", 6), ("size-only AUC [95% CI]", 22)]
    lines = [f"malignancy classifiers on {val['nodules']} validation nodules ({val['malignant']} malignant, "
             f"{val['patients']} patients); AUC 95% CI: patient bootstrap; acc/sens/spec at each model's threshold"]
    lines.append(" ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(heads)))
    for r in rows:
        cells = [r["name"][:22].ljust(22), r["classifier"][:15].ljust(15), f"{r['parameters']:,}".rjust(11),
                 _f(r["train_minutes"], 2).rjust(9), _f(r["ms_per_nodule"], 2).rjust(9), _ci(r, "auc").rjust(22),
                 _f(r["accuracy"], 2).rjust(5), _f(r["sensitivity"], 2).rjust(5), _f(r["specificity"], 2).rjust(5),
                 _f(r["threshold"], 3).rjust(6), _ci(r, "size_only_auc").rjust(22)]
        lines.append(" ".join(cells))
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)
