"""A self-contained HTML report (PNGs embedded as base64) of one evaluation."""
from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from .classes import CLASS_TITLES

HEADLINE = (  # metric, column title, digits
    ("dice", "Dice", 3), ("iou", "IoU", 3), ("precision", "precision", 3), ("recall", "recall (sens.)", 3),
    ("specificity", "specificity", 4), ("accuracy", "accuracy", 4), ("hd95_mm", "HD95 mm", 2),
    ("assd_mm", "ASSD mm", 2), ("surface_dice", "surface Dice", 3), ("vol_diff_ml", "vol. diff mL", 1),
    ("vol_diff_pct", "vol. diff %", 1),
)
PER_CASE = ("dice", "iou", "hd95_mm", "assd_mm", "surface_dice", "vol_ref_ml", "vol_pred_ml", "vol_diff_ml")
LESION_TITLES = {"lesion_recall": "lesion recall (all sizes)", "fp_per_case": "false positives per case",
                 "lesion_precision": "lesion precision"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;
color:#222;line-height:1.4;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f5f7}td{white-space:nowrap}.wide{overflow-x:auto}td.l,th.l{text-align:left}
tr:nth-child(even) td{background:#fafafa}
.ci{color:#777;font-size:11px}.muted{color:#666;font-size:13px}.note{background:#fff6d6;border:1px solid #eed27a;
padding:6px 10px;margin:6px 0;font-size:13px}figure{margin:10px 0 18px}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#555}dl{font-size:13px}dt{font-weight:600;margin-top:4px}dd{margin-left:16px}
"""


def write_html(path, summary: dict, rows, figures, overlays) -> Path:
    """figures: [(caption, png path)]; overlays: [(pick, case, png path)]."""
    from ..io import atomic_path

    s = summary["settings"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lungseg evaluation</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>lungseg evaluation</h1>",
             f"<p class='muted'>{summary['n_cases']} case(s), {summary['n_patients']} patient(s); classes: "
             f"{', '.join(CLASS_TITLES.get(c, c) for c in s['classes'])}; surface Dice tolerance "
             f"{_e(s['tolerance_mm'])} mm; 95% CIs from {s['n_boot']} bootstrap resamples of patients "
             f"(seed {s['seed']}).<br>predictions: <code>{_e(s['predictions'])}</code> (map "
             f"<code>{_e(s['pred_map'])}</code>) &middot; references: <code>{_e(s['references'])}</code> (map "
             f"<code>{_e(s['ref_map'])}</code>)</p>"]
    parts += [f"<div class='note'>{_e(n)}</div>" for n in summary.get("notes", [])]
    parts += ["<h2>Summary: mean [95% CI]</h2>",
              f"<div class='wide'>{_summary_table(summary['summary'], s['classes'])}</div>",
              _nonempty_note(summary["summary"], s["classes"])]
    if summary.get("lesions"):
        parts += ["<h2>Nodule detection</h2>", _lesion_table(summary["lesions"], s["min_iou"])]
    if summary.get("volume_agreement"):
        parts += ["<h2>Volume agreement</h2>", _volume_table(summary["volume_agreement"])]
    if summary.get("robustness"):
        parts += ["<h2>Robustness to intensity changes</h2>", _robustness_table(summary["robustness"])]
    if figures:
        parts.append("<h2>Plots</h2>")
        parts += [_figure(p, cap) for cap, p in figures]
    if overlays:
        parts += ["<h2>Sample overlays: best, median and worst case</h2>",
                  "<p class='muted'>Yellow: in the reference only (missed); magenta: in the prediction only "
                  "(extra); orange: labelled as the wrong class. Axial slices in radiological view (patient's "
                  "right on the image left).</p>"]
        parts += [_figure(p, f"{pick}: {case}") for pick, case, p in overlays]
    parts += ["<h2>Per case</h2>", _per_case_table(rows)]
    parts += ["<h2>Conventions</h2><dl>"] + [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>"
                                             for k, v in summary["conventions"].items()] + ["</dl>"]
    parts.append("<p class='muted'>Files beside this report: per_case.csv/json, summary.csv/json, "
                 "lesions.csv, PNG plots and overlays/.</p></body></html>")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path


def _summary_table(summary, classes) -> str:
    cell = {(r["class"], r["metric"]): r for r in summary}
    metrics = [m for m in HEADLINE if any((c, m[0]) in cell for c in classes)]
    head = "<tr><th class='l'>class</th><th>n</th>" + "".join(f"<th>{t}</th>" for _, t, _ in metrics) + "</tr>"
    body = []
    for c in classes:
        n = cell.get((c, "dice"), {}).get("n", "")
        tds = []
        for m, _, digits in metrics:
            r = cell.get((c, m))
            if r is None or not _finite(r.get("mean")):
                tds.append("<td>–</td>")
                continue
            undefined = f"<br><span class='ci'>{r['n_undefined']} undefined</span>" if r.get("n_undefined") else ""
            tds.append(f"<td>{_num(r['mean'], digits)}<br><span class='ci'>[{_num(r['ci_low'], digits)}, "
                       f"{_num(r['ci_high'], digits)}]</span>{undefined}</td>")
        body.append(f"<tr><td class='l'>{CLASS_TITLES.get(c, c)}</td><td>{n}</td>{''.join(tds)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _nonempty_note(summary, classes) -> str:
    """Dice over cases whose reference is not empty, where empty references exist (they score 1 or 0)."""
    cell = {(r["class"], r["metric"]): r for r in summary}
    parts = []
    for c in classes:
        r, empty = cell.get((c, "dice_ref_nonempty")), cell.get((c, "n_empty_ref"), {}).get("mean", 0)
        if r and empty:
            parts.append(f"{CLASS_TITLES.get(c, c)}: {int(empty)} case(s) with an empty reference; Dice over the "
                         f"other {r['n']} is {_num(r['mean'], 3)} [{_num(r['ci_low'], 3)}, {_num(r['ci_high'], 3)}]")
    return f"<p class='muted'>{'<br>'.join(parts)}</p>" if parts else ""


def _lesion_table(lesions, min_iou) -> str:
    rows = []
    for r in lesions:
        rows.append(f"<tr><td class='l'>{_e(_lesion_title(r['quantity']))}</td><td>{_num(r['value'], 3)}</td>"
                    f"<td>[{_num(r['ci_low'], 3)}, {_num(r['ci_high'], 3)}]</td>"
                    f"<td>{r['numerator']} / {r['denominator']}</td></tr>")
    return (f"<p class='muted'>A reference lesion is hit when a predicted component overlaps it with IoU &ge; "
            f"{_e(min_iou)}; size bins by equivalent diameter.</p><table><tr><th class='l'>quantity</th>"
            f"<th>value</th><th>95% CI</th><th>count</th></tr>{''.join(rows)}</table>")


def _lesion_title(q: str) -> str:
    if q in LESION_TITLES:
        return LESION_TITLES[q]
    if q.startswith("lesion_recall_"):
        return f"lesion recall, {q.removeprefix('lesion_recall_')} mm"
    return q


def _robustness_table(rob) -> str:
    classes = list(rob["baseline"])
    head = "<tr><th class='l'>perturbation</th>" + "".join(
        f"<th>{CLASS_TITLES.get(c, c)}<br>Dice mean ± std (drop)</th>" for c in classes) + "</tr>"
    rows = ["<tr><td class='l'>none</td>" + "".join(f"<td>{_num(rob['baseline'][c], 3)}</td>" for c in classes)
            + "</tr>"]
    for kind, stats in [*rob["summary"].items(), ("all", rob["overall"])]:
        mags = ", ".join(f"{m:g}" for m in rob["perturbations"].get(kind, []))
        label = f"{kind} ({mags} {rob['units'].get(kind, '')})" if kind != "all" else "all perturbations"
        rows.append(f"<tr><td class='l'>{_e(label)}</td>" + "".join(
            f"<td>{_num(stats[c]['mean'], 3)} ± {_num(stats[c]['std'], 3)} ({_num(stats[c]['drop'], 3)})</td>"
            for c in classes) + "</tr>")
    return (f"<p class='muted'>Cases: {_e(', '.join(rob.get('cases', [])))}. Shift adds HU, scale multiplies about "
            "0 HU, noise is Gaussian; drop = unperturbed Dice − mean perturbed Dice.</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _volume_table(agreement) -> str:
    rows = "".join(
        f"<tr><td class='l'>{CLASS_TITLES.get(a['class'], a['class'])}</td><td>{a['n']}</td>"
        f"<td>{_num(a['bias_ml'], 2)}</td><td>{_num(a['sd_ml'], 2)}</td>"
        f"<td>[{_num(a['loa_low_ml'], 2)}, {_num(a['loa_high_ml'], 2)}]</td><td>{_num(a['pearson_r'], 4)}</td></tr>"
        for a in agreement)
    return ("<table><tr><th class='l'>class</th><th>n</th><th>bias mL</th><th>SD mL</th>"
            f"<th>95% limits of agreement mL</th><th>Pearson r</th></tr>{rows}</table>")


def _per_case_table(rows) -> str:
    head = ("<tr><th class='l'>case</th><th class='l'>class</th>" + "".join(f"<th>{m}</th>" for m in PER_CASE)
            + "<th>flags</th></tr>")
    body = []
    for r in rows:
        flags = " ".join(f for f in ("empty_ref", "empty_pred") if r.get(f) == 1.0)
        if "lesions_ref" in r:
            flags += f" lesions hit {int(r['lesions_hit'])}/{int(r['lesions_ref'])}, FP {int(r['lesions_fp'])}"
        body.append(f"<tr><td class='l'>{_e(r['case'])}</td><td class='l'>{CLASS_TITLES.get(r['class'], r['class'])}"
                    "</td>" + "".join(f"<td>{_num(r.get(m), 3)}</td>" for m in PER_CASE)
                    + f"<td class='l'>{_e(flags.strip())}</td></tr>")
    table = f"<table>{head}{''.join(body)}</table>"
    if len(rows) > 40:
        return f"<details><summary>{len(rows)} rows (click to show)</summary>{table}</details>"
    return table


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _num(v, digits: int) -> str:
    if not _finite(v):
        return "–"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def _e(v) -> str:
    return html.escape(str(v))
