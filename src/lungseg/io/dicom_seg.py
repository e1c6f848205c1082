"""DICOM-SEG: a label map as one Segmentation instance that references its source CT series
(written with highdicom, as TotalSegmentator's `-ot dicom_seg`), and SEGs read back as label maps.

Segments (SNOMED CT, the convention of IDC's and dcmqi's lung SEGs; segment number = lungseg label):
  1 right lung   category 123037004 Anatomical Structure, type 39607008 Lung, modifier 24028007 Right
  2 left lung    category 123037004 Anatomical Structure, type 39607008 Lung, modifier 7771000 Left
  3 nodule       category 49755003 Morphologically Abnormal Structure, type 27925004 Nodule,
                 anatomic region 39607008 Lung
BINARY, frames only where a segment is present; every frame references its source CT slice.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import LungsegError
from .ctimage import CTImage

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
DICOM_FORMATS = ("dicom", "dicom-zip")
NEEDS_DICOM = ("DICOM-SEG output needs a DICOM input to reference (a DICOM folder, .zip or file); "
               "write .nii.gz instead")
SEGMENT_LABELS = {1: "right lung", 2: "left lung", 3: "nodule"}
POSITION_TOLERANCE = 0.25  # of the slice spacing: a file further off its grid slice is not that slice
# SNOMED CT code values a SEG's segments are recognised by when read back (segment_label_map)
RIGHT_LUNG, LEFT_LUNG, LUNG = "3341006", "44029006", "39607008"
RIGHT, LEFT = "24028007", "7771000"
LESIONS = {"27925004", "108369006", "4147007", "52988006", "372087000"}  # nodule, neoplasm, mass, lesion, ...


# ---- codes --------------------------------------------------------------------------------------
def _codes():
    """(category, type, modifier or None, anatomic region or None) per lungseg label."""
    from pydicom.sr.codedict import codes

    # pydicom's codes.cid7150.AnatomicalStructure is 91723000, inactive in SNOMED CT since 2019;
    # DICOM's CID 7150 (and IDC, dcmqi, TotalSegmentator) use 123037004 now
    anatomical = _code("123037004", "Anatomical Structure")
    return {1: (anatomical, codes.SCT.Lung, codes.SCT.Right, None),
            2: (anatomical, codes.SCT.Lung, codes.SCT.Left, None),
            3: (codes.cid7150.MorphologicallyAbnormalStructure, codes.SCT.Nodule, None, codes.SCT.Lung)}


def _code(value: str, meaning: str):
    from highdicom.sr import CodedConcept

    return CodedConcept(value, "SCT", meaning)


def _segment_descriptions(model: str | None):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    algorithm = hd.AlgorithmIdentificationSequence(
        name="lungseg", family=codes.cid7162.ArtificialIntelligence, version=__version__,
        source=f"lungseg model '{model}'" if model else None,
        parameters={"model": str(model)} if model else None)
    out = []
    for label, (category, kind, modifier, region) in _codes().items():
        desc = hd.seg.SegmentDescription(
            label, SEGMENT_LABELS[label], category, kind, hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm, anatomic_regions=[region] if region is not None else None)
        if modifier is not None:  # highdicom takes no modifier argument; the attribute is standard (type 3)
            desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = \
                [hd.sr.CodedConcept.from_code(modifier)]
        out.append(desc)
    return out


# ---- writing ------------------------------------------------------------------------------------
def check_dicom_source(ref: CTImage) -> list:
    """The source series' headers, or the one-line error that a SEG cannot be written."""
    headers = ref.meta.get("dicom_headers")
    if ref.format not in DICOM_FORMATS or not headers:
        raise LungsegError(NEEDS_DICOM)
    return headers


def may_be_dicom(path) -> bool:
    """Whether an input path can be a DICOM series (folder, zip or DICOM file): lets the CLI refuse
    `-o mask.dcm` for a NIfTI before spending a segmentation on it."""
    from .readers import DICOM_SUFFIXES, _is_dicom, suffix_of

    path = Path(path)
    return path.is_dir() or suffix_of(path) == ".zip" or (suffix_of(path) in DICOM_SUFFIXES and _is_dicom(path))


def write_dicom_seg(labels: np.ndarray, ref: CTImage, path, model: str | None = None) -> Path:
    """Write a canonical-grid label map (0-3) as a DICOM-SEG referencing ref's source series."""
    from .writers import atomic_path

    headers = check_dicom_source(ref)
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.max(initial=0) > 3:
        raise LungsegError(f"DICOM-SEG output describes labels 1-3 only; this map holds {int(labels.max())}")
    grid = ref.to_original_grid(labels)  # the file's own slices, in the reader's file order
    frames = sitk.GetArrayFromImage(grid)
    sources = _sources_by_slice(grid, headers)
    further = []
    if not frames.any():  # highdicom would then encode every frame of every segment: keep one, reference all
        sources, frames, further = sources[:1], frames[:1], sources[1:]
    with warnings.catch_warnings():  # e.g. the source's one-component PatientName: not the user's to act on
        warnings.simplefilter("ignore", UserWarning)
        try:
            seg = _segmentation(_as_highdicom_wants(sources), frames, model, further)
        except (ValueError, TypeError, AttributeError) as e:  # highdicom's word on what the series lacks
            raise LungsegError(f"cannot write a DICOM-SEG for this series: {str(e)[:200]}") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path


# Type 2 in the CT IOD (present, may be empty), read without a default by highdicom; anonymised
# and synthetic series often drop them
PATIENT_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                       "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


def _as_highdicom_wants(sources: list) -> list:
    """Sources with a first header that highdicom can copy from: the missing type 2 patient/study
    tags added empty (as DICOM allows), and no SpacingBetweenSlices, which highdicom would copy as
    is though writers fill it with 1 or a stale value (readers then stack the frames wrongly or
    refuse them); without it highdicom computes the spacing from the slice positions."""
    first = copy.deepcopy(sources[0])  # the CTImage's headers stay as read
    if "StudyInstanceUID" not in first:
        raise LungsegError("cannot write a DICOM-SEG for this series: it has no StudyInstanceUID")
    for keyword in PATIENT_STUDY_TYPE2:
        if keyword not in first:
            setattr(first, keyword, "")
    if "SpacingBetweenSlices" in first:
        del first.SpacingBetweenSlices
    return [first, *sources[1:]]


def _segmentation(sources: list, frames: np.ndarray, model: str | None, further: list):
    import highdicom as hd

    from .. import __version__

    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_segment_descriptions(model), series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="lungseg",
        manufacturer_model_name=str(model or "lungseg"), software_versions=__version__,
        device_serial_number="none", series_description="lungseg lungs and nodules", content_label="LUNGSEG",
        content_description="right lung, left lung, nodule", omit_empty_frames=True,
        further_source_images=further or None)


def _sources_by_slice(grid: sitk.Image, headers: list) -> list:
    """The source header of every slice of the file's grid, matched by ImagePositionPatient along
    the slice normal (never by file name or reading order): right for feet-first series too."""
    size = grid.GetSize()
    d = np.asarray(grid.GetDirection(), dtype=float).reshape(3, 3)
    normal = d[:, 2] / np.linalg.norm(d[:, 2])
    if len(headers) != size[2]:
        raise LungsegError(f"DICOM-SEG output needs one DICOM file per slice; this series has {len(headers)} "
                           f"file(s) for {size[2]} slices (multi-frame CT is not supported)")
    at = np.array([np.dot(grid.TransformIndexToPhysicalPoint((0, 0, k)), normal) for k in range(size[2])])
    tolerance = POSITION_TOLERANCE * grid.GetSpacing()[2] if size[2] > 1 else 1e-2
    by_slice: list = [None] * size[2]
    for ds in headers:
        name = getattr(ds, "SOPInstanceUID", "?")
        try:
            iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
            ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
            rows, cols = int(ds.Rows), int(ds.Columns)
        except (AttributeError, TypeError, ValueError):
            raise LungsegError(f"DICOM-SEG output: source image {name} lacks its position, orientation or "
                               "size tags") from None
        if (cols, rows) != tuple(size[:2]) or not (np.allclose(iop[:3], d[:, 0], atol=1e-3)
                                                   and np.allclose(iop[3:], d[:, 1], atol=1e-3)):
            raise LungsegError(f"DICOM-SEG output: source image {name} does not lie on the series' grid "
                               "(different size or orientation)")
        k = int(np.argmin(np.abs(at - np.dot(ipp, normal))))
        if abs(at[k] - np.dot(ipp, normal)) > tolerance or by_slice[k] is not None:
            raise LungsegError(f"DICOM-SEG output: source image {name} does not match one slice of the series "
                               "(duplicate or irregular slice positions)")
        by_slice[k] = ds
    return by_slice


# ---- reading ------------------------------------------------------------------------------------
def is_dicom_seg(path) -> bool:
    """True for a DICOM file whose SOP class is Segmentation Storage (reads the header only)."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # not DICOM, unreadable: not a SEG
        return False
    return str(getattr(ds, "SOPClassUID", "")) == SEG_SOP_CLASS


def segment_label_map(segments) -> dict[int, int]:
    """{segment number: lungseg label}: by coded concept when every segment is a right lung, left
    lung or nodule/neoplasm (lungseg's own SEGs and IDC's lung SEGs); else label = segment number."""
    by_code = {}
    for s in segments:
        label = _label_of(s)
        if label is None:
            return {int(s.SegmentNumber): int(s.SegmentNumber) for s in segments}
        by_code[int(s.SegmentNumber)] = label
    return by_code


def _label_of(segment) -> int | None:
    kind = segment.SegmentedPropertyTypeCodeSequence[0]
    value = str(kind.CodeValue)
    modifiers = {str(m.CodeValue) for m in getattr(kind, "SegmentedPropertyTypeModifierCodeSequence", [])}
    if value == RIGHT_LUNG or (value == LUNG and modifiers == {RIGHT}):
        return 1
    if value == LEFT_LUNG or (value == LUNG and modifiers == {LEFT}):
        return 2
    return 3 if value in LESIONS else None


def read_dicom_seg(path) -> CTImage:
    """A SEG as a label map (float32 values 0..n) on the canonical grid of its frames. The grid
    spans only the slices that hold frames (meta['partial_extent']): evaluation embeds it in the
    partner's grid. Where segments overlap the higher label wins (a nodule inside a lung segment
    stays a nodule, whatever the segment numbers)."""
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
        mapping = segment_label_map(seg.SegmentSequence)
        numbers = sorted(mapping)
        volume = seg.get_volume(segment_numbers=numbers, combine_segments=False)  # (z, y, x, segment)
    except LungsegError:
        raise
    except Exception as e:  # highdicom and pydicom raise many types for unusual SEGs
        raise LungsegError(f"cannot read DICOM-SEG {path}: {str(e)[:200]}") from None
    stack = np.asarray(volume.array)
    labels = np.zeros(volume.spatial_shape, dtype=np.uint16)
    for i in sorted(range(len(numbers)), key=lambda i: mapping[numbers[i]]):
        labels[stack[..., i] >= 0.5] = mapping[numbers[i]]  # BINARY 0/1; FRACTIONAL 0..1 (rescaled)
    image = volume.with_array(labels, channels={}).to_simpleitk()
    ct = CTImage.from_sitk(image, is_hu=False, source=str(path), format="dicom-seg")
    ct.meta.update(partial_extent=True, segment_labels=mapping,
                   series_uid=str(getattr(seg, "SeriesInstanceUID", "")))
    return ct
