"""End to end in real headless Chromium: upload -> result -> slice change -> download.

Needs Debian's `chromium` and Playwright's Python package (scripts/install_browser.sh installs
both; Playwright's own browser download is not used). Skipped, with the reason, when either is
missing. Set LUNGSEG_SCREENSHOT=docs/web_screenshot.png to refresh the screenshot in the docs.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

pytest.importorskip("fastapi")

import lungseg  # noqa: E402
from lungseg.samples import SAMPLE_CT  # noqa: E402
from lungseg.inference import SegmenterOutput  # noqa: E402
from lungseg.web import WebSettings, create_app  # noqa: E402
from lungseg.web.server import background_server  # noqa: E402
from test_web_api import ClassicalWithConfidence  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_or_skip() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright's Python package is not installed (run scripts/install_browser.sh)")
    path = os.environ.get("LUNGSEG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        pytest.skip(f"Chromium is not installed{f' at {path}' if path else ''} (run scripts/install_browser.sh)")
    return path


class WithTestNodule(ClassicalWithConfidence):
    """Classical lungs plus one synthetic 'nodule' in the left lung, so the nodule table and
    click-to-jump have something to show (the sample scan has no nodule)."""

    name = "classical+test-nodule"

    def __call__(self, ct, postprocess=True):
        out = super().__call__(ct, postprocess)
        labels = out.labels.copy()
        left = np.argwhere(labels == 2)
        centre = left[np.argmin(((left - left.mean(axis=0)) ** 2).sum(axis=1))]
        zz, yy, xx = np.ogrid[tuple(slice(0, n) for n in labels.shape)]
        ball = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= 4
        labels[ball & (labels == 2)] = 3
        found = np.flatnonzero(labels == 3)
        return SegmenterOutput(labels, out.probabilities, out.low_confidence, nodule_voxels=found,
                               nodule_voxel_scores=np.full(len(found), 0.87),
                               detection_score_meaning="detection_score: how likely a nodule (test)")


def drop_file(page, selector: str, path: Path) -> None:
    """A real drag-and-drop: a DataTransfer holding the file, dropped on the zone."""
    page.evaluate(
        """([selector, name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name));
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
        }""",
        [selector, path.name, base64.b64encode(path.read_bytes()).decode()])


def canvas_pixels(page, plane: str) -> str:
    return page.eval_on_selector(f".pane[data-plane={plane}] canvas", "c => c.toDataURL()")


def slice_label(page, plane: str) -> str:
    return page.inner_text(f".pane[data-plane={plane}] [data-role=label]")


def test_upload_view_change_slices_and_download(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_or_skip()
    model = WithTestNodule()
    expected = lungseg.segment(SAMPLE_CT, model=model)
    nodule = expected.report["nodules"][0]
    app = create_app(WebSettings(model=model, root=tmp_path / "jobs"))
    problems: list[str] = []

    with background_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900}, accept_downloads=True)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(base)
            # (expect() polls without eval, which the page's Content-Security-Policy forbids)
            expect(page.locator("#limit")).to_contain_text("MB")

            # a bad file: a clear message, and the page stays on the upload view
            page.set_input_files("#file-input", files=[{"name": "notes.nii.gz", "mimeType": "application/gzip",
                                                        "buffer": b"these are my notes, not a scan"}])
            page.wait_for_selector("#message.error", state="visible")
            assert "unsupported or unrecognised file content" in page.inner_text("#message")
            assert page.is_visible("#dropzone")

            # upload by drag-and-drop -> result
            drop_file(page, "#dropzone", Path(SAMPLE_CT))
            page.wait_for_selector("body[data-state=viewer]", timeout=60_000)
            assert page.is_hidden("#message")
            right = page.inner_text("#lung-table tbody tr:nth-child(1) td:nth-child(2)")
            assert right == f"{expected.report['lungs']['right']['volume_ml']:,.0f}"
            assert page.inner_text("#study-name") == SAMPLE_CT.name
            assert page.is_enabled("input[data-layer=low]")  # this model gives a low-confidence map

            # slice change with the slider's keyboard and with the mouse wheel
            before_label, before = slice_label(page, "axial"), canvas_pixels(page, "axial")
            page.focus(".pane[data-plane=axial] input[type=range]")
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            z0 = int(before_label.split("/")[0])
            assert slice_label(page, "axial") == f"{z0 + 5} / {expected.labels.shape[0]}"
            assert canvas_pixels(page, "axial") != before
            coronal = slice_label(page, "coronal")
            page.hover(".pane[data-plane=coronal] canvas")
            page.mouse.wheel(0, 120)
            expect(page.locator(".pane[data-plane=coronal] [data-role=label]")).not_to_have_text(coronal)

            # double-click a small pane to make it the large one, and back
            page.dblclick(".pane[data-plane=sagittal] figcaption")
            assert page.get_attribute("#panes > .pane:first-child", "data-plane") == "sagittal"
            page.dblclick(".pane[data-plane=axial] figcaption")
            order = page.eval_on_selector_all("#panes > .pane", "panes => panes.map(p => p.dataset.plane)")
            assert order == ["axial", "coronal", "sagittal"]

            # overlay off and on changes the picture
            with_overlay = canvas_pixels(page, "axial")
            page.uncheck("#overlay")
            assert canvas_pixels(page, "axial") != with_overlay
            page.check("#overlay")

            # the nodule's detection score is in the table, its meaning in the cell's title
            score_cell = "#nodule-table tbody tr:first-child td:last-child"
            assert page.inner_text(score_cell) == "0.87" and "how likely" in page.get_attribute(score_cell, "title")
            # click the nodule -> all panes jump to it
            page.click("#nodule-table tbody tr:first-child")
            cz, cy, cx = (round(c) for c in nodule["centroid_index_zyx"])
            assert slice_label(page, "axial").startswith(f"{cz + 1} /")
            assert slice_label(page, "coronal").startswith(f"{cy + 1} /")
            assert slice_label(page, "sagittal").startswith(f"{cx + 1} /")

            # download the mask and check it is the segmentation, on the input's grid
            with page.expect_download() as info:
                page.click("a[data-download=mask]")
            download = info.value
            assert download.suggested_filename == "sample_ct_mask.nii.gz"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(saved))),
                                          expected.labels_in_file_order)

            # the HU read-out under the mouse, then the picture for the docs
            box = page.locator(".pane[data-plane=axial] canvas").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
            assert "HU" in page.inner_text(".pane[data-plane=axial] [data-role=readout]")
            shot = tmp_path / "web_screenshot.png"
            page.screenshot(path=str(shot))
            if os.environ.get("LUNGSEG_SCREENSHOT"):
                Path(os.environ["LUNGSEG_SCREENSHOT"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, os.environ["LUNGSEG_SCREENSHOT"])
        finally:
            browser.close()
    # the bad upload's 415 is logged by Chromium as a failed resource; anything else is a bug
    assert [p for p in problems if "415" not in p] == [], problems


def test_dicom_zip_upload_offers_the_seg_download(tmp_path):
    """A DICOM upload gets a 'Mask as DICOM-SEG' link beside the NIfTI one; it downloads a SEG."""
    from playwright.sync_api import sync_playwright

    from test_web_formats import write_dicom_zip

    executable = chromium_or_skip()
    scan = write_dicom_zip(tmp_path / "series.zip")
    app = create_app(WebSettings(model="classical", root=tmp_path / "jobs"))
    with background_server(app) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.goto(base)
            page.set_input_files("#file-input", str(scan))
            page.wait_for_selector("body[data-state=viewer]", timeout=60_000)
            link = page.locator("a[data-download=dicom_seg]")
            assert "DICOM-SEG" in link.inner_text() and link.get_attribute("href").endswith("/dicom-seg")
            with page.expect_download() as info:
                link.click()
            assert info.value.suggested_filename == "series_seg.dcm"
            saved = tmp_path / "seg.dcm"
            info.value.save_as(saved)
        finally:
            browser.close()
    import pydicom

    assert pydicom.dcmread(saved).Modality == "SEG"
