"""Robustness curves: perturbations are what they claim, and Dice reacts as a threshold segmenter must."""
import numpy as np
import pytest

from lungseg.evaluation.robustness import perturb, robustness_curve
from lungseg.io import CTImage


def _phantom():
    lab = np.zeros((4, 32, 32), np.uint8)
    lab[:, 6:26, 4:14] = 1
    lab[:, 6:26, 18:28] = 2
    ct = CTImage.from_array(np.where(lab > 0, -850.0, 40.0), spacing=(1.0, 1.0, 2.0))
    return ct, lab


def threshold_segmenter(ct):
    """A deliberately fragile segmenter: lung = below -400 HU, sides by image half."""
    lungs = ct.array < -400
    out = np.zeros(ct.shape, np.uint8)
    half = ct.shape[2] // 2
    out[:, :, :half][lungs[:, :, :half]] = 1
    out[:, :, half:][lungs[:, :, half:]] = 2
    return out


def test_perturbations():
    ct, _ = _phantom()
    assert perturb(ct, "shift", 100).array.max() == pytest.approx(140.0)
    assert perturb(ct, "scale", 0.9).array.min() == pytest.approx(-765.0)  # gain about 0 HU
    noisy = perturb(ct, "noise", 50, np.random.default_rng(0)).array - ct.array
    assert noisy.std() == pytest.approx(50, rel=0.05)
    assert ct.array.max() == 40.0  # the input is untouched
    with pytest.raises(ValueError):
        perturb(ct, "blur", 1)


def test_image_mode_shift_is_scaled_to_the_image_range():
    arr = np.linspace(0, 1, 32 * 32).reshape(1, 32, 32)
    ct = CTImage.from_array(arr, is_hu=False)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    assert (perturb(ct, "shift", 150).array - arr).mean() == pytest.approx(150 * (hi - lo) / 1500, rel=1e-4)


def test_robustness_curve_numbers():
    ct, lab = _phantom()
    pert = {"shift": (-100.0, 500.0), "noise": (10.0,)}
    res = robustness_curve(threshold_segmenter, ct, lab, pert)
    assert res["classes"] == ["right_lung", "left_lung", "both_lungs"]
    assert res["baseline"] == {"right_lung": 1.0, "left_lung": 1.0, "both_lungs": 1.0}
    shift = {p["magnitude"]: p for p in res["points"] if p["kind"] == "shift"}
    assert shift[-100.0]["both_lungs"] == 1.0
    assert shift[500.0]["both_lungs"] == 0.0  # lungs at -350 HU: above the threshold, all missed
    s = res["summary"]["shift"]["both_lungs"]
    assert s["mean"] == pytest.approx(0.5) and s["std"] == pytest.approx(0.5) and s["drop"] == pytest.approx(0.5)
    assert res["summary"]["noise"]["both_lungs"]["mean"] == 1.0
    assert res["overall"]["both_lungs"]["mean"] == pytest.approx(2 / 3)
    # several cases at once
    two = robustness_curve(threshold_segmenter, [ct, ct], [lab, lab], {"noise": (10.0,)})
    assert two["n_cases"] == 2 and len(two["points"]) == 2


def test_robustness_plot(tmp_path):
    from PIL import Image

    from lungseg.evaluation.plots import robustness_plot

    ct, lab = _phantom()
    res = robustness_curve(threshold_segmenter, ct, lab, {"shift": (-100.0, 500.0), "scale": (0.5, 1.2)})
    path = robustness_plot(res, tmp_path / "robustness.png")
    with Image.open(path) as im:
        assert im.format == "PNG"


def test_robustness_through_evaluate_folders(tmp_path):
    import json

    from lungseg.evaluation.folders import evaluate_folders
    from lungseg.io import write_image, write_labels

    ct, lab = _phantom()
    for sub in ("pred", "ref", "img"):
        (tmp_path / sub).mkdir()
    write_labels(lab, ct, tmp_path / "ref" / "a.nii.gz")
    write_labels(lab, ct, tmp_path / "pred" / "a.nii.gz")
    write_image(ct, tmp_path / "img" / "a.nii.gz")
    s = evaluate_folders(tmp_path / "pred", tmp_path / "ref", tmp_path / "out", images_dir=tmp_path / "img",
                         n_boot=20, robustness=threshold_segmenter, figures=False, html=True)
    assert s["robustness"]["baseline"]["both_lungs"] == 1.0
    # lungs at -850 HU stay below -400 under +-200 HU, x0.8..1.2 and noise: a threshold is robust here
    assert s["robustness"]["overall"]["both_lungs"]["mean"] > 0.99
    assert json.loads((tmp_path / "out" / "robustness.json").read_text())["cases"] == ["a"]
    assert "Robustness to intensity changes" in (tmp_path / "out" / "report.html").read_text()
