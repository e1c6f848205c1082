"""`lungseg evaluate` on the shared real references (CIP codes, rotated grids, imlab soft masks)."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from lungseg.cli import main
from lungseg.evaluation.cases import read_label_image
from lungseg.evaluation.labelmaps import parse_label_map
from lungseg.io import read_ct, write_labels

pytestmark = pytest.mark.shared


def _shared() -> Path:
    root = Path(os.environ.get("LUNGSEG_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    if not root.exists():
        pytest.skip(f"shared data not found at {root} (set LUNGSEG_SHARED_DATA)")
    return root


def _eroded(lab):
    out = np.zeros_like(lab)
    for code in np.unique(lab[lab > 0]):
        out[ndi.binary_erosion(lab == code)] = code
    return out


def test_cip_reference_codes_and_rotated_grid(tmp_path, capsys):
    cip = _shared() / "lungs" / "cip_copdgene"
    ref_map = parse_label_map("cip")
    for name in ("", "-transformed"):
        ct = read_ct(cip / f"ct-64{name}.nrrd")
        lab = ref_map.apply(read_label_image(cip / f"lm-64{name}.nrrd").array)
        write_labels(_eroded(lab), ct, tmp_path / "pred" / f"ct64{name}.nrrd")
        (tmp_path / "ref").mkdir(exist_ok=True)
        (tmp_path / "ref" / f"ct64{name}.nrrd").symlink_to(cip / f"lm-64{name}.nrrd")
    out = tmp_path / "out"
    rc = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(out), "--ref-map", "cip",
               "--no-plots", "--no-html", "--n-boot", "50", "-q"])
    assert rc == 0
    rows = {(r["case"], r["class"]): r for r in json.loads((out / "per_case.json").read_text())}
    for cls in ("right_lung", "left_lung", "both_lungs"):
        plain, rotated = rows[("ct64", cls)], rows[("ct64-transformed", cls)]
        assert 0.7 < plain["dice"] < 1.0
        # the rotated copy holds the same voxels: identical scores, sides not swapped
        assert rotated["dice"] == pytest.approx(plain["dice"])
        assert rotated["vol_ref_ml"] == pytest.approx(plain["vol_ref_ml"])
    assert 1000 < rows[("ct64", "left_lung")]["vol_ref_ml"] < 4000
    # a prediction on the unrotated grid against the rotated reference is refused, naming the case
    rc = main(["evaluate", str(tmp_path / "pred" / "ct64.nrrd"), str(cip / "lm-64-transformed.nrrd"),
               "-o", str(tmp_path / "o2"), "--ref-map", "cip"])
    assert rc == 2 and "orientation" in capsys.readouterr().err


def test_imlab_soft_masks_score_both_lungs_only(tmp_path):
    imlab = _shared() / "lungs" / "imlab3d"
    ref = imlab / "id001-128x128x64-msk.nii.gz"
    ct = read_ct(imlab / "id001-128x128x64.nii.gz")
    lung = read_label_image(ref).array > 127.5
    write_labels(ndi.binary_erosion(lung).astype(np.uint8), ct, tmp_path / "id001-128x128x64.nii.gz")
    out = tmp_path / "out"
    rc = main(["evaluate", str(tmp_path / "id001-128x128x64.nii.gz"), str(ref), "-o", str(out), "--ref-map", "imlab",
               "--pred-map", "binary", "--images", str(imlab / "id001-128x128x64.nii.gz"), "--n-boot", "20", "-q"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["settings"]["classes"] == ["both_lungs"]
    dice = {(r["class"], r["metric"]): r for r in s["summary"]}[("both_lungs", "dice")]["mean"]
    assert 0.7 < dice < 1.0
    assert (out / "overlays").is_dir() and (out / "report.html").exists()
