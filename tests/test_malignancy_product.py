"""The malignancy classifier in the product: report fields on a crafted nodule with the shipped
classifier, --no-classify, the web API's report, the preview caption, and `lungseg compare` on
classification configs (a tiny training run of task: classification on a crafted nodule table)."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from lungseg.errors import LungsegError
from lungseg.inference import SegmenterOutput
from lungseg.inference.classify import NoduleClassifier, classify_nodules
from lungseg.inference.pipeline import classifier_weights
from lungseg.inference.report import segmentation_report
from lungseg.io import CTImage
from lungseg.samples import SAMPLE_NODULE_CT

SPACING = (0.8, 0.8, 1.5)  # x, y, z mm


def _ball(shape, centre_zyx, radius_mm, spacing_zyx) -> np.ndarray:
    zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip((zz, yy, xx), centre_zyx, spacing_zyx))
    return d2 <= radius_mm ** 2


def crafted_case():
    """A HU volume: lung parenchyma (-850 HU) in a soft-tissue body, a large solid nodule in the
    right lung and a small one in the left; labels 1/2 the lungs, 3 the nodules."""
    shape, spacing_zyx = (40, 96, 128), SPACING[::-1]
    rng = np.random.default_rng(0)
    hu = np.full(shape, 40.0, np.float32) + rng.normal(0, 20, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[2:38, 10:86, 8:62] = 1
    labels[2:38, 10:86, 66:120] = 2
    hu[labels > 0] = -850 + rng.normal(0, 30, int((labels > 0).sum()))
    big = _ball(shape, (20, 48, 35), 9.0, spacing_zyx)
    small = _ball(shape, (20, 48, 92), 3.0, spacing_zyx)
    hu[big | small] = 30 + rng.normal(0, 15, int((big | small).sum()))
    labels[big | small] = 3
    return CTImage.from_array(hu, spacing=SPACING, is_hu=True), labels


def write_crafted_scan(folder):
    """The crafted case's CT as a NIfTI file (what a web user uploads)."""
    ct, _ = crafted_case()
    scan = folder / "crafted.nii.gz"
    img = sitk.GetImageFromArray(ct.array.astype(np.int16))
    img.SetSpacing(SPACING)
    sitk.WriteImage(img, str(scan))
    return scan


def classified_report(classifier, ct, labels):
    """(report, output) of a crafted case whose nodules the classifier scored, as the pipeline does."""
    out = SegmenterOutput(labels)
    out.malignancy_voxels, out.malignancy_voxel_ids, out.malignancy_results = classify_nodules(
        classifier, ct.array, ct.spacing_zyx, labels)
    out.malignancy = classifier.describe()
    return segmentation_report(ct, labels, out, model="crafted", notes=[]), out


@pytest.fixture(scope="module")
def classifier():
    weights = classifier_weights()
    if weights is None:
        pytest.skip("no malignancy classifier ships in this checkout")
    return NoduleClassifier(weights)


def test_report_gives_every_nodule_a_malignancy_score_and_class(classifier):
    ct, labels = crafted_case()
    report, out = classified_report(classifier, ct, labels)
    assert len(report["nodules"]) == 2
    for n in report["nodules"]:
        assert 0.0 <= n["malignancy_score"] <= 1.0
        assert n["malignancy_score"] == round(n["malignancy_score"], 3)
        assert n["malignancy_class"] in ("suspicious", "not suspicious")
    block = report["malignancy"]
    assert "LIDC readers' suspicion scale, not a diagnosis" in block["caveat"]
    assert "not a diagnosis" in block["meaning"] and 0 < block["threshold"] < 1
    # the class follows the classifier's own (unrounded) threshold, the same the report states
    for pts, result in zip(_components(labels), out.malignancy_results):
        assert result == classifier.classify(ct.array, ct.spacing_zyx, pts)
    by_size = sorted(report["nodules"], key=lambda n: -n["volume_ml"])
    assert [n["malignancy_score"] for n in by_size] == [r["malignancy_score"] for r in out.malignancy_results]
    for n in report["nodules"]:
        expected = "suspicious" if n["malignancy_score"] >= classifier.threshold else "not suspicious"
        if abs(n["malignancy_score"] - classifier.threshold) > 5e-4:  # rounding aside
            assert n["malignancy_class"] == expected
    # the caveat is written once, not per nodule
    assert json.dumps(report).count("not a diagnosis") == 2  # meaning + caveat of the one block


def _components(labels):
    from lungseg.postprocess import component_voxels

    return component_voxels(labels == 3)


def test_without_the_classifier_the_fields_are_absent():
    ct, labels = crafted_case()
    report = segmentation_report(ct, labels, SegmenterOutput(labels), model="crafted", notes=[])
    assert "malignancy" not in report
    assert all("malignancy_score" not in n and "malignancy_class" not in n for n in report["nodules"])


def test_no_classify_option_reaches_only_the_default_model():
    from types import SimpleNamespace

    from lungseg.commands.segment import network_options
    from lungseg.inference import resolve_segmenter

    args = SimpleNamespace(model="default", runtime="auto", precision="auto", tta=False, crf=False,
                           probabilities=None, preview=None, nodule_threshold=None, no_classify=True)
    assert network_options(args)["classify"] is False
    assert "classify" not in network_options(SimpleNamespace(**{**vars(args), "no_classify": False}))
    notes = []
    assert resolve_segmenter("classical", notes=notes, classify=False).name == "classical"
    assert any("--no-classify" in n for n in notes)


def test_preview_caption_names_the_largest_nodule_and_its_scores():
    from lungseg.preview import _largest_nodule_voxels, nodule_caption

    _, labels = crafted_case()
    nodules = [{"id": 1, "diameter_mm": 18.0, "centroid_index_zyx": [20.0, 48.0, 35.0], "detection_score": 0.91,
                "malignancy_score": 0.8, "malignancy_class": "suspicious"},
               {"id": 2, "diameter_mm": 6.0, "centroid_index_zyx": [20.0, 48.0, 92.0], "detection_score": 0.7}]
    caption = nodule_caption(_largest_nodule_voxels(labels), nodules)
    assert caption.startswith("nodule #1: 18 mm") and "detection score 0.91" in caption
    assert "malignancy 0.80 (suspicious" in caption and "not a diagnosis" in caption
    assert "malignancy" not in nodule_caption(_largest_nodule_voxels(labels), nodules[1:] + [
        {"id": 1, "diameter_mm": 18.0, "centroid_index_zyx": [20.0, 48.0, 35.0]}])
    assert nodule_caption(None, nodules) is None


# ---- the CLI on the bundled LIDC-IDRI-0003 crop (a ~31 mm nodule) -------------------------------
def _segment(tmp_path, name, *extra):
    report = tmp_path / f"{name}.json"
    r = subprocess.run([sys.executable, "-m", "lungseg", "segment", str(SAMPLE_NODULE_CT), "-o",
                        str(tmp_path / f"{name}.nii.gz"), "--report", str(report), *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(report.read_text())


def test_cli_report_has_malignancy_and_no_classify_removes_it(tmp_path, classifier):
    pytest.importorskip("openvino")
    report = _segment(tmp_path, "with")
    assert report["nodules"] and "malignancy" in report
    assert report["malignancy"]["caveat"].endswith("not a diagnosis")
    largest = report["nodules"][0]
    assert largest["diameter_mm"] > 20 and 0 <= largest["malignancy_score"] <= 1
    for n in report["nodules"]:
        assert n["malignancy_class"] in ("suspicious", "not suspicious")
    without = _segment(tmp_path, "without", "--no-classify")
    assert "malignancy" not in without
    assert all("malignancy_score" not in n and "malignancy_class" not in n for n in without["nodules"])
    # the same nodules either way: classification changes no mask
    assert [n["volume_ml"] for n in without["nodules"]] == [n["volume_ml"] for n in report["nodules"]]


# ---- the web API -------------------------------------------------------------------------------
class CraftedWithClassifier:
    """The crafted lungs and nodules, classified as the pipeline does (whatever the upload holds)."""

    name = "crafted+classifier"
    requires_hu = False

    def __init__(self, classifier):
        self.classifier = classifier

    def __call__(self, ct, postprocess=True):
        case, labels = crafted_case()
        out = SegmenterOutput(labels)
        out.malignancy_voxels, out.malignancy_voxel_ids, out.malignancy_results = classify_nodules(
            self.classifier, case.array, case.spacing_zyx, labels)
        out.malignancy = self.classifier.describe()
        return out


def test_web_report_returns_the_malignancy_fields(tmp_path, classifier):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from test_web_api import submit, wait_for_job

    from lungseg.web import WebSettings, create_app
    from lungseg.web.schemas import Report

    scan = write_crafted_scan(tmp_path)
    app = create_app(WebSettings(model=CraftedWithClassifier(classifier), root=tmp_path / "jobs"))
    with TestClient(app) as client:
        job = submit(client, scan.read_bytes(), "crafted.nii.gz").json()["job_id"]
        assert wait_for_job(client, job)["status"] == "done"
        report = client.get(f"/api/jobs/{job}/report").json()
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert report["malignancy"]["caveat"].endswith("not a diagnosis")
    assert all(0 <= n["malignancy_score"] <= 1 and n["malignancy_class"] for n in report["nodules"])
    Report.model_validate(report)
    assert "malignancy_score" in schema["Nodule"]["properties"] and "Malignancy" in schema


# ---- lungseg compare on classification configs ----------------------------------------------------
def write_nodule_table(folder, n_patients: int = 12) -> str:
    """One small CT per patient with a small benign and a large malignant nodule (mask values 1
    and 2), as a nodule_table CSV: every patient has both classes, so any split has both."""
    rng = np.random.default_rng(1)
    rows = ["image,mask,label,patient,component"]
    shape, spacing_zyx = (16, 64, 96), (2.0, 0.8, 0.8)
    for p in range(n_patients):
        hu = (-850 + rng.normal(0, 40, shape)).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        small = _ball(shape, (8, 32, 22), 2.0 + 0.2 * (p % 4), spacing_zyx)
        big = _ball(shape, (8, 32, 70), 7.0 + 0.5 * (p % 4), spacing_zyx)
        mask[small], mask[big] = 1, 2
        hu[small | big] = 40 + rng.normal(0, 20, int((small | big).sum()))
        for name, array in ((f"p{p}.nii.gz", hu.astype(np.int16)), (f"p{p}_mask.nii.gz", mask)):
            img = sitk.GetImageFromArray(array)
            img.SetSpacing(spacing_zyx[::-1])
            sitk.WriteImage(img, str(folder / name))
        rows += [f"p{p}.nii.gz,p{p}_mask.nii.gz,benign,P{p},1", f"p{p}.nii.gz,p{p}_mask.nii.gz,malignant,P{p},2"]
        if p % 3 == 0:  # an indeterminate nodule (never trained or scored on, but counted in the split)
            rows.append(f"p{p}.nii.gz,p{p}_mask.nii.gz,indeterminate,P{p},1")
    table = folder / "nodules.csv"
    table.write_text("\n".join(rows) + "\n")
    return str(table)


def write_classifier_configs(folder, table: str) -> list[str]:
    paths = []
    for arch in ("radiomics", "small_cnn", "size_only"):
        raw = {"name": f"clf_{arch}", "task": "classification", "seed": 0, "model": {"name": arch},
               "data": {"sources": [{"type": "nodule_table", "path": table}],
                        "split": {"fractions": [0.6, 0.3, 0.1], "seed": 0}, "batch_size": 8},
               "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4}, "epochs": 5,
               "progress": False, "verbose": False, "threads": 1}
        path = folder / f"clf_{arch}.yaml"
        path.write_text(yaml.safe_dump(raw))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def classifiers_compared(tmp_path_factory):
    from lungseg.cli import main

    folder = tmp_path_factory.mktemp("clf")
    paths = write_classifier_configs(folder, write_nodule_table(folder))
    out = folder / "out"
    argv = ["compare", *paths, "-o", str(out), "--epochs", "1", "--threads", "1"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return paths, out, argv, json.loads((out / "compare.json").read_text()), printed.getvalue()


def test_compare_classifiers_one_table(classifiers_compared):
    _, out, _, result, printed = classifiers_compared
    assert result["task"] == "classification"
    rows = {r["name"]: r for r in result["table"]}
    assert set(rows) == {"clf_radiomics", "clf_small_cnn", "clf_size_only"}
    for r in rows.values():
        for key in ("auc", "auc_ci_low", "auc_ci_high", "size_only_auc"):
            assert 0.0 <= r[key] <= 1.0, (key, r[key])
        assert r["n_nodules"] == result["data"]["validation"]["nodules"] > 0
        assert r["ms_per_nodule"] > 0 and r["train_minutes"] > 0
    assert rows["clf_small_cnn"]["epochs"] == 1  # --epochs reached the network
    assert rows["clf_radiomics"]["parameters"] == len(json.loads((out / "clf_radiomics" / "classifier.json")
                                                                 .read_text())["coef"]) + 1
    assert rows["clf_small_cnn"]["parameters"] > 10_000 and rows["clf_size_only"]["parameters"] == 0
    assert rows["clf_size_only"]["auc"] == rows["clf_size_only"]["size_only_auc"]
    assert rows["clf_radiomics"]["size_only_auc"] == rows["clf_small_cnn"]["size_only_auc"]  # same nodules
    assert (out / "compare.csv").read_text().splitlines()[0].startswith("name,classifier,parameters")
    assert "clf_radiomics" in printed and "clf_small_cnn" in printed and "size-only AUC" in printed


def test_compare_classifiers_reuse_and_set(classifiers_compared, monkeypatch):
    from lungseg.cli import main

    paths, out, argv, before, _ = classifiers_compared
    monkeypatch.setattr("lungseg.train.train", lambda *a, **k: pytest.fail("--reuse trained again"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--reuse"]) == 0
    after = json.loads((out / "compare.json").read_text())
    assert [r["auc"] for r in after["table"]] == [r["auc"] for r in before["table"]]
    assert all(r["reused"] for r in after["table"])
    # --set reaches classification configs like segmentation ones (here: an unknown key fails)
    assert main([*argv, "--reuse", "--set", "data.no_such_key=1"]) == 2


def test_compare_refuses_a_mix_of_tasks(tmp_path, capsys):
    from lungseg.cli import main

    clf = write_classifier_configs(tmp_path, "unused.csv")[0]
    seg = tmp_path / "seg.yaml"
    seg.write_text(yaml.safe_dump({"name": "seg", "epochs": 1}))
    assert main(["compare", clf, str(seg), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lungseg: error:") and "classification" in err[0]
    with pytest.raises(LungsegError, match="--budget-minutes"):
        main(["--debug", "compare", clf, "--budget-minutes", "1"])


def test_pipeline_takes_the_radiomics_model_when_no_network_ships(classifiers_compared, tmp_path, monkeypatch):
    """classifier.pt wins; without it classifier.json serves when it is the radiomics model (not
    a network's sidecar); the report fields come out the same way."""
    from lungseg.inference import pipeline

    _, out, _, _, _ = classifiers_compared
    monkeypatch.setattr(pipeline, "CLASSIFIER_NETWORK", out / "clf_small_cnn" / "classifier.pt")
    assert pipeline.classifier_weights() == out / "clf_small_cnn" / "classifier.pt"
    monkeypatch.setattr(pipeline, "CLASSIFIER_NETWORK", tmp_path / "none.pt")
    monkeypatch.setattr(pipeline, "CLASSIFIER_RADIOMICS", out / "clf_small_cnn" / "classifier.json")
    assert pipeline.classifier_weights() is None  # a network's sidecar alone is no model
    monkeypatch.setattr(pipeline, "CLASSIFIER_RADIOMICS", out / "clf_radiomics" / "classifier.json")
    weights = pipeline.classifier_weights()
    assert weights == out / "clf_radiomics" / "classifier.json"
    classifier = NoduleClassifier(weights)
    ct, labels = crafted_case()
    report, out = classified_report(classifier, ct, labels)
    assert report["malignancy"]["classifier"] == "radiomics"
    assert all(0 <= n["malignancy_score"] <= 1 for n in report["nodules"])


def test_web_page_shows_the_malignancy_column_and_caveat(tmp_path, classifier):
    """In Chromium: the nodule table's Malignancy column (score, class, the meaning as title) and
    one caveat line under it."""
    pytest.importorskip("fastapi")
    from playwright.sync_api import sync_playwright
    from test_web_browser import CHROMIUM_ARGS, chromium_or_skip

    from lungseg.web import WebSettings, create_app
    from lungseg.web.server import background_server

    executable = chromium_or_skip()
    scan = write_crafted_scan(tmp_path)
    app = create_app(WebSettings(model=CraftedWithClassifier(classifier), root=tmp_path / "jobs"))
    problems = []
    with background_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(base)
            page.set_input_files("#file-input", str(scan))
            page.wait_for_selector("#nodule-table", state="visible", timeout=60_000)
            assert page.is_visible("#malignancy-head")
            assert "not a diagnosis" in page.get_attribute("#malignancy-head", "title")
            cell = page.locator("#nodule-table tbody tr:first-child td.malignancy")
            score, cls = cell.inner_text().split("\n")
            assert 0 <= float(score) <= 1 and len(score.split(".")[1]) == 2
            assert cls in ("suspicious", "not suspicious")
            assert "not a diagnosis" in cell.get_attribute("title")
            assert page.locator("#nodule-table tbody tr").count() == 2
            assert page.is_visible("#malignancy-caveat")
            assert page.inner_text("#malignancy-caveat").endswith("not a diagnosis.")
        finally:
            browser.close()
    assert problems == []
