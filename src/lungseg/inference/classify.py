"""Stage 6, classification: each final nodule's malignancy_score (0-1) and class, from the
shipped classifier (lungseg.classification, trained on LIDC readers' ratings: their suspicion,
not a diagnosis). Runs after post-processing on the nodules the report lists."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CAVEAT = "LIDC readers' suspicion scale, not a diagnosis"  # the short form (the web page's line under the table)
MALIGNANCY_CAVEAT = ("malignancy_score: 0-1, how suspicious the nodule looks on the LIDC readers' 1-5 "
                     "malignancy scale (trained on median rating > 3 vs < 3); the readers' suspicion, "
                     "not a diagnosis")


class NoduleClassifier:
    """A classifier saved by `lungseg train` with task: classification: a network (.pt with its
    .onnx/.json beside it, run on OpenVINO when it can) or the radiomics model (.json)."""

    def __init__(self, weights, runtime: str = "auto"):
        weights = Path(weights)
        self.meta = json.loads(weights.with_suffix(".json").read_text())
        self.threshold = round(float(self.meta["threshold"]), 3)  # as the report prints it, so class and score agree
        self._weights, self._runtime, self._run = weights, runtime, None

    @property
    def name(self) -> str:
        return str(self.meta.get("arch", "classifier"))

    def _model(self):
        if self._run is None:  # compiled on first use: scans without nodules never pay for it
            if self._weights.suffix == ".json":  # the radiomics model (a network is a .pt)
                from ..classification.radiomics import RadiomicsModel

                from ..classification.features import nodule_features

                model = RadiomicsModel.load(self._weights)
                self._run = lambda hu, mask, spacing: float(model.predict([nodule_features(hu, mask, spacing)])[0])
            else:
                from ..classification.patches import nodule_patch
                from ..classification.train import load_classifier_state
                from .runtimes.exported import exported_runner

                runner = exported_runner(self._weights, self._runtime, load_classifier_state)
                self._run = lambda hu, mask, spacing: float(
                    1.0 / (1.0 + np.exp(-runner(nodule_patch(hu, mask, spacing)[None])[0])))
        return self._run

    def classify(self, hu: np.ndarray, spacing_zyx, pts) -> dict:
        """{'malignancy_score', 'malignancy_class'} for one nodule given as voxel index arrays."""
        from ..classification.patches import crop_around

        coords = np.stack(pts)
        box = crop_around(hu.shape, coords, spacing_zyx)
        mask = np.zeros([s.stop - s.start for s in box], bool)
        mask[tuple(c - s.start for c, s in zip(coords, box))] = True
        score = round(self._model()(hu[box], mask, spacing_zyx), 3)
        return {"malignancy_score": score, "malignancy_class": "suspicious" if score >= self.threshold else "not suspicious"}

    def describe(self) -> dict:
        return {"meaning": MALIGNANCY_CAVEAT, "caveat": str(self.meta.get("caveat") or CAVEAT),
                "classifier": self.name, "threshold": self.threshold,
                "classes": {"suspicious": f"malignancy_score >= {self.threshold:.3f}",
                            "not suspicious": f"malignancy_score < {self.threshold:.3f}"}}


def classify_nodules(classifier: NoduleClassifier, hu: np.ndarray, spacing_zyx, labels: np.ndarray):
    """Every final nodule (label 3, connected as the report counts them: postprocess.component_voxels,
    which volumetry uses) classified: (flat indices of their voxels, each voxel's nodule index,
    the classifier's answer per nodule). The report finds a nodule's answer through its voxels."""
    from ..postprocess import component_voxels

    components = component_voxels(labels == 3)
    results = [classifier.classify(hu, spacing_zyx, pts) for pts in components]
    if not components:
        return np.zeros(0, np.intp), np.zeros(0, np.int32), results
    flat = np.concatenate([np.ravel_multi_index(pts, labels.shape) for pts in components])
    ids = np.repeat(np.arange(len(components), dtype=np.int32), [len(pts[0]) for pts in components])
    return flat, ids, results
