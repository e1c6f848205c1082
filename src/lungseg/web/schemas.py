"""Response models: they document the REST API in the OpenAPI schema (/docs, /openapi.json)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorMessage(BaseModel):
    detail: str = Field(description="one-line message for the user")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    model: str = Field(description="the segmentation model jobs use")
    workers: int = Field(description="scans segmented at the same time")
    max_upload_mb: float
    result_ttl_minutes: float = Field(description="results are deleted this long after a job finishes")
    accepted_formats: list[str]


class JobCreated(BaseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    filename: str = Field(description="the uploaded file's name (for display)")
    status: Literal["queued", "running", "done", "error"]
    error: str | None = Field(None, description="why the job failed (status 'error')")
    queue_position: int | None = Field(None, description="jobs ahead of this one (status 'queued')")
    elapsed_s: float = Field(description="seconds since the upload was accepted")
    model: str | None = None
    is_2d: bool | None = None
    downloads: dict[str, str] = Field(default_factory=dict,
                                      description="result name -> URL (mask, report, preview, probabilities, "
                                                  "low_confidence, dicom_seg for DICOM uploads)")


class LungStats(BaseModel):
    model_config = ConfigDict(extra="allow")
    volume_ml: float
    voxels: int
    mean_hu: float | None = None
    emphysema_index_pct: float | None = Field(None, description="% of lung voxels below -950 HU (LAA-950)")


class Nodule(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int
    side: Literal["right", "left"]
    diameter_mm: float = Field(description="equivalent-sphere diameter")
    volume_ml: float
    slice_range: list[int] = Field(description="[first, last] axial slice (canonical grid)")
    centroid_index_zyx: list[float]
    detection_score: float | None = Field(None, description="0-1: how likely the finding is a nodule or tumour "
                                                            "(not a malignancy score)")
    malignancy_score: float | None = Field(None, ge=0, le=1,
                                           description="0-1: how suspicious the nodule looks on the LIDC readers' "
                                                       "malignancy scale (their suspicion, not a diagnosis); only "
                                                       "when the malignancy classifier ran")
    malignancy_class: Literal["suspicious", "not suspicious"] | None = Field(
        None, description="malignancy_score at or above the classifier's threshold (see the report's malignancy)")


class Malignancy(BaseModel):
    """What the nodules' malignancy scores mean, written once per report."""

    model_config = ConfigDict(extra="allow")
    meaning: str
    caveat: str | None = Field(None, description="one line for display: the readers' suspicion, not a diagnosis")
    classifier: str
    threshold: float
    classes: dict[str, str]


class Report(BaseModel):
    model_config = ConfigDict(extra="allow")
    input: dict
    model: str
    labels: dict[str, str]
    lungs: dict[str, LungStats] = Field(description="right, left and total")
    nodules: list[Nodule]
    warnings: list[str]
    malignancy: Malignancy | None = Field(None, description="present when the nodules were classified "
                                                            "(default model, classifier installed, HU input)")


class VolumeInfo(BaseModel):
    """How to read the viewer volumes: uint8 arrays in C order (z, y, x), canonical LPS grid
    (x toward the patient's left, y posterior, z superior), thinned by step_zyx."""

    shape_zyx: list[int]
    spacing_zyx_mm: list[float]
    step_zyx: list[int] = Field(description="stride from the full grid (full index = index * step)")
    full_shape_zyx: list[int]
    value_range: list[float] = Field(description="[lo, hi]: CT byte v means lo + v * (hi - lo) / 255")
    is_hu: bool
    is_2d: bool
    has_low_confidence: bool
    low_confidence_bit: int = Field(description="labels byte: bits 0-1 = label, this bit = low confidence")
    start_zyx: list[int] = Field(description="a good first position (through the middle of the lungs)")
    ct_url: str
    labels_url: str
