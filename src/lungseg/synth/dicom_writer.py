"""Write a CT volume as a DICOM series (CT Image Storage, one file per slice) with pydicom.

Geometry comes from the CTImage: ImagePositionPatient of every slice, ImageOrientationPatient
from the direction matrix, PixelSpacing (row, column) = (y, x), one SeriesInstanceUID. Pixels are
int16 with RescaleIntercept -1024 / RescaleSlope 1, so HU -3024..3071 (padding included) fit.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..io import CTImage

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INTERCEPT = -1024


def write_dicom_series(ct: CTImage, out_dir, patient_id: str = "SYNTH", description: str = "lungseg synthetic CT",
                       uid_seed: str | None = None) -> Path:
    """Write `ct` (canonical grid) as a series in out_dir (replaced atomically). Returns out_dir."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    seed = uid_seed or patient_id
    study_uid = generate_uid(entropy_srcs=[seed, "study"])
    series_uid = generate_uid(entropy_srcs=[seed, "series"])
    frame_uid = generate_uid(entropy_srcs=[seed, "frame"])
    d = np.asarray(ct.direction, float).reshape(3, 3)
    row_dir, col_dir, slice_dir = d[:, 0], d[:, 1], d[:, 2]  # index x, y, z directions in LPS
    sx, sy, sz = ct.spacing
    stored = np.clip(np.rint(ct.array) - INTERCEPT, -32768, 32767).astype(np.int16)
    now = _dt.datetime(2024, 1, 1, 12, 0, 0)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for k in range(stored.shape[0]):
            pos = np.asarray(ct.origin) + k * sz * slice_dir
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
            sop_uid = generate_uid(entropy_srcs=[seed, "sop", str(k)])
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = CT_IMAGE_STORAGE
            ds.SOPInstanceUID = sop_uid
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
            ds.Modality = "CT"
            ds.Manufacturer = "lungseg synth"
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.PatientName = f"SYNTH^{patient_id}"
            ds.PatientID = patient_id
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
            ds.StudyID = "1"
            ds.SeriesNumber = 1
            ds.InstanceNumber = k + 1
            ds.SeriesDescription = description
            ds.BodyPartExamined = "CHEST"
            ds.PatientPosition = "FFS" if slice_dir[2] < 0 else "HFS"
            ds.ImagePositionPatient = [f"{v:.4f}" for v in pos]
            ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
            ds.SliceLocation = f"{pos[2]:.4f}"
            ds.PixelSpacing = [f"{sy:.6f}", f"{sx:.6f}"]  # (between rows, between columns)
            ds.SliceThickness = f"{sz:.4f}"
            ds.SpacingBetweenSlices = f"{sz:.4f}"
            ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = 1
            ds.RescaleIntercept = str(INTERCEPT)
            ds.RescaleSlope = "1"
            ds.RescaleType = "HU"
            ds.WindowCenter, ds.WindowWidth = "-600", "1500"
            ds.PixelData = stored[k].tobytes()
            pydicom.dcmwrite(tmp / f"IM{k + 1:05d}.dcm", ds, enforce_file_format=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
