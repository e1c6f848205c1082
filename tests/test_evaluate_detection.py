"""`lungseg evaluate --detection`: whole-scan nodule lists scored with the LUNA16 rules, from
lungseg reports or label maps against label maps or LIDC cases."""
import json

import numpy as np
import pytest

from conftest import shared_path
from lungseg.cli import main
from lungseg.io import CTImage, write_labels

SPACING = (1.0, 1.0, 2.0)  # x, y, z mm


def _reference(tmp_path, name="case0"):
    """Two spherical nodules: 12 mm at LPS (20, 20, 20) and 6 mm at (40, 44, 30) (origin 0, identity)."""
    z, y, x = np.indices((24, 64, 64))
    lab = np.zeros((24, 64, 64), np.uint8)
    for (cx, cy, cz), d in (((20, 20, 20), 12.0), ((40, 44, 30), 6.0)):
        lab[(x - cx) ** 2 + (y - cy) ** 2 + ((z * 2.0) - cz) ** 2 <= (d / 2) ** 2] = 3
    path = tmp_path / "ref" / f"{name}_labels.nii.gz"
    path.parent.mkdir(exist_ok=True)
    write_labels(lab, CTImage.from_array(np.zeros(lab.shape), spacing=SPACING), path)
    return path


def _report(tmp_path, name, nodules):
    path = tmp_path / "pred" / f"{name}.report.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"nodules": [{"centroid_mm_lps": c, "detection_score": s} for c, s in nodules]}))
    return path


def test_reports_against_label_maps_give_the_hand_computed_froc(tmp_path, capsys):
    _reference(tmp_path)
    # 0.9 hits the 12 mm nodule (2 mm off, radius ~6 mm); 0.8 is 10 mm away from everything: a
    # false positive; 0.3 hits the 6 mm nodule (1 mm off). Curve: threshold 0.9 -> 1/2 found,
    # 0 FP; 0.8 -> 1/2, 1 FP; 0.3 -> 2/2, 1 FP. So 1/8..1/2 FP/scan: 0.5; 1..8: 1.0;
    # CPM = (3 * 0.5 + 4 * 1.0) / 7 = 0.786. >= 10 mm: only the big one counts (the hit on the
    # small one is ignored): 1.0 everywhere.
    _report(tmp_path, "case0", [((22, 20, 20), 0.9), ((20, 30, 20), 0.8), ((40, 44, 31), 0.3)])
    out = tmp_path / "eval"
    rc = main(["evaluate", "--detection", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(out),
               "--n-boot", "0"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "case0, all >= 3 mm" in printed and "2/2 found, 1.00 false per scan" in printed
    rows = json.loads((out / "froc.json").read_text())["rows"]
    assert rows["case0, all >= 3 mm"]["sensitivities"] == pytest.approx([0.5, 0.5, 0.5, 1, 1, 1, 1])
    assert rows["case0, all >= 3 mm"]["cpm"] == pytest.approx(5.5 / 7)
    assert rows["case0, >= 10 mm"]["sensitivities"] == pytest.approx([1.0] * 7)
    assert (out / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "case0,2,2,3,1,0,0" in (out / "per_case.csv").read_text()


def test_label_map_predictions_score_one_each(tmp_path, capsys):
    ref = _reference(tmp_path)
    rc = main(["evaluate", "--detection", str(ref), str(ref), "-o", str(tmp_path / "e"), "--n-boot", "0",
               "--no-plots"])
    assert rc == 0 and "2/2 found, 0.00 false per scan" in capsys.readouterr().out


def test_missing_prediction_and_bad_report_are_one_line_errors(tmp_path, capsys):
    _reference(tmp_path, "case0")
    _reference(tmp_path, "case1")
    _report(tmp_path, "case0", [((20, 20, 20), 0.9)])
    rc = main(["evaluate", "--detection", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 2 and "no prediction for reference case(s) case1" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "pred" / "case1.report.json").write_text("{not json")
    rc = main(["evaluate", "--detection", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert rc == 2 and "case1.report.json: not a lungseg report" in err and len(err.strip().splitlines()) == 1


def _lidc_copy(tmp_path, xml_bytes):
    """An LIDC case folder: the real DICOM zip (linked) and the given XML."""
    src = shared_path("whole_scans/LIDC-IDRI-0003")
    case = tmp_path / "LIDC-IDRI-0003"
    case.mkdir()
    (case / "LIDC-IDRI-0003.zip").symlink_to(src / "LIDC-IDRI-0003.zip")
    (case / "LIDC-IDRI-0003.xml").write_bytes(xml_bytes)
    return case


@pytest.mark.shared
def test_truncated_lidc_xml_is_refused_with_one_line_and_no_output(tmp_path, capsys):
    xml = shared_path("whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.xml").read_bytes()
    case = _lidc_copy(tmp_path, xml[:20000])
    _report(tmp_path, "LIDC-IDRI-0003", [((0, 0, 0), 0.5)])
    out = tmp_path / "eval"
    rc = main(["evaluate", "--detection", str(tmp_path / "pred"), str(case), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("lungseg: error: ") and len(err.strip().splitlines()) == 1
    assert "LIDC-IDRI-0003.xml: not a readable LIDC XML read" in err
    assert not (out / "froc.json").exists()


@pytest.mark.shared
def test_lidc_reference_hits_and_ignored_findings(tmp_path, capsys):
    """Predictions at the three >= 2-reader nodules of LIDC-IDRI-0003 (centres from tests/test_lidc.py),
    one on the single-reader nodule (ignored) and one in empty space (false)."""
    case = shared_path("whole_scans/LIDC-IDRI-0003")
    _report(tmp_path, "LIDC-IDRI-0003", [((72.1, 77.0, -190.7), 0.9), ((-47.2, -30.0, -169.6), 0.8),
                                         ((23.6, -47.6, -172.3), 0.7), ((73.9, 74.5, -213.1), 0.95),
                                         ((-100.0, 60.0, -250.0), 0.6)])
    rc = main(["evaluate", "--detection", str(tmp_path / "pred"), str(case), "-o", str(tmp_path / "e"),
               "--n-boot", "0", "--no-plots"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "3/3 found, 1.00 false per scan" in printed
    rows = json.loads((tmp_path / "e" / "froc.json").read_text())["rows"]
    # all three hits score above the one false positive: sensitivity 1 from 1/8 FP/scan on
    assert rows["LIDC-IDRI-0003, all >= 3 mm"]["cpm"] == pytest.approx(1.0)
