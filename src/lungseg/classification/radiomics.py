"""The radiomics baseline as a model: standardised features (features.py, size and volume on a
log scale) -> logistic regression. Fitted with scikit-learn, applied with numpy, stored as JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .features import FEATURES, feature_matrix

LOG_FEATURES = ("diameter_mm", "volume_ml", "slices_mm")


def _design(rows: list[dict]) -> np.ndarray:
    x = feature_matrix(rows)
    for name in LOG_FEATURES:
        i = FEATURES.index(name)
        x[:, i] = np.log1p(np.maximum(x[:, i], 0))
    return x


class RadiomicsModel:
    def __init__(self, mean, scale, coef, intercept: float):
        self.mean, self.scale = np.asarray(mean, float), np.asarray(scale, float)
        self.coef, self.intercept = np.asarray(coef, float), float(intercept)

    @classmethod
    def fit(cls, rows: list[dict], y, c: float = 1.0) -> "RadiomicsModel":
        from sklearn.linear_model import LogisticRegression

        x = _design(rows)
        mean, scale = x.mean(0), x.std(0) + 1e-9
        lr = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, np.asarray(y, int))
        return cls(mean, scale, lr.coef_[0], lr.intercept_[0])

    def predict(self, rows: list[dict]) -> np.ndarray:
        z = ((_design(rows) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return {"kind": "radiomics", "features": list(FEATURES), "log_features": list(LOG_FEATURES),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def load(cls, path) -> "RadiomicsModel":
        d = json.loads(Path(path).read_text())
        if d.get("features") != list(FEATURES):
            from ..errors import LungsegError

            raise LungsegError(f"{path}: radiomics model made for other features ({d.get('features')})")
        return cls(d["mean"], d["scale"], d["coef"], d["intercept"])
