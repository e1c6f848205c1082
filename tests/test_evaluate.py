"""`lungseg evaluate` end to end on small synthetic cases (predictions = perturbed references)."""
import csv
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from lungseg.cli import main
from lungseg.io import CTImage, write_image, write_labels

SPACING = (1.5, 1.5, 3.0)  # x, y, z mm


def _case(seed: int):
    """A tiny chest: two lungs (1 right on the image left, 2 left) and two nodules."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((16, 40, 48))
    lab = np.zeros((16, 40, 48), np.uint8)
    for code, cx in ((1, 14), (2, 34)):
        lab[((x - cx) / 9.0) ** 2 + ((y - 20) / 14.0) ** 2 + ((z - 8) / 7.0) ** 2 <= 1] = code
    for cz, cy, cx, r in ((8, 18, 13 + seed, 3.2), (6, 24, 34, 2.2)):
        lab[((x - cx) * 1.5) ** 2 + ((y - cy) * 1.5) ** 2 + ((z - cz) * 3.0) ** 2 <= (r * 1.5) ** 2] = 3
    ct = np.where(lab > 0, -850.0, 40.0) + rng.normal(0, 20, lab.shape)
    ct[lab == 3] = 30.0
    return CTImage.from_array(ct, spacing=SPACING), lab


def _perturb(lab, how):
    if how == "same":
        return lab
    if how == "eroded":
        out = np.zeros_like(lab)
        for code in (1, 2, 3):
            out[ndi.binary_erosion(lab == code)] = code
        return out
    return np.roll(lab, 2, axis=2)  # shifted two columns


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    for sub in ("pred", "ref", "img"):
        (root / sub).mkdir()
    for i, how in enumerate(("same", "eroded", "shifted")):
        ct, lab = _case(i)
        write_labels(lab, ct, root / "ref" / f"case{i}_seg.nii.gz")
        write_labels(_perturb(lab, how), ct, root / "pred" / f"case{i}.nii.gz")
        write_image(ct, root / "img" / f"case{i}_0000.nii.gz")
    return root


@pytest.fixture(scope="module")
def evaluated(folders):
    out = folders / "out"
    rc = main(["evaluate", str(folders / "pred"), str(folders / "ref"), "-o", str(out), "--images",
               str(folders / "img"), "--n-boot", "200", "-q"])
    assert rc == 0
    return out


def test_outputs_exist(evaluated):
    names = {p.name for p in evaluated.iterdir()}
    assert {"per_case.csv", "per_case.json", "summary.csv", "summary.json", "lesions.csv", "lesion_summary.csv",
            "report.html", "dice_boxplot.png", "bland_altman_volume.png", "volume_scatter.png",
            "lung_vs_nodule_dice.png", "overlays"} <= names
    overlays = sorted(p.name for p in (evaluated / "overlays").iterdir())
    assert [o.split("_")[0] for o in overlays] == ["best", "median", "worst"]
    for png in [*evaluated.glob("*.png"), *(evaluated / "overlays").glob("*.png")]:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300


def test_per_case_table(evaluated):
    with open(evaluated / "per_case.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4
    by = {(r["case"], r["class"]): r for r in rows}
    assert float(by[("case0", "right_lung")]["dice"]) == 1.0
    assert float(by[("case0", "nodule")]["hd95_mm"]) == 0.0
    assert float(by[("case1", "left_lung")]["dice"]) < 1.0  # eroded
    assert float(by[("case2", "left_lung")]["vol_diff_ml"]) == pytest.approx(0.0, abs=1e-9)  # shifted, same size
    assert float(by[("case2", "left_lung")]["hd95_mm"]) > 0
    for col in ("iou", "precision", "recall", "specificity", "accuracy", "f1", "assd_mm", "surface_dice",
                "vol_ref_ml", "lesions_hit"):
        assert col in rows[0]


def test_summary_json(evaluated):
    s = json.loads((evaluated / "summary.json").read_text())
    assert s["n_cases"] == 3 and s["settings"]["classes"] == ["right_lung", "left_lung", "both_lungs", "nodule"]
    dice = {(r["class"], r["metric"]): r for r in s["summary"]}[("both_lungs", "dice")]
    assert dice["ci_low"] <= dice["mean"] <= dice["ci_high"] and dice["n"] == 3
    recall = {r["quantity"]: r for r in s["lesions"]}["lesion_recall"]
    assert recall["denominator"] == 6 and 0 <= recall["value"] <= 1
    assert "empty_masks" in s["conventions"]


def test_html_is_self_contained(evaluated):
    html = (evaluated / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 + 3
    assert "src='http" not in html and 'src="http' not in html
    for word in ("Summary", "Nodule detection", "Volume agreement", "best", "worst", "Conventions"):
        assert word in html


def test_grid_mismatch_names_the_case(folders, tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    ct, lab = _case(0)
    small = CTImage.from_array(ct.array[:, :, :40], spacing=SPACING)
    write_labels(lab[:, :, :40], small, pred / "case0.nii.gz")
    rc = main(["evaluate", str(pred), str(folders / "ref" / "case0_seg.nii.gz"), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "case0" in err and "grid" in err


def test_spacing_mismatch_is_an_error(folders, tmp_path, capsys):
    ct, lab = _case(0)
    other = CTImage.from_array(ct.array, spacing=(1.5, 1.5, 2.0))
    write_labels(lab, other, tmp_path / "case0.nii.gz")
    rc = main(["evaluate", str(tmp_path / "case0.nii.gz"), str(folders / "ref" / "case0_seg.nii.gz"), "-o",
               str(tmp_path / "o")])
    assert rc == 2 and "spacing" in capsys.readouterr().err


def test_missing_prediction(folders, tmp_path, capsys):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "case0.nii.gz").write_bytes((folders / "pred" / "case0.nii.gz").read_bytes())
    rc = main(["evaluate", str(pred), str(folders / "ref"), "-o", str(tmp_path / "o"), "--no-plots"])
    assert rc == 2 and "no prediction" in capsys.readouterr().err
    rc = main(["evaluate", str(pred), str(folders / "ref"), "-o", str(tmp_path / "o"), "--no-plots", "--no-html",
               "--allow-missing", "--n-boot", "50", "-q"])
    assert rc == 0
    rows = json.loads((tmp_path / "o" / "per_case.json").read_text())
    missing = [r for r in rows if r["case"] == "case1"]
    assert missing and all(r["dice"] == 0.0 and r["empty_pred"] == 1.0 for r in missing)


def test_png_slices_with_a_nodule_map_and_an_empty_prediction(tmp_path, capsys):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    ref.mkdir()
    pred.mkdir()
    m = np.zeros((64, 64), np.uint8)
    m[20:30, 20:30] = 255
    Image.fromarray(m).save(ref / "LIDC-IDRI-0001_a.png")
    Image.fromarray(m).save(ref / "LIDC-IDRI-0001_b.png")
    Image.fromarray(m).save(ref / "LIDC-IDRI-0002_c.png")
    np.save(pred / "LIDC-IDRI-0001_a.npy", (m > 0).astype(np.uint8) * 3)
    np.save(pred / "LIDC-IDRI-0001_b.npy", np.roll((m > 0).astype(np.uint8) * 3, 5, axis=0))
    Image.fromarray(np.zeros_like(m)).save(pred / "LIDC-IDRI-0002_c.png")  # empty prediction
    out = tmp_path / "o"
    rc = main(["evaluate", str(pred), str(ref), "-o", str(out), "--ref-map", "255:nodule",
               "--pred-map", "3:nodule", "--patient-regex", r"LIDC-IDRI-\d+", "--n-boot", "100", "-q"])
    printed = capsys.readouterr().out
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_patients"] == 2 and s["settings"]["classes"] == ["nodule"]
    rows = {r["case"]: r for r in json.loads((out / "per_case.json").read_text())}
    assert rows["LIDC-IDRI-0001_a"]["dice"] == 1.0
    assert rows["LIDC-IDRI-0001_b"]["dice"] == pytest.approx(2 * 50 / 200)
    assert rows["LIDC-IDRI-0002_c"]["dice"] == 0.0 and rows["LIDC-IDRI-0002_c"]["hd95_mm"] is None
    assert "1 mm voxels" in printed  # PNG has no spacing: stated


def test_unknown_values_and_binary_reference(folders, tmp_path, capsys):
    ref = tmp_path / "ref.nii.gz"
    ct, lab = _case(0)
    write_labels((lab > 0).astype(np.uint8) * 255, ct, ref)
    rc = main(["evaluate", str(folders / "pred" / "case0.nii.gz"), str(ref), "-o", str(tmp_path / "o")])
    assert rc == 2 and "--ref-map" in capsys.readouterr().err
    rc = main(["evaluate", str(folders / "pred" / "case0.nii.gz"), str(ref), "-o", str(tmp_path / "o"),
               "--ref-map", "binary", "--no-plots", "--n-boot", "20", "-q"])
    assert rc == 0
    rows = json.loads((tmp_path / "o" / "per_case.json").read_text())
    assert [r["class"] for r in rows] == ["both_lungs"] and rows[0]["dice"] == 1.0


def test_case_names_and_a_folder_holding_scans_and_masks(tmp_path):
    from lungseg.errors import LungsegError
    from lungseg.evaluation.cases import case_name, list_cases

    assert case_name(tmp_path / "id001-128x128x64-msk.nii.gz") == "id001-128x128x64"
    assert case_name(tmp_path / "lung_004_0000.nii.gz") == "lung_004"
    assert case_name(tmp_path / "case7_pred.npy") == "case7"
    assert case_name(tmp_path / "case7.seg.dcm") == "case7"  # what `lungseg segment -o case7.seg.dcm` writes
    for name in ("id001.nii.gz", "id001-msk.nii.gz", "README.md"):
        (tmp_path / name).write_bytes(b"")
    assert list_cases(tmp_path, "image")["id001"].name == "id001.nii.gz"
    assert list_cases(tmp_path, "reference")["id001"].name == "id001-msk.nii.gz"
    with pytest.raises(LungsegError, match="two prediction files"):
        list_cases(tmp_path, "prediction")
