"""Eight users upload at the same moment to a live server; every one gets their own, correct mask."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import lungseg  # noqa: E402
from lungseg.web import WebSettings, create_app  # noqa: E402
from lungseg.web.server import background_server  # noqa: E402
from test_web_api import read_mask  # noqa: E402
from test_web_formats import sample_image, write_dicom_zip, write_volume  # noqa: E402

N_USERS = 8


def distinct_scans(tmp_path) -> list:
    """Eight different scans (cropped differently, several formats), so a mix-up would show."""
    image = sample_image()
    scans = []
    for k in range(N_USERS):
        crop = image[:, :, 2 * k: image.GetDepth() - k]  # different slice ranges -> different masks
        suffix = [".nrrd", ".nii.gz", ".mha", ".zip"][k % 4]
        path = tmp_path / f"user{k}{suffix}"
        (write_dicom_zip if suffix == ".zip" else write_volume)(path, crop)
        scans.append(path)
    return scans


def test_eight_simultaneous_uploads_all_complete_correctly(tmp_path):
    scans = distinct_scans(tmp_path)
    app = create_app(WebSettings(model="classical", workers=2, root=tmp_path / "jobs"))
    results: dict[int, object] = {}
    start = threading.Barrier(N_USERS)

    def user(k: int, base: str) -> None:
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                start.wait()  # everyone presses "upload" together
                r = client.post("/api/jobs", files={"file": (scans[k].name, scans[k].read_bytes())})
                assert r.status_code == 202, r.text
                job = r.json()["job_id"]
                deadline = time.monotonic() + 90
                while (status := client.get(f"/api/jobs/{job}").json())["status"] not in ("done", "error"):
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                assert status["status"] == "done", status
                assert status["filename"] == scans[k].name
                results[k] = (client.get(status["downloads"]["mask"]).content,
                              client.get(status["downloads"]["report"]).json())
        except BaseException as e:  # reported by the main thread
            results[k] = e

    with background_server(app) as base:
        threads = [threading.Thread(target=user, args=(k, base)) for k in range(N_USERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    errors = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    assert not errors, errors
    assert len(results) == N_USERS
    for k, scan in enumerate(scans):
        mask_bytes, report = results[k]
        expected = lungseg.segment(scan, model="classical")
        got = read_mask(mask_bytes, ".nii.gz", tmp_path)
        np.testing.assert_array_equal(got, expected.labels_in_file_order)
        assert report["input"]["source"] == scan.name
        assert report["lungs"] == expected.report["lungs"]
    assert not any((tmp_path / "jobs").glob("*/input*"))  # uploads are gone once segmented
