"""CSV and JSON writers for result tables (plain stdlib: no pandas needed). Writes are atomic."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..io import atomic_path


def columns_of(rows: list[dict], first=()) -> list[str]:
    """Union of the rows' keys in first-seen order, with `first` leading."""
    cols = list(first)
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def write_csv(rows: list[dict], path, first=()) -> Path:
    path = Path(path)
    cols = columns_of(rows, first)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k)) for k in cols})
    return path


def write_json(obj, path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(clean_json(obj), f, indent=1)
        f.write("\n")
    return path


def clean_json(obj):
    """NaN/inf -> null (strict JSON), numpy scalars -> Python numbers, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _cell(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return v
