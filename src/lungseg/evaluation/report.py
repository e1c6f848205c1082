"""Write an evaluation's outputs: CSV/JSON tables, agreement plots, sample overlays, HTML report."""
from __future__ import annotations

from pathlib import Path

from .metrics import FLAG_COLUMNS, METRICS
from .tables import write_csv, write_json

FIGURES = (  # file name, function name in plots.py, caption
    ("dice_boxplot.png", "dice_boxplot", "Dice per class (each point is a case)"),
    ("bland_altman_volume.png", "bland_altman_volumes", "Bland-Altman agreement of volumes per class"),
    ("volume_scatter.png", "volume_scatter", "Predicted vs reference volume with Pearson r"),
    ("lung_vs_nodule_dice.png", "lung_vs_nodule_dice", "Lung Dice vs nodule Dice per case"),
)


def write_outputs(out_dir: Path, summary: dict, rows, lesion_rows, meta: dict, images_dir=None,
                  figures: bool = True, html: bool = True, log=None) -> dict[str, Path]:
    """Everything lands in out_dir; returns {name: path} of what was written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"per_case.csv": write_csv(rows, out_dir / "per_case.csv", ("case", "patient", "class", *METRICS,
                                                                          *FLAG_COLUMNS)),
               "per_case.json": write_json(rows, out_dir / "per_case.json")}
    if "nodule" in summary["settings"]["classes"]:
        written["lesions.csv"] = write_csv(lesion_rows, out_dir / "lesions.csv", ("case", "patient", "source", "id"))
    written["summary.csv"] = write_csv(summary["summary"], out_dir / "summary.csv", ("class", "metric"))
    if summary["lesions"]:
        written["lesion_summary.csv"] = write_csv(summary["lesions"], out_dir / "lesion_summary.csv", ("quantity",))
    figs, overlays = [], []
    if figures:
        from . import plots

        for name, fn, caption in FIGURES:
            path = getattr(plots, fn)(rows, out_dir / name)
            if path is not None:
                figs.append((caption, path))
        overlays = write_overlays(out_dir / "overlays", summary, rows, meta, images_dir, log)
    if figures and "robustness" in summary and (out_dir / "robustness.png").exists():
        figs.append(("Dice under intensity shift, scaling and noise of the input", out_dir / "robustness.png"))
    summary["figures"] = [p.name for _, p in figs]
    summary["overlays"] = [f"overlays/{p.name}" for _, _, p in overlays]
    written["summary.json"] = write_json(summary, out_dir / "summary.json")
    if html:
        from .html_report import write_html

        written["report.html"] = write_html(out_dir / "report.html", summary, rows, figs, overlays)
    if log:
        log(f"wrote {', '.join(written)} and {len(figs)} plot(s), {len(overlays)} overlay(s) to {out_dir}")
    return written


def write_overlays(folder: Path, summary: dict, rows, meta: dict, images_dir, log=None):
    """Overlays of the best, median and worst case by mean Dice; [(pick, case, path)]."""
    import numpy as np

    from .cases import case_name, list_cases, read_pair
    from .folders import case_scores, pick_cases
    from .labelmaps import parse_label_map

    settings = summary["settings"]
    ref_map, pred_map = parse_label_map(settings["ref_map"]), parse_label_map(settings["pred_map"])
    images = {}
    if images_dir:
        images = {case_name(p): p for p in list_cases(Path(images_dir), "image").values()}
        if len(images) == 1 and len(meta) == 1:  # one image for one case: pair whatever the names
            images = {next(iter(meta)): next(iter(images.values()))}
    scores = case_scores(rows)
    out = []
    for pick, case in pick_cases(scores):
        m = meta[case]
        pred_img, ref_img = read_pair(case, m["pred"], m["ref"])
        ref = ref_map.apply(ref_img.array, "reference", case)
        pred = pred_map.apply(pred_img.array, "prediction", case) if pred_img is not None else np.zeros_like(ref)
        ct, is_hu = _image_for(case, images, ref.shape, summary)
        from .overlays import overlay_figure

        title = f"{pick} case: {case} (mean Dice {scores[case]:.3f})"
        path = overlay_figure(ref, pred, folder / f"{pick}_{_safe(case)}.png", settings["classes"], ct,
                              m["spacing_zyx"], is_hu, title)
        out.append((pick, case, path))
    return out


def _image_for(case, images, shape, summary):
    path = images.get(case)
    if path is None:
        if images:
            summary["notes"].append(f"no CT image for case '{case}' in the images folder; overlay shows labels only")
        return None, True
    from ..errors import LungsegError
    from ..io import read_ct

    try:
        ct = read_ct(path)
    except LungsegError as e:
        summary["notes"].append(f"cannot show the CT of case '{case}': {e}")
        return None, True
    if ct.shape != tuple(shape):
        summary["notes"].append(f"CT of case '{case}' has shape {ct.shape}, labels {tuple(shape)}; overlay shows "
                                "labels only")
        return None, True
    return ct.array, ct.is_hu


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80]
