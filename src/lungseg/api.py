"""segment(): the one entry point that the CLI and the web both call."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inference import check_intensity, resolve_segmenter
from .inference.report import segmentation_report
from .io import CTImage, atomic_path, read_ct, write_labels
from .postprocess import lung_voxels

log = logging.getLogger("lungseg")


@dataclass
class SegmentationResult:
    image: CTImage
    labels: np.ndarray  # uint8 (z, y, x) on the image's canonical grid
    report: dict
    probabilities: np.ndarray | None = None
    low_confidence: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)

    def save(self, path, format: str | None = None) -> Path:
        """Write the mask on exactly the input's grid; the format follows the suffix (.dcm: a
        DICOM-SEG referencing the input series) unless format='dicom-seg' forces it."""
        return write_labels(self.labels, self.image, path, format=format, model=self.report.get("model"))

    def save_report(self, path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.report, indent=2))
        return path

    def save_preview(self, path) -> Path:
        from .preview import render_preview

        return render_preview(self.image, self.labels, path, low_confidence=self.low_confidence,
                              title=f"{Path(self.image.source).name} — {self.report.get('model', '')}",
                              nodules=self.report.get("nodules"))  # the caption on the largest nodule

    def save_probabilities(self, path) -> Path:
        """Probability maps (C, z, y, x) as float16 .npy, or the lung probability as a volume."""
        if self.probabilities is None:
            from .errors import LungsegError

            raise LungsegError(f"model '{self.report.get('model')}' gives no probabilities")
        path = Path(path)
        if path.suffix == ".npy":
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, self.probabilities.astype(np.float16))
            return path
        from .io import write_image

        lung = self.probabilities[1:3].sum(axis=0) if self.probabilities.shape[0] > 2 else self.probabilities[-1]
        return write_image(self.image.with_array(lung), path, dtype=np.float32)

    @property
    def labels_in_file_order(self) -> np.ndarray:
        """The mask as an array in the input file's own axis order and orientation."""
        import SimpleITK as sitk

        return sitk.GetArrayFromImage(self.image.to_original_grid(self.labels))


def segment(scan, model="default", *, postprocess: bool = True, device: str = "cpu",
            intensity: str = "auto", **options) -> SegmentationResult:
    """Segment right lung (1), left lung (2) and nodules (3).

    scan: a path (DICOM folder/zip/file, NIfTI, NRRD, MHA/MHD, PNG/JPG/TIFF, NPY/NPZ) or a CTImage.
    model: 'default', 'classical', a checkpoint path, or a segmenter object.
    options for networks: runtime='auto'|'torch'|'openvino', precision='auto'|'fp32'|'bf16', tta=bool;
    for the default model: nodule_threshold=float, classify=bool (False: no malignancy_score/class
    in the report; the score is the LIDC readers' suspicion scale, not a diagnosis).
    """
    ct = scan if isinstance(scan, CTImage) else read_ct(scan, intensity=intensity)
    notes: list[str] = []
    segmenter = resolve_segmenter(model, device=device, notes=notes, **options)
    check_intensity(segmenter, ct)
    out = segmenter(ct, postprocess=postprocess)
    labels = np.asarray(out.labels, dtype=np.uint8)
    notes.extend(out.notes)
    if not lung_voxels(labels).any():
        notes.append("no lungs found in view: the mask is empty")
    if not ct.is_hu:
        notes.append("input is not in Hounsfield units (image mode): HU statistics are not reported")
    for note in notes:
        log.warning(note)
    report = segmentation_report(ct, labels, out, model=out.model or segmenter.name, notes=notes)
    return SegmentationResult(ct, labels, report, out.probabilities, out.low_confidence, notes)
