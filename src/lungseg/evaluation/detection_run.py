"""`lungseg evaluate --detection`: FROC/CPM of whole-scan nodule lists, all nodules and >= 10 mm,
with bootstrap CIs over patients; writes froc.json, froc.png and per_case.csv."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..io import atomic_path
from .detection import (format_froc_table, froc_bootstrap, froc_to_json, match_case, plot_froc)
from .detection_cases import detection_cases

SIZE_ROWS = {"all >= 3 mm": 0.0, ">= 10 mm": 10.0}


def evaluate_detection(pred, ref, out_dir, min_readers: int = 2, n_boot: int = 1000, seed: int = 0,
                       allow_missing: bool = False, patient_regex: str | None = None, figures: bool = True,
                       label: str | None = None) -> dict:
    """The FROC rows ({name: FrocResult}), the printed table and what was written."""
    cases = detection_cases(Path(pred), Path(ref), min_readers, allow_missing, patient_regex)
    label = label or (cases[0].name if len(cases) == 1 else f"{len(cases)} scans")
    rows = {f"{label}, {name}": froc_bootstrap(cases, n_boot=n_boot, seed=seed, min_diameter_mm=d)
            for name, d in SIZE_ROWS.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_case = [_case_row(c) for c in cases]
    with atomic_path(out_dir / "froc.json") as tmp:
        tmp.write_text(json.dumps({"settings": {"min_readers": min_readers, "n_boot": n_boot, "seed": seed},
                                   "rows": {k: froc_to_json(r) for k, r in rows.items()}, "cases": per_case},
                                  indent=2))
    with atomic_path(out_dir / "per_case.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(per_case[0]))
        writer.writeheader()
        writer.writerows(per_case)
    if figures:
        plot_froc(rows, out_dir / "froc.png", title="Whole-scan nodule detection (LUNA16 rules)")
    return {"rows": rows, "table": format_detection(rows), "cases": per_case, "out_dir": str(out_dir)}


def format_detection(rows) -> str:
    """The FROC table plus, per row, what the list finds at its lowest score."""
    lines = [format_froc_table(rows).rstrip()]
    for name, r in rows.items():
        lines.append(f"{name}: {r.n_detected}/{r.n_references} found, {r.fp_per_scan:.2f} false per scan "
                     "at the lowest listed score")
    return "\n".join(lines)


def _case_row(case) -> dict:
    m = match_case(case)
    found = np.isfinite(m.detection_scores)
    return {"case": case.name, "references": len(case.references), "found": int(found.sum()),
            "predictions": len(case.predictions), "false_positives": len(m.false_positive_scores),
            "ignored": m.n_ignored, "duplicates": m.n_duplicates,
            "reference_diameters_mm": " ".join(f"{r.diameter_mm:.1f}" for r in case.references),
            "detection_scores": " ".join("missed" if not np.isfinite(s) else f"{s:.3f}" for s in m.detection_scores)}
