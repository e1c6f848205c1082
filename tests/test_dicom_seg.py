"""DICOM-SEG output and input: `lungseg segment SERIES -o mask.dcm` against the NIfTI mask of the same
run, voxel for voxel, read back three ways (highdicom frame by frame, lungseg's reader, pydicom-seg);
referenced UIDs, segment codes, dciodvfy; SEG references in `lungseg evaluate`."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_path

import lungseg
from lungseg.io import CTImage, read_ct, read_labels, write_labels
from lungseg.samples import SAMPLE_CT

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

CIP_SERIES = "lungs/cip_copdgene/ct-64Dicom"
CODES = {  # segment number -> (category, type, type modifier) SNOMED CT code values
    1: ("123037004", "39607008", "24028007"),
    2: ("123037004", "39607008", "7771000"),
    3: ("49755003", "27925004", None),
}


def lungseg_cli(*args):
    return subprocess.run([sys.executable, "-m", "lungseg", *map(str, args)], capture_output=True,
                          encoding="utf-8", errors="replace", timeout=300)


# ---- a feet-first series with shuffled file names ----------------------------------------------
@pytest.fixture(scope="module")
def feet_first(tmp_path_factory):
    """A small synthetic chest stored feet-first with rows running to the patient's right (x and z
    flipped against LPS), written with file names that sort in no spatial order."""
    from lungseg.synth import generate_case
    from lungseg.synth.dicom_writer import write_dicom_series

    case = generate_case(2, size=(64, 64, 24), difficulty="easy")
    ct = case.ct
    first = ct.physical_points(np.array([[ct.shape[0] - 1, 0, ct.shape[2] - 1]]))[0]
    stored = CTImage.from_array(ct.array[::-1, :, ::-1], spacing=ct.spacing, origin=first,
                                direction=(-1, 0, 0, 0, 1, 0, 0, 0, -1))
    root = tmp_path_factory.mktemp("feet_first")
    ordered = write_dicom_series(stored, root / "ordered", patient_id="FEETFIRST")
    series = root / "series"
    series.mkdir()
    files = sorted(ordered.iterdir())
    for k, i in enumerate(np.random.default_rng(0).permutation(len(files))):
        shutil.copyfile(files[i], series / f"{(k * 7919) % 1000:03d}_{k}.dcm")
    assert pydicom.dcmread(files[0]).PatientPosition == "FFS"
    return series, case


def test_feet_first_fixture_is_feet_first_and_unsorted(feet_first):
    series, case = feet_first
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(series.iterdir())]
    z = [float(h.ImagePositionPatient[2]) for h in headers]
    assert z != sorted(z) and z != sorted(z, reverse=True)
    assert [float(v) for v in headers[0].ImageOrientationPatient[:3]] == [-1, 0, 0]
    ct = read_ct(series)
    assert ct.shape == case.ct.shape and np.allclose(ct.origin, case.ct.origin, atol=1e-3)


# ---- checks shared by every round trip ---------------------------------------------------------
def source_headers(series) -> dict:
    return {str(ds.SOPInstanceUID): ds for ds in
            (pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(series.iterdir()))}


def check_frames_against_nifti(seg_path, nifti_path, sources: dict) -> None:
    """Every SEG frame is the NIfTI's slice at its source image's position, and frames exist
    exactly where a segment is present. Uses only highdicom/pydicom and ITK: no lungseg code."""
    seg = hd.seg.segread(seg_path)
    nii = sitk.ReadImage(str(nifti_path))
    labels = sitk.GetArrayFromImage(nii)
    pixels = seg.pixel_array.reshape(-1, *labels.shape[1:])
    seen = set()
    for i, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = str(frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        source = sources[uid]
        position = [float(v) for v in source.ImagePositionPatient]
        np.testing.assert_allclose([float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient],
                                   position, atol=1e-3)
        index = nii.TransformPhysicalPointToIndex(position)
        assert index[:2] == (0, 0)
        np.testing.assert_array_equal(pixels[i].astype(bool), labels[index[2]] == number)
        seen.add((number, index[2]))
    present = {(n, k) for n in (1, 2, 3) for k in range(labels.shape[0]) if (labels[k] == n).any()}
    assert seen == present


def check_references_and_codes(seg_path, sources: dict, model: str) -> None:
    seg = hd.seg.segread(seg_path)
    first = next(iter(sources.values()))
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    assert seg.StudyInstanceUID == first.StudyInstanceUID
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert seg.SeriesInstanceUID != first.SeriesInstanceUID
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    assert {str(r.ReferencedSOPInstanceUID) for r in series.ReferencedInstanceSequence} == set(sources)
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [1, 2, 3]
    for s in seg.SegmentSequence:
        category, kind, modifier = CODES[int(s.SegmentNumber)]
        assert s.SegmentedPropertyCategoryCodeSequence[0].CodeValue == category
        code = s.SegmentedPropertyTypeCodeSequence[0]
        assert code.CodeValue == kind and code.CodingSchemeDesignator == "SCT"
        mods = [m.CodeValue for m in getattr(code, "SegmentedPropertyTypeModifierCodeSequence", [])]
        assert mods == ([modifier] if modifier else [])
        assert s.SegmentAlgorithmType == "AUTOMATIC"
        (algorithm,) = s.SegmentationAlgorithmIdentificationSequence
        assert algorithm.AlgorithmName == "lungseg" and algorithm.AlgorithmVersion == lungseg.__version__
        assert model in algorithm.AlgorithmSource
    assert seg.ManufacturerModelName == model
    assert seg.SoftwareVersions == lungseg.__version__


def check_lungseg_reader(seg_path, nifti_path) -> None:
    """lungseg's own reader (evaluation): the SEG's labels on the NIfTI's canonical grid."""
    from lungseg.evaluation.cases import align_pair, read_label_image

    seg, nii = align_pair(read_label_image(seg_path), read_label_image(nifti_path))
    np.testing.assert_array_equal(seg.array, nii.array)


def check_pydicom_seg(seg_path, nifti_path) -> None:
    """pydicom-seg's reader (its numpy-2 fork pydicom-seg-rb; pydicom-seg 0.4.1 needs numpy < 2)."""
    pdseg = pytest.importorskip("pydicom_seg_rb")
    result = pdseg.SegmentReader().read(pydicom.dcmread(seg_path))
    nii = sitk.ReadImage(str(nifti_path))
    labels = sitk.GetArrayFromImage(nii)
    for number in result.available_segments:
        if not (labels == number).any():
            continue
        image = result.segment_image(number)
        on_grid = sitk.GetArrayFromImage(sitk.Resample(nii, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
        got = sitk.GetArrayFromImage(image) > 0
        np.testing.assert_array_equal(got, on_grid == number)
        assert got.sum() == (labels == number).sum()


def check_dciodvfy(seg_path) -> None:
    """dicom3tools' IOD validator (Debian package dicom3tools): no error lines."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy not installed (apt-get install dicom3tools; scripts/install_dicom3tools.sh)")
    out = subprocess.run(["dciodvfy", str(seg_path)], capture_output=True, text=True, timeout=60)
    report = out.stdout + out.stderr
    assert "Segmentation" in report
    assert not [line for line in report.splitlines() if line.startswith("Error")], report


def round_trip(series, out, model: str) -> tuple:
    for name in ("seg.dcm", "mask.nii.gz"):
        r = lungseg_cli("segment", series, "-o", out / name, "--model", model, "--report", out / f"{name}.json")
        assert r.returncode == 0, r.stderr
    return out / "seg.dcm", out / "mask.nii.gz"


# ---- segment -> SEG ----------------------------------------------------------------------------
def check_classical_seg(seg, nii, series):
    """Every check on a SEG that `--model classical` wrote from this series."""
    sources = source_headers(series)
    check_references_and_codes(seg, sources, "classical")
    check_frames_against_nifti(seg, nii, sources)
    check_lungseg_reader(seg, nii)
    check_pydicom_seg(seg, nii)
    check_dciodvfy(seg)


def test_cip_series_classical_round_trip(tmp_path):
    series = shared_path(CIP_SERIES)
    seg, nii = round_trip(series, tmp_path, "classical")
    check_classical_seg(seg, nii, series)


def test_cip_series_default_model_round_trip(tmp_path):
    series = shared_path(CIP_SERIES)
    seg, nii = round_trip(series, tmp_path, "default")
    model = json.loads((tmp_path / "seg.dcm.json").read_text())["model"]
    sources = source_headers(series)
    check_references_and_codes(seg, sources, model)
    check_frames_against_nifti(seg, nii, sources)
    check_lungseg_reader(seg, nii)


def test_feet_first_shuffled_series_round_trip(feet_first, tmp_path):
    series, _ = feet_first
    seg, nii = round_trip(series, tmp_path, "classical")
    assert np.isin(sitk.GetArrayFromImage(sitk.ReadImage(str(nii))), (1, 2)).any()
    check_classical_seg(seg, nii, series)


def test_nodule_segment_round_trips_on_a_zipped_feet_first_series(feet_first, tmp_path):
    """All three segments, written from a label map through the API, from a zip (its scratch folder
    is gone by the time the SEG is written)."""
    import zipfile

    series, case = feet_first
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in series.iterdir():
            zf.write(f, f"nested/{f.name}")
    ct = read_ct(archive)
    labels = case.labels.copy()
    labels[10:13, 20:26, 14:20] = 3  # a nodule in the right lung's half (low x = patient's right)
    write_labels(labels, ct, tmp_path / "seg.dcm", model="unit-test")
    write_labels(labels, ct, tmp_path / "mask.nii.gz")
    sources = source_headers(series)
    check_references_and_codes(tmp_path / "seg.dcm", sources, "unit-test")
    check_frames_against_nifti(tmp_path / "seg.dcm", tmp_path / "mask.nii.gz", sources)
    check_lungseg_reader(tmp_path / "seg.dcm", tmp_path / "mask.nii.gz")
    check_pydicom_seg(tmp_path / "seg.dcm", tmp_path / "mask.nii.gz")
    check_dciodvfy(tmp_path / "seg.dcm")
    back = read_labels(tmp_path / "seg.dcm")  # lungseg labels by code, on the frames' own slices
    assert back.meta["segment_labels"] == {1: 1, 2: 2, 3: 3}
    assert int((back.array == 3).sum()) == int((labels == 3).sum())


def test_empty_mask_gives_a_small_valid_seg_referencing_every_slice(feet_first, tmp_path):
    series, _ = feet_first
    ct = read_ct(series)
    write_labels(np.zeros(ct.shape, np.uint8), ct, tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert seg.NumberOfFrames == 3 and not seg.pixel_array.any()
    refs = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert len(refs) == ct.shape[0]
    assert not read_labels(tmp_path / "seg.dcm").array.any()
    check_dciodvfy(tmp_path / "seg.dcm")


def test_format_option_forces_a_seg_whatever_the_name(tmp_path):
    series = shared_path(CIP_SERIES)
    r = lungseg_cli("segment", series, "-o", tmp_path / "SEG0001", "--format", "dicom-seg", "--model", "classical")
    assert r.returncode == 0, r.stderr
    assert str(pydicom.dcmread(tmp_path / "SEG0001").SOPClassUID) == "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.mark.parametrize("how", ["suffix", "format"])
def test_non_dicom_input_is_one_error_line_and_no_file(tmp_path, how):
    out = tmp_path / ("seg.dcm" if how == "suffix" else "seg")
    extra = ["--format", "dicom-seg"] if how == "format" else []
    r = lungseg_cli("segment", SAMPLE_CT, "-o", out, "--model", "classical", *extra)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lungseg: error: DICOM-SEG output needs a DICOM input")
    assert "write .nii.gz instead" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_api_refuses_seg_for_non_dicom_input(tmp_path):
    result = lungseg.segment(SAMPLE_CT, model="classical")
    with pytest.raises(lungseg.LungsegError, match="needs a DICOM input"):
        result.save(tmp_path / "seg.dcm")
    assert list(tmp_path.iterdir()) == []


# ---- SEG as a reference in `lungseg evaluate` ---------------------------------------------------
def test_evaluate_scores_seg_against_nifti_with_dice_one(feet_first, tmp_path):
    from lungseg.cli import main

    series, case = feet_first
    ct = read_ct(series)
    labels = case.labels.copy()
    labels[10:13, 20:26, 14:20] = 3
    write_labels(labels, ct, tmp_path / "ref" / "case.dcm")
    write_labels(labels, ct, tmp_path / "pred" / "case.nii.gz")
    (tmp_path / "ref" / "IM0001.dcm").write_bytes((next(series.iterdir())).read_bytes())  # a CT slice: not a label
    for pred, ref in ((tmp_path / "pred", tmp_path / "ref"), (tmp_path / "ref" / "case.dcm", tmp_path / "ref")):
        out = tmp_path / f"out_{pred.name}"
        plots = [] if pred.is_dir() else ["--no-plots"]  # overlays drawn once, from the SEG reference
        args = ["evaluate", str(pred), str(ref), "-o", str(out), "--n-boot", "0", "--no-html", "-q", *plots]
        assert main(args) == 0
        rows = json.loads((out / "per_case.json").read_text())
        dice = {r["class"]: r["dice"] for r in rows}
        assert dice == {"right_lung": 1.0, "left_lung": 1.0, "both_lungs": 1.0, "nodule": 1.0}


def test_evaluate_cip_seg_against_its_nifti(tmp_path):
    from lungseg.cli import main

    series = shared_path(CIP_SERIES)
    seg, nii = round_trip(series, tmp_path, "classical")
    out = tmp_path / "eval"
    assert main(["evaluate", str(seg), str(nii), "-o", str(out), "--n-boot", "0", "--no-plots", "-q"]) == 0
    rows = json.loads((out / "per_case.json").read_text())
    assert {r["class"]: r["dice"] for r in rows if r["class"] != "nodule"} == \
        {"right_lung": 1.0, "left_lung": 1.0, "both_lungs": 1.0}


def _segment(number: int, code: str, modifier: str | None = None):
    from pydicom.dataset import Dataset

    kind = Dataset()
    kind.CodeValue, kind.CodingSchemeDesignator = code, "SCT"
    if modifier:
        side = Dataset()
        side.CodeValue, side.CodingSchemeDesignator = modifier, "SCT"
        kind.SegmentedPropertyTypeModifierCodeSequence = [side]
    segment = Dataset()
    segment.SegmentNumber, segment.SegmentedPropertyTypeCodeSequence = number, [kind]
    return segment


def test_seg_segments_map_by_code_else_by_number():
    from lungseg.io.dicom_seg import segment_label_map

    lung = "39607008"
    assert segment_label_map([_segment(1, lung, "7771000"), _segment(2, lung, "24028007"),
                              _segment(3, "108369006")]) == {1: 2, 2: 1, 3: 3}  # by code, whatever the order
    assert segment_label_map([_segment(1, "44029006"), _segment(2, "3341006")]) == {1: 2, 2: 1}
    # one segment lungseg does not know (a liver, a lung without side): every label = segment number
    assert segment_label_map([_segment(1, "10200004"), _segment(2, lung, "24028007")]) == {1: 1, 2: 2}
    assert segment_label_map([_segment(1, lung), _segment(2, lung, "7771000")]) == {1: 1, 2: 2}


def test_seg_write_time_on_lidc_whole_scan(tmp_path):
    """The SEG of a 140-slice 512x512 series takes about a second to write (measured, printed)."""
    import time

    archive = shared_path("whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip")
    ct = read_ct(archive)
    labels = (ct.array > -400).astype(np.uint8)  # a dense full-size map: body split into halves 1 and 2
    labels[:, :, ct.shape[2] // 2:] *= 2
    start = time.perf_counter()
    write_labels(labels, ct, tmp_path / "seg.dcm", model="timing")
    seconds = time.perf_counter() - start
    print(f"SEG write: {seconds:.2f} s, {(tmp_path / 'seg.dcm').stat().st_size / 1e6:.1f} MB")
    assert seconds < 20
    frames = sum(int((labels == v).any(axis=(1, 2)).sum()) for v in (1, 2))
    assert hd.seg.segread(tmp_path / "seg.dcm").NumberOfFrames == frames


def test_batch_format_dicom_seg_writes_a_seg_per_dicom_zip_and_logs_the_rest(tmp_path):
    """Batch mode: each DICOM zip gets <case>.dcm; a NIfTI in the folder fails with the one-line
    reason in the log, the others go on, exit 1."""
    import csv
    import zipfile

    series = shared_path(CIP_SERIES)
    scans = tmp_path / "scans"
    scans.mkdir()
    with zipfile.ZipFile(scans / "cip.zip", "w") as zf:
        for f in series.iterdir():
            zf.write(f, f.name)
    shutil.copyfile(SAMPLE_CT, scans / "plain.nrrd")
    r = lungseg_cli("segment", scans, "-o", tmp_path / "out", "--format", "dicom-seg", "--model", "classical",
                    "--quiet")
    assert r.returncode == 1, r.stderr
    assert str(pydicom.dcmread(tmp_path / "out" / "cip.dcm").Modality) == "SEG"
    assert not (tmp_path / "out" / "plain.dcm").exists()
    rows = {row["case"]: row for row in csv.DictReader(open(tmp_path / "out" / "lungseg_batch.csv"))}
    assert rows["cip.zip"]["status"] == "ok" and rows["plain.nrrd"]["status"] == "failed"
    assert "needs a DICOM input" in rows["plain.nrrd"]["error"]


def test_foreign_seg_with_a_nodule_inside_the_lung_segment_reads_as_nodule(feet_first, tmp_path):
    """Another tool's SEG: segment 1 a nodule, segment 2 the left lung around it (BINARY segments
    may overlap): the nodule stays label 3 and the rest of the lung is 2."""
    from pydicom.sr.codedict import codes

    series, _ = feet_first
    from lungseg.io.dicom_seg import _as_highdicom_wants  # the synthetic series lacks type 2 patient tags

    headers = sorted((pydicom.dcmread(f) for f in series.iterdir()), key=lambda d: float(d.ImagePositionPatient[2]))
    headers = _as_highdicom_wants(headers)
    shape = (len(headers), int(headers[0].Rows), int(headers[0].Columns))
    lung = np.zeros(shape + (2,), bool)
    lung[5:15, 10:40, 10:30, 1] = True
    lung[8:11, 20:24, 15:19, 0] = True  # the nodule, inside the lung
    algorithm = hd.AlgorithmIdentificationSequence("other", codes.cid7162.ArtificialIntelligence, "1")
    lung_type = hd.sr.CodedConcept("39607008", "SCT", "Lung")
    descriptions = [
        hd.seg.SegmentDescription(1, "nodule", codes.cid7150.MorphologicallyAbnormalStructure, codes.SCT.Nodule,
                                  "AUTOMATIC", algorithm),
        hd.seg.SegmentDescription(2, "left lung", hd.sr.CodedConcept("123037004", "SCT", "Anatomical Structure"),
                                  lung_type, "AUTOMATIC", algorithm)]
    descriptions[1].SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = \
        [hd.sr.CodedConcept.from_code(codes.SCT.Left)]
    seg = hd.seg.Segmentation(headers, lung.astype(np.uint8), "BINARY", descriptions, hd.UID(), 1, hd.UID(), 1,
                              "other", "other", "1", "0")
    seg.save_as(tmp_path / "other.dcm")
    back = read_labels(tmp_path / "other.dcm")
    assert back.meta["segment_labels"] == {1: 3, 2: 2}
    assert int((back.array == 3).sum()) == int(lung[..., 0].sum())
    assert int((back.array == 2).sum()) == int((lung[..., 1] & ~lung[..., 0]).sum())
