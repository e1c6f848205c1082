"""`lungseg train` with `task: classification`: a malignancy classifier on labelled nodules.

Split by patient (data.split, as for segmentation); indeterminate nodules are never trained on.
The epoch with the best validation AUC is kept, and its threshold is the one that maximises
sensitivity + specificity on validation (Youden). Writes to the run folder: classifier.pt
(+ .onnx, .json) for a network or classifier.json for the radiomics model, metrics.json and
val_predictions.csv."""
from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np

from ..errors import LungsegError
from .features import nodule_features
from .metrics import at_threshold, bootstrap_auc, calibration, roc_auc, youden_threshold
from .networks import CLASSIFIERS
from .patches import CHANNELS, PATCH, PIXEL_MM, SLICE_MM, nodule_patch
from .samples import load_samples

LABEL_RULE_NOTE = "LIDC readers' suspicion scale, not a diagnosis"


def split_samples(samples, split_cfg) -> dict[str, list]:
    from ..data.splits import kfold_patients, split_patients

    ids = [s.patient_id for s in samples]
    parts = kfold_patients(ids, split_cfg.k_folds, split_cfg.fold, split_cfg.seed, split_cfg.test_fraction) \
        if split_cfg.k_folds and split_cfg.k_folds > 1 else split_patients(ids, tuple(split_cfg.fractions), split_cfg.seed)
    which = {p: name for name, pts in parts.items() for p in pts}
    return {name: [s for s in samples if which[s.patient_id] == name] for name in ("train", "val", "test")}


def split_summary(samples) -> dict:
    """A split's nodules (indeterminate ones included), by label, and its patients."""
    return {"nodules": len(samples), "malignant": sum(s.label == 1 for s in samples),
            "benign": sum(s.label == 0 for s in samples), "indeterminate": sum(s.label is None for s in samples),
            "patients": len({s.patient_id for s in samples})}


def augmented_patch(sample, rng) -> np.ndarray:
    """A nearby centre slice (where the nodule is at least half its largest area), a shift of
    up to 2 pixels, flips and a quarter turn, a small grey-level shift."""
    areas = sample.mask.reshape(sample.mask.shape[0], -1).sum(1)
    centre = int(rng.choice(np.nonzero(areas >= 0.5 * areas.max())[0]))
    x = nodule_patch(sample.hu, sample.mask, sample.spacing_zyx, centre, rng.uniform(-2, 2, 2))
    x = np.rot90(x, int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    x = np.ascontiguousarray(x)
    x[:3] = np.clip(x[:3] + rng.normal(0, 0.02), 0, 1)
    return x


def patient_figures(samples, scores, threshold=None) -> dict:
    """AUC with CI, figures at the threshold (Youden on these samples when none is given),
    calibration, and how the score follows size (the size-only AUC on the same nodules)."""
    from scipy.stats import spearmanr

    lab = [i for i, s in enumerate(samples) if s.label is not None]
    y = np.array([samples[i].label for i in lab], bool)
    s = np.asarray(scores, float)[lab]
    pts = [samples[i].patient_id for i in lab]
    size = np.array([samples[i].meta.get("diameter_mm", math.nan) for i in lab], float)
    t = youden_threshold(y, s) if threshold is None else threshold
    out = {"auc": bootstrap_auc(y, s, pts), **at_threshold(y, s, t), "calibration": calibration(y, s)}
    if np.isfinite(size).all():
        out["size_only_auc"] = bootstrap_auc(y, size, pts)
        out["spearman_score_vs_diameter"] = float(spearmanr(s, size).statistic)
    return out


def _with_features(samples):
    for s in samples:
        if "features" not in s.meta:
            s.meta["features"] = nodule_features(s.hu, s.mask, s.spacing_zyx)
            s.meta["diameter_mm"] = s.meta["features"]["diameter_mm"]
    return samples


def predict_network(model, samples, batch: int = 64) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(samples), batch):
            x = np.stack([nodule_patch(s.hu, s.mask, s.spacing_zyx) for s in samples[i:i + batch]])
            out.append(torch.sigmoid(model(torch.from_numpy(x))).numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros(0)


def fit_network(cfg, train, val, say):
    import torch
    from tqdm import tqdm

    from .networks import build_classifier

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_classifier(cfg.model.name)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    y_val = np.array([s.label for s in val], bool)
    best = {"auc": -1.0, "epoch": 0, "state": None}
    history, bs = [], int(cfg.data.batch_size)
    patience = cfg.early_stopping.patience
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        losses = []
        for i in tqdm(range(0, len(order), bs), desc=f"epoch {epoch}", leave=False, disable=not cfg.progress):
            part = [train[j] for j in order[i:i + bs]]
            if len(part) < 2:
                continue  # batch norm needs two
            x = torch.from_numpy(np.stack([augmented_patch(s, rng) for s in part]))
            y = torch.tensor([[float(s.label)] for s in part])
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        sched.step()
        auc = roc_auc(y_val, predict_network(model, val))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_auc": auc})
        say(f"epoch {epoch}: train loss {np.mean(losses):.4f}  val AUC {auc:.4f}", flush=True)
        if auc > best["auc"]:
            best = {"auc": auc, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif patience and epoch - best["epoch"] >= patience:
            say(f"early stop: no better validation AUC for {patience} epochs")
            break
    model.load_state_dict(best["state"])
    return model, history, best["epoch"]


def train_classifier(cfg, output_dir=None):
    out = Path(output_dir or cfg.output_dir or Path("runs") / cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    say = print if cfg.verbose else (lambda *a, **k: None)
    from ..threads import torch_threads

    with torch_threads(cfg.threads):
        return _train_classifier(cfg, out, say)


def _train_classifier(cfg, out: Path, say):
    from ..train.engine import TrainResult

    name = cfg.model.name
    if name not in CLASSIFIERS:
        raise LungsegError(f"unknown classifier '{name}' (choose from {', '.join(CLASSIFIERS)})")
    parts = split_samples(_with_features(load_samples(cfg.data.sources)), cfg.data.split)
    train = [s for s in parts["train"] if s.label is not None]
    val = [s for s in parts["val"] if s.label is not None]
    summary = {k: split_summary(v) for k, v in parts.items()}
    say(f"data: {json.dumps(summary)}", flush=True)
    if len({s.label for s in train}) < 2 or len({s.label for s in val}) < 2:
        raise LungsegError("classification needs benign and malignant nodules in both the training and validation patients")
    meta = {"kind": "nodule_classifier", "arch": name, "label_rule": _label_rule(), "caveat": LABEL_RULE_NOTE,
            "patch": PATCH, "pixel_mm": PIXEL_MM, "slice_mm": SLICE_MM, "channels": CHANNELS, "config": cfg.name}
    history, best_epoch = [], 0
    if name == "size_only":
        val_scores = np.array([s.meta["diameter_mm"] for s in val])
        path = None
    elif name == "radiomics":
        from .radiomics import RadiomicsModel

        model = RadiomicsModel.fit([s.meta["features"] for s in train], [s.label for s in train])
        val_scores = model.predict([s.meta["features"] for s in val])
        path = out / "classifier.json"
    else:
        model, history, best_epoch = fit_network(cfg, train, val, say)
        val_scores = predict_network(model, val)
        path = out / "classifier.pt"
    figures = patient_figures(val, val_scores)
    meta.update(threshold=figures["threshold"], validation=_brief(figures), best_epoch=best_epoch)
    if path is not None:
        _save(model, path, meta)
    from ..io import atomic_path

    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps({"data": summary, "validation": figures, "history": history, "meta": meta}, indent=2))
    _write_predictions(out / "val_predictions.csv", val, val_scores)
    say(f"validation AUC {figures['auc']['auc']:.3f} [{figures['auc']['ci_low']:.3f}, {figures['auc']['ci_high']:.3f}]"
        f" ({figures['auc']['n']} nodules, {figures['auc']['n_patients']} patients)")
    return TrainResult(out, path, path, history, figures["auc"]["auc"], best_epoch, data=summary)


def _label_rule() -> str:
    from ..data.malignancy import LABEL_RULE

    return LABEL_RULE


def _brief(fig: dict) -> dict:
    return {"auc": fig["auc"], **{k: fig[k] for k in ("accuracy", "sensitivity", "specificity")}}


def _save(model, path: Path, meta: dict) -> None:
    from ..io import atomic_path

    if path.suffix == ".json":
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({**meta, **model.to_dict()}, indent=2))  # kind: radiomics
        return
    from ..models.exported import save_exported

    save_exported(model, path, meta, (CHANNELS, PATCH, PATCH))


def _write_predictions(path: Path, samples, scores) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "patient_id", "label", "score", "diameter_mm"])
        for s, v in zip(samples, scores):
            w.writerow([s.case_id, s.patient_id, s.label, f"{v:.5f}", f"{s.meta.get('diameter_mm', math.nan):.2f}"])


def load_classifier_state(path):
    """(torch model, meta) from a classifier.pt, for the torch fallback of inference."""
    from ..models.exported import load_state
    from .networks import build_classifier

    return load_state(path, lambda meta: build_classifier(meta["arch"]))
