"""The shipped default, as the pipeline's stages: lungs (lungs.py) -> nodule candidates
(candidates.py) -> detection scores and the operating point (scoring.py) -> post-processing
(postprocessing.py) -> each final nodule's malignancy (classify.py); the report (report.py) is
built by lungseg.api from the output. Weights live in lungseg/weights/."""
from __future__ import annotations

import json
from pathlib import Path

from ..io import CTImage
from .output import SegmenterOutput

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
NODULE_MAX_PIXEL_MM = 1.5  # the nodule model learnt on thin-slice crops (~0.7 mm pixels)
# slices thicker than this: the nodule list comes with a note (validated on 1.25-2.5 mm; on 3.75 and
# 5 mm reconstructions of the real LIDC-IDRI-0003 it found fewer nodules and listed 1-2 false ones
# per scan, and at 5 mm lost inserted tumours: benchmarks/real_nodules_in_lidc.py --slice-mm,
# benchmarks/pathology_in_real.py --grids z5; see the model card)
THICK_SLICE_MM = 3.0
CANDIDATE_LUNG_MARGIN_MM = 3.0  # candidates lie in the lung mask grown by this much (juxtapleural ones too)
CHEST_WALL_BITE_MM = 20.0  # a mass may also lie in the lung's bites up to this deep (candidates.py)
# the nodule network's voxel probability that starts a candidate: 0.3 rather than 0.5 lets faint
# (ground-glass) nodules become candidates for the scorer to judge. Chosen on the first 12 copies of
# benchmarks/real_nodules_in_lidc.py (seed 0, validation): every-candidate CPM 0.512 / 0.549 / 0.552
# at 0.5 / 0.3 / 0.15, the last with 36 % more candidates to score
CANDIDATE_VOXEL_THRESHOLD = 0.3
NODULE_OUTLINE_THRESHOLD = 0.5  # a listed finding is still drawn where the network says >= 0.5 (its training)
LUNG_HU = WEIGHTS_DIR / "lung_hu.pt"
LUNG_IMAGE = WEIGHTS_DIR / "lung_image.pt"
NODULE = WEIGHTS_DIR / "nodule.pt"
SCORER = WEIGHTS_DIR / "scorer.pt"  # the candidate scorer (3D CNNs); without it: the mean probability
CLASSIFIER_NETWORK = WEIGHTS_DIR / "classifier.pt"  # the malignancy classifier (+ .onnx, .json beside it)
CLASSIFIER_RADIOMICS = WEIGHTS_DIR / "classifier.json"  # or the radiomics model alone (no .pt)


def nodule_precision(precision: str) -> str:
    """"auto" runs the nodule network in bf16 where the CPU has it: benchmarks/runtimes.py found
    its LIDC validation Dice within 0.001 of fp32's (the lung network's was not: it stays fp32)."""
    if precision != "auto":
        return precision
    from .runtimes.openvino_runtime import cpu_has_bf16

    return "bf16" if cpu_has_bf16() else "fp32"


def default_available() -> bool:
    return LUNG_HU.exists()


def classifier_weights() -> Path | None:
    """The shipped malignancy classifier: the network (classifier.pt) when there is one, else the
    radiomics model (classifier.json, not the network's sidecar); None when neither ships."""
    if CLASSIFIER_NETWORK.exists():
        return CLASSIFIER_NETWORK
    if CLASSIFIER_RADIOMICS.exists() and json.loads(CLASSIFIER_RADIOMICS.read_text()).get("kind") == "radiomics":
        return CLASSIFIER_RADIOMICS
    return None


class DefaultSegmenter:
    name = "default"
    requires_hu = False  # HU input goes to the HU models, anything else to the image-mode model

    def __init__(self, device: str = "cpu", tta: bool = False, nodules: bool = True, precision: str = "auto",
                 keep_probabilities: bool = False, runtime: str = "auto", crf: bool = False,
                 low_confidence: bool = True, nodule_threshold: float | None = None, scorer: str = "auto",
                 classify: bool = True, every_slice: bool = False):
        """scorer: 'auto' (the shipped candidate scorer when installed), 'network' or 'probability'
        (the nodule network's own mean probability, the scorer before the candidate CNN).
        classify: give each final nodule a malignancy_score and class (when the classifier ships).
        every_slice: the lung network on every slice of a thin-slice scan too (see thin_slices.py)."""
        from .candidates import NoduleSegmenter
        from .lungs import LungStage

        self.lungs = LungStage(LUNG_HU, LUNG_IMAGE, crf=crf, device=device, precision=precision, tta=tta,
                               keep_probabilities=keep_probabilities, runtime=runtime, low_confidence=low_confidence,
                               every_slice=every_slice)
        self.nodule = NoduleSegmenter.from_checkpoint(NODULE, device=device, precision=nodule_precision(precision),
                                                      runtime=runtime, tta=tta, lung_margin_mm=CANDIDATE_LUNG_MARGIN_MM,
                                                      threshold=CANDIDATE_VOXEL_THRESHOLD,
                                                      outline=NODULE_OUTLINE_THRESHOLD, bite_mm=CHEST_WALL_BITE_MM) \
            if nodules and NODULE.exists() else None
        if self.nodule is not None and (scorer == "network" or (scorer == "auto" and SCORER.exists())):
            from .scoring import NetworkScorer

            self.nodule.scorer = NetworkScorer(SCORER, runtime=runtime)
        if self.nodule is not None and nodule_threshold is not None:
            self.nodule.scorer.min_score = nodule_threshold  # the operating point: which scored findings are listed
        self.classifier = None
        if self.nodule is not None and classify and (weights := classifier_weights()) is not None:
            from .classify import NoduleClassifier

            self.classifier = NoduleClassifier(weights, runtime=runtime)  # compiled at the first nodule

    @property
    def lung_hu(self):
        return self.lungs.hu

    @property
    def lung_image(self):
        return self.lungs.image

    def __call__(self, ct: CTImage, postprocess: bool = True) -> SegmenterOutput:
        out = self._with_nodules(ct, self.lungs(ct, postprocess=postprocess), postprocess)
        if ct.is_hu and postprocess:
            # last: the nodule stage learnt and was validated on lung masks that hold the main
            # bronchi; cut from its mask, the hilum made a new false finding on a tumour phantom
            from ..airways import remove_central_airways

            remove_central_airways(out.labels, ct.array, ct.spacing_zyx)
        return out

    def _with_nodules(self, ct: CTImage, out: SegmenterOutput, postprocess: bool) -> SegmenterOutput:
        from .postprocessing import add_nodules

        if not ct.is_hu or self.nodule is None:
            return out
        if min(ct.spacing[:2]) > NODULE_MAX_PIXEL_MM:
            out.notes.append(f"nodules not searched: pixels are {min(ct.spacing[:2]):.2f} mm, the nodule model "
                             f"needs <= {NODULE_MAX_PIXEL_MM} mm")
            return out
        if ct.spacing_zyx[0] > THICK_SLICE_MM:
            out.notes.append(f"slices are {ct.spacing_zyx[0]:.1f} mm apart: the nodule list was validated on <= 2.5 mm "
                             f"slices; on thicker ones it misses more small nodules, lists more false ones and may miss or "
                             f"draw only part of a large tumour")
        voxels, scores = self.nodule.find_scored(ct, out.labels)
        out.labels, out.nodule_voxels, out.nodule_voxel_scores = add_nodules(
            out.labels, voxels, scores, ct.spacing_zyx, postprocess)
        out.detection_score_meaning = self.nodule.scorer.meaning
        out.detection_threshold = float(self.nodule.scorer.min_score)
        if self.classifier is not None:
            from .classify import classify_nodules

            out.malignancy_voxels, out.malignancy_voxel_ids, out.malignancy_results = classify_nodules(
                self.classifier, ct.array, ct.spacing_zyx, out.labels)
            out.malignancy = self.classifier.describe()
        out.model = "default (lungs + nodules)"
        return out
