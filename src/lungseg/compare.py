"""`lungseg compare`: train (or reuse) several configs on one data set, split and budget, score
them all on the same cases, time them on the same slices, and write one table.

Fairness rule (documented in compare.json as "rule"):
- the data section of the FIRST config is applied to every config (sources, split, slices per
  epoch, validation subset), except the keys that say how a model sees the data
  (PER_MODEL_DATA_KEYS: its classes, 2D/3D, input/patch size, intensity, resizing, batch sizes);
- the training seed and the number of epochs (--epochs, else the first config's) are shared;
  with --budget-minutes every model also gets the same wall-clock budget;
- architecture, loss, optimiser, scheduler, augmentation, EMA, early stopping and amp come from
  each config (early stopping can only shorten a run).

Label mapping: predictions and references become the evaluation codes (lungseg.evaluation.classes)
and each case is scored on the classes both sides provide: a [background, lung] model is scored
on both_lungs only (its geometric left/right split is not credited to it), a right/left model
also on right_lung and left_lung, a nodule model also on nodule (with lesion recall).
"""
from __future__ import annotations

import copy
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LungsegError

PER_MODEL_DATA_KEYS = ("classes", "dims", "input_size", "patch_size", "intensity", "resize_method",
                       "batch_size", "val_batch_size")
RULE = ("data section of the first config for all (except its per-model keys: "
        f"{', '.join(PER_MODEL_DATA_KEYS)}); seed and epochs shared; architecture, loss, optimiser, "
        "augmentation and early stopping from each config")
REF_CODES = {"right_lung": 1, "left_lung": 2, "nodule": 3, "lung": 4}  # canonical name -> evaluation code
HEADLINE_CLASS = "both_lungs"
TABLE_METRICS = (("dice", "Dice", 3), ("iou", "IoU", 3), ("hd95_mm", "HD95 mm", 1))
TRAIN_RECORD = "compare_train.json"


@dataclass
class EvalCase:
    name: str  # unique within the comparison
    patient: str
    case: object  # lungseg.data.Case
    lut: np.ndarray  # source label value -> evaluation code
    provides: tuple  # evaluation classes this reference can score


# ---- configs ---------------------------------------------------------------------------------
def prepare_configs(paths, overrides=None, epochs: int | None = None) -> list:
    """Load the configs and apply the fairness rule; names (run folders) must be unique."""
    from .train import load_config

    if not paths:
        raise LungsegError("lungseg compare needs at least one config")
    cfgs = [load_config(p, overrides) for p in paths]
    check_runs(cfgs, epochs)
    first = cfgs[0]
    n_epochs = epochs or first.total_epochs()
    out = []
    for cfg in cfgs:
        out.append(with_epochs(with_shared_data(cfg, first), n_epochs))
    return out


def with_shared_data(cfg, first):
    """A copy of cfg with the first config's data section (but its own batch sizes) and seed."""
    cfg = copy.deepcopy(cfg)
    shared = copy.deepcopy(first.data)
    for key in PER_MODEL_DATA_KEYS:
        setattr(shared, key, copy.deepcopy(getattr(cfg.data, key)))
    cfg.data, cfg.seed = shared, first.seed
    return cfg


def check_runs(cfgs, epochs: int | None) -> None:
    """Run names are folders, so they must be unique; --epochs must be positive."""
    names = [c.name for c in cfgs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LungsegError(f"configs share the run name {', '.join(dupes)}: give each a distinct 'name:' "
                           "(the name is the run folder)")
    if epochs is not None and epochs < 1:
        raise LungsegError("--epochs must be >= 1")


def with_epochs(cfg, n: int):
    """A copy of cfg training n epochs in all; phases are cut (or the last one lengthened) to fit."""
    cfg = copy.deepcopy(cfg)
    if not cfg.phases:
        cfg.epochs = int(n)
        return cfg
    kept, left = [], int(n)
    for phase in cfg.phases:
        if left <= 0:
            break
        phase.epochs = min(phase.epochs, left)
        left -= phase.epochs
        kept.append(phase)
    kept[-1].epochs += left
    cfg.phases = kept
    return cfg


def budget_epochs(total: int, first_epoch_s: float, budget_s: float) -> int:
    """Epochs that fit a wall-clock budget, projected from the first epoch (which always runs)."""
    if first_epoch_s <= 0:
        return total
    return max(1, min(total, int(budget_s // first_epoch_s)))


# ---- evaluation cases ------------------------------------------------------------------------
def reference_lut(label_names: dict, label_map: dict | None = None) -> np.ndarray:
    """Source label value -> evaluation code (names through the source's label_map, like training)."""
    from .data.cases import canonical_name

    overrides = {canonical_name(k): canonical_name(v) for k, v in (label_map or {}).items()}
    lut = np.zeros(256, dtype=np.uint8)
    for value, name in label_names.items():
        name = overrides.get(canonical_name(name), canonical_name(name))
        lut[int(value)] = REF_CODES.get(name, 0)
    return lut


def provided_classes(codes) -> tuple[str, ...]:
    """Evaluation classes a label map with these codes can score (right/left need both sides)."""
    codes = set(int(c) for c in codes)
    out = []
    if {1, 2} <= codes:
        out += ["right_lung", "left_lung"]
    if codes & {1, 2, 4}:
        out.append("both_lungs")
    if 3 in codes:
        out.append("nodule")
    return tuple(out)


def model_classes(classes) -> tuple[str, ...]:
    """Evaluation classes a model with these output classes predicts natively."""
    from .data.cases import canonical_name

    names = {canonical_name(c) for c in classes}
    codes = {REF_CODES[n] for n in names if n in REF_CODES}
    if not {1, 2} <= codes:
        codes -= {1, 2}  # one side only is not a left/right model
        if names & {"right_lung", "left_lung", "lung"}:
            codes.add(4)
    return provided_classes(codes)


def prediction_codes(labels: np.ndarray, classes) -> np.ndarray:
    """Segmenter labels (0/1/2/3) -> evaluation codes: a model without right AND left lung outputs
    side-unknown lung (4), since ModelSegmenter's left/right split is geometry, not the model."""
    if "right_lung" in model_classes(classes):
        return labels
    out = labels.copy()
    out[(labels == 1) | (labels == 2)] = 4
    return out


def evaluation_cases(data_cfg) -> dict[str, list[EvalCase]]:
    """The validation and test cases of the shared data section (same patient split as training)."""
    from .data.datasets import assign_splits
    from .data.sources import load_source

    loaded, label_maps = [], {}
    for entry in data_cfg.sources:
        cases = load_source(entry)
        for c in cases:
            label_maps[id(c)] = entry.get("label_map")
        loaded.append((entry, cases))
    parts = assign_splits(loaded, data_cfg)
    out, seen = {}, {}
    for split in ("val", "test"):
        items = []
        for c in parts[split]:
            name = c.case_id if c.case_id not in seen else f"{c.case_id}#{seen[c.case_id]}"
            seen[c.case_id] = seen.get(c.case_id, 0) + 1
            lut = reference_lut(c.label_names, label_maps[id(c)])
            items.append(EvalCase(name, str(c.patient_id), c, lut, provided_classes(lut[list(c.label_names)])))
        if items:
            out[split] = items
    if "val" not in out:
        raise LungsegError("the shared data section gives no validation case to compare on")
    return out


# ---- training --------------------------------------------------------------------------------
def train_or_reuse(cfg, out: Path, budget_s: float | None, reuse: bool, log) -> dict:
    """Train cfg into out (or reuse out/best.pt); returns {seconds, wall_seconds, epochs, reused,
    checkpoint}. seconds: the epochs' training + validation time (what the table shows);
    wall_seconds adds building the data (identical work for every model, so left out of the table)."""
    from .train import train

    best = out / "best.pt"
    if reuse and best.is_file():
        _check_reusable(cfg, best)
        log(f"{cfg.name}: reusing {best}")
        return {**_train_record(out), "reused": True, "checkpoint": str(best)}
    for stale in ("best.pt", "last.pt"):  # a fresh comparison never mixes in an older run's weights
        (out / stale).unlink(missing_ok=True)
    log(f"{cfg.name}: training {cfg.model.name} for up to {cfg.total_epochs()} epoch(s)"
        + (f" within {budget_s / 60:.1f} min" if budget_s else ""))
    t0 = time.perf_counter()
    if budget_s is None or cfg.total_epochs() == 1:
        result = train(cfg, output_dir=out)
    else:  # one epoch, then resume (exactly as an uninterrupted run) for what the budget allows
        result = train(with_epochs(cfg, 1), output_dir=out)
        n = budget_epochs(cfg.total_epochs(), time.perf_counter() - t0, budget_s)
        if n > 1 and not result.stopped_early:
            result = train(with_epochs(cfg, n), resume=True, output_dir=out)
    record = {"seconds": _epoch_seconds(result.history), "wall_seconds": time.perf_counter() - t0,
              "epochs": len(result.history),
              "stopped_early": bool(result.stopped_early), "budget_s": budget_s}
    (out / TRAIN_RECORD).write_text(json.dumps(record, indent=1))
    if result.best_checkpoint is None:
        raise LungsegError(f"{cfg.name}: training wrote no best checkpoint (monitored metric never finite)")
    return {**record, "reused": False, "checkpoint": str(result.best_checkpoint)}


def _check_reusable(cfg, best: Path) -> None:
    from .models.checkpoint import read_checkpoint
    from .train.config import config_to_dict

    stored = read_checkpoint(best).get("config", {})
    wanted = config_to_dict(cfg)
    differ = [k for k in ("data", "model") if stored.get(k) != wanted.get(k)]
    if differ:
        raise LungsegError(f"--reuse: {best} was trained with another {' and '.join(differ)} section than this "
                           "comparison asks for; rerun without --reuse or choose another -o folder")


def _train_record(out: Path) -> dict:
    """Training time and epochs of an earlier run (our record, else the engine's summary.json)."""
    if (out / TRAIN_RECORD).is_file():
        return json.loads((out / TRAIN_RECORD).read_text())
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    hist = summary.get("history", [])
    return {"seconds": _epoch_seconds(hist) if hist else math.nan, "wall_seconds": None,
            "epochs": len(hist) or None, "stopped_early": summary.get("stopped_early")}


def _epoch_seconds(history) -> float:
    return float(sum(h.get("seconds_train", 0) + h.get("seconds_val", 0) for h in history))


# ---- scoring and timing ------------------------------------------------------------------------
def _ct(case, z: slice | None = None):
    from .io import CTImage

    image, _ = case.load()
    return CTImage.from_array(image if z is None else image[z], spacing=case.spacing or (1.0, 1.0, 1.0),
                              is_hu=case.is_hu)


def timing_ct(cases: list[EvalCase], n_slices: int):
    """The central n_slices slices of the first validation case: every model is timed on these."""
    first = cases[0].case
    depth = first.load()[0].shape[0]
    n = max(1, min(int(n_slices), depth))
    start = (depth - n) // 2
    return _ct(first, slice(start, start + n)), f"{cases[0].name}[{start}:{start + n}]"


def time_segmenter(segmenter, ct, repeats: int = 3) -> float:
    """Median milliseconds per slice of predict_probabilities, after one warm-up call."""
    segmenter.predict_probabilities(ct)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        segmenter.predict_probabilities(ct)  # returns numpy: GPU work is finished when it returns
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / ct.shape[0]


def score_model(segmenter, cases: list[EvalCase], tolerance_mm: float, min_iou: float, log=None):
    """Per-case rows and lesion rows of one model on one case list."""
    from .evaluation import evaluate_arrays

    have = model_classes(segmenter.classes)
    rows, lesion_rows = [], []
    for ec in cases:
        classes = [c for c in have if c in ec.provides]
        if not classes:
            continue
        _, label = ec.case.load()
        ct = _ct(ec.case)
        pred = prediction_codes(segmenter(ct).labels, segmenter.classes)
        r, lr = evaluate_arrays([{"case": ec.name, "patient": ec.patient, "pred": pred, "ref": ec.lut[label],
                                  "spacing_zyx": ct.spacing_zyx}], classes, tolerance_mm, min_iou, log=log)
        rows += r
        lesion_rows += lr
    return rows, lesion_rows


def resolve_device(device: str) -> tuple[str, str]:
    """(device, precision) for inference: bf16 wherever the hardware has it."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LungsegError("--device cuda: no CUDA GPU is available")
    if device == "cuda":
        return device, "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return device, "auto"


# ---- the comparison ------------------------------------------------------------------------------
def compare(config_paths, out_dir="runs/compare", **options) -> dict:
    """Train/reuse, evaluate and time every config; writes compare.csv/json, per_case.csv and
    compare.png into out_dir; returns the compare.json content. threads: CPU inference threads
    (default: ModelSegmenter's, all cores; fewer gives steadier timings on a busy machine); the
    count is restored afterwards."""
    from .threads import torch_threads

    with torch_threads():
        return _compare(config_paths, out_dir, **options)


def _compare(config_paths, out_dir="runs/compare", *, epochs: int | None = None, budget_minutes: float | None = None,
             reuse: bool = False, overrides=None, device: str = "auto", n_boot: int = 1000, seed: int = 0,
             timing_slices: int = 16, threads: int | None = None, tolerance_mm: float = 2.0, min_iou: float = 0.1,
             plot: bool = True, log=None) -> dict:
    import torch

    from .evaluation import summarise_all
    from .inference.network import ModelSegmenter
    from .models import count_parameters, load_checkpoint

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if budget_minutes is not None and budget_minutes <= 0:
        raise LungsegError("--budget-minutes must be > 0")
    out_dir = Path(out_dir)
    cfgs = prepare_configs(config_paths, overrides, epochs)
    cases = evaluation_cases(cfgs[0].data)
    log("evaluation cases: " + "; ".join(f"{s} {len(v)}" for s, v in cases.items()))
    ct_time, timing_desc = timing_ct(cases["val"], timing_slices)
    dev, precision = resolve_device(device)
    models, per_case = [], []
    for path, cfg in zip(config_paths, cfgs):
        run_dir = out_dir / cfg.name
        trained = train_or_reuse(cfg, run_dir, budget_minutes * 60 if budget_minutes else None, reuse, log)
        _check_same_split(run_dir, cases)
        model, meta = load_checkpoint(trained["checkpoint"], map_location=dev)
        segmenter = ModelSegmenter(model, meta, device=dev, precision=precision)
        if threads:
            torch.set_num_threads(int(threads))
        entry = {"name": cfg.name, "config": str(path), "architecture": meta["model_name"],
                 "classes": list(meta["classes"]), "scored_classes": list(model_classes(meta["classes"])),
                 "parameters": count_parameters(model), "train_minutes": trained["seconds"] / 60,
                 "wall_minutes": (trained.get("wall_seconds") or math.nan) / 60,
                 "epochs": trained["epochs"], "reused": trained["reused"], "checkpoint": trained["checkpoint"],
                 "precision": segmenter.runtime.precision, "device": dev,
                 "threads": torch.get_num_threads() if dev == "cpu" else None,
                 "ms_per_slice": time_segmenter(segmenter, ct_time), "results": {}}
        for split, items in cases.items():
            log(f"{cfg.name}: scoring {len(items)} {split} case(s)")
            rows, _ = score_model(segmenter, items, tolerance_mm, min_iou)
            per_case += [{"model": cfg.name, "split": split, **r} for r in rows]
            entry["results"][split] = {"cases": sorted({r["case"] for r in rows}),
                                       "n_patients": len({r["patient"] for r in rows}),
                                       **summarise_all(rows, n_boot, seed)}
        models.append(entry)
    table = table_rows(models)
    result = {"rule": RULE, "settings": {
        "configs": [str(p) for p in config_paths], "out_dir": str(out_dir), "epochs": cfgs[0].total_epochs(),
        "budget_minutes": budget_minutes, "overrides": list(overrides or []), "seed": cfgs[0].seed,
        "n_boot": n_boot, "bootstrap_seed": seed, "tolerance_mm": tolerance_mm, "min_iou": min_iou,
        "timing": f"{timing_desc}: median of 3 predict_probabilities calls after 1 warm-up, per slice",
        "postprocess": True}, "data": _data_summary(cfgs[0].data, cases), "notes": _notes(cases),
        "table": table, "models": models}
    write_outputs(out_dir, result, per_case, plot)
    return result


def _check_same_split(run_dir: Path, cases) -> None:
    """The engine's recorded validation patients must be ours (same sources, same split rule)."""
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return
    val = json.loads(summary.read_text()).get("splits", {}).get("val")
    ours = sorted({ec.patient for ec in cases["val"]})
    if val is not None and sorted(map(str, val)) != ours:
        raise LungsegError(f"{run_dir.name} validated on other patients than the comparison "
                           f"({len(val)} vs {len(ours)}): the data sources gave different cases")


def _data_summary(data_cfg, cases) -> dict:
    import dataclasses

    shared = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(data_cfg), default=str)).items()
              if k not in PER_MODEL_DATA_KEYS}
    return {"shared": shared, "cases": {s: [ec.name for ec in v] for s, v in cases.items()},
            "patients": {s: len({ec.patient for ec in v}) for s, v in cases.items()}}


def _notes(cases) -> list[str]:
    no_spacing = sorted({ec.name for v in cases.values() for ec in v if not ec.case.spacing})
    notes = []
    if no_spacing:
        notes.append(f"{len(no_spacing)} case(s) carry no voxel spacing (e.g. synthetic sources): their HD95 "
                     "and volumes assume 1 mm voxels")
    return notes


# ---- table and outputs -----------------------------------------------------------------------------
def _cell(result: dict, cls: str, metric: str) -> tuple[float, float, float]:
    for r in result.get("summary", []):
        if r["class"] == cls and r["metric"] == metric:
            return r.get("mean", math.nan), r.get("ci_low", math.nan), r.get("ci_high", math.nan)
    return math.nan, math.nan, math.nan


def table_rows(models: list[dict]) -> list[dict]:
    """One flat row per model and evaluation split (the CSV; the printed table shows a subset)."""
    rows = []
    for m in models:
        for split, res in m["results"].items():
            row = {k: m[k] for k in ("name", "architecture", "parameters", "train_minutes", "epochs",
                                     "ms_per_slice", "precision")}
            row.update(split=split, n_cases=len(res["cases"]), n_patients=res["n_patients"])
            for cls in ("both_lungs", "right_lung", "left_lung", "nodule"):
                for metric in ("dice", "iou", "hd95_mm", "surface_dice"):
                    mean, lo, hi = _cell(res, cls, metric)
                    if not math.isnan(mean):
                        row.update({f"{cls}_{metric}": mean, f"{cls}_{metric}_ci_low": lo,
                                    f"{cls}_{metric}_ci_high": hi})
            recall = next((r for r in res.get("lesions", []) if r["quantity"] == "lesion_recall"), None)
            if recall is not None:
                row.update(nodule_recall=recall["value"], nodule_recall_ci_low=recall["ci_low"],
                           nodule_recall_ci_high=recall["ci_high"], nodules=recall["denominator"])
            rows.append(row)
    return rows


def _ci(row, key, digits) -> str:
    mean = row.get(key, math.nan)
    if mean is None or math.isnan(mean):
        return "-"
    lo, hi = row.get(f"{key}_ci_low", math.nan), row.get(f"{key}_ci_high", math.nan)
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_table(result: dict) -> str:
    """The comparison as plain text: one line per model (and split), mean [95% CI]."""
    rows = result["table"]
    heads = [("model", 16), ("architecture", 15), ("split", 5), ("params", 10), ("train min", 9),
             ("ep", 3), ("ms/slice", 9)] + [(f"{t}", 22) for _, t, _ in TABLE_METRICS] + [("nodule recall", 22)]
    lines = [f"{HEADLINE_CLASS.replace('_', ' ')}: mean [95% CI] over "
             + ", ".join(f"{len(v)} {s} case(s)" for s, v in result["data"]["cases"].items())
             + f"; {result['settings']['n_boot']} patient-bootstrap resamples"]
    lines.append(" ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(heads)))
    for r in rows:
        cells = [r["name"][:16].ljust(16), r["architecture"][:15].ljust(15), r["split"].ljust(5),
                 f"{r['parameters']:,}".rjust(10), f"{r['train_minutes']:.2f}".rjust(9),
                 str(r["epochs"] or "-").rjust(3), f"{r['ms_per_slice']:.2f}".rjust(9)]
        cells += [_ci(r, f"{HEADLINE_CLASS}_{m}", d).rjust(22) for m, _, d in TABLE_METRICS]
        cells.append(_ci(r, "nodule_recall", 3).rjust(22))
        lines.append(" ".join(cells))
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def write_outputs(out_dir: Path, result: dict, per_case: list[dict], plot: bool = True) -> None:
    from .evaluation.tables import write_csv, write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(result["table"], out_dir / "compare.csv")
    write_csv(per_case, out_dir / "per_case.csv", first=("model", "split", "case", "patient", "class"))
    if plot:
        result["figure"] = str(bar_chart(result["table"], out_dir / "compare.png"))
    write_json(result, out_dir / "compare.json")


def bar_chart(rows: list[dict], path) -> Path:
    """Bars of the headline metrics per model with 95% CI error bars (one colour per split)."""
    from .evaluation.plots import _plt, _save

    plt = _plt()
    panels = [(f"{HEADLINE_CLASS}_{m}", f"{t} ({HEADLINE_CLASS.replace('_', ' ')})") for m, t, _ in TABLE_METRICS]
    if any(math.isfinite(_num(r.get("nodule_recall"))) for r in rows):
        panels.append(("nodule_recall", "nodule recall"))
    names = list(dict.fromkeys(r["name"] for r in rows))
    splits = list(dict.fromkeys(r["split"] for r in rows))
    width = 0.8 / len(splits)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 + 1.1 * len(names) * len(panels), 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for si, split in enumerate(splits):
            by = {r["name"]: r for r in rows if r["split"] == split}
            mean = np.array([_num(by.get(n, {}).get(key)) for n in names])
            lo = np.array([_num(by.get(n, {}).get(f"{key}_ci_low")) for n in names])
            hi = np.array([_num(by.get(n, {}).get(f"{key}_ci_high")) for n in names])
            err = np.nan_to_num(np.vstack([mean - lo, hi - mean]).clip(min=0))
            x = np.arange(len(names)) + (si - (len(splits) - 1) / 2) * width
            ax.bar(x, np.nan_to_num(mean), width, yerr=err, capsize=3, label=split, alpha=0.85)
            for xi in x[np.isnan(mean)]:  # undefined (e.g. HD95 of an empty prediction) is not a zero
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=8, color="grey")
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        if not key.startswith(f"{HEADLINE_CLASS}_hd95"):
            ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    if len(splits) > 1:
        axes[0][0].legend(fontsize=8)
    fig.suptitle("model comparison: mean and 95% CI (patient bootstrap)", fontsize=11)
    return _save(fig, path, rect=(0, 0, 1, 0.95))


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


__all__ = ["PER_MODEL_DATA_KEYS", "RULE", "bar_chart", "budget_epochs", "compare", "evaluation_cases",
           "format_table", "model_classes", "prediction_codes", "prepare_configs", "provided_classes",
           "reference_lut", "table_rows", "train_or_reuse", "with_epochs"]
