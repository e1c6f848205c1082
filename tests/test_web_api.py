"""REST API through FastAPI's TestClient: every accepted format end to end, results, schema, page."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import lungseg  # noqa: E402
from lungseg.inference import ClassicalSegmenter, SegmenterOutput  # noqa: E402
from lungseg.web import WebSettings, create_app  # noqa: E402
from test_web_formats import HAPPY_FORMATS  # noqa: E402


# ---- helpers shared with the other web tests -------------------------------------------------
def wait_for_job(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["status"] in ("done", "error"):
            return status
        assert time.monotonic() < deadline, f"job still {status['status']} after {timeout} s"
        time.sleep(0.05)


def submit(client, data: bytes, name: str):
    return client.post("/api/jobs", files={"file": (name, data, "application/octet-stream")})


def read_mask(data: bytes, suffix: str, tmp_path: Path) -> np.ndarray:
    """A downloaded mask as an array in the file's own axis order."""
    f = tmp_path / f"downloaded{suffix}"
    f.write_bytes(data)
    if suffix == ".png":
        return np.asarray(Image.open(f))[None]
    return sitk.GetArrayFromImage(sitk.ReadImage(str(f)))


class ClassicalWithConfidence:
    """Classical lungs plus a probability map and a low-confidence rim (as a trained model gives)."""

    name = "classical+confidence"
    requires_hu = False

    def __call__(self, ct, postprocess=True):
        from scipy import ndimage as ndi

        labels = ClassicalSegmenter()(ct).labels
        probs = np.stack([(labels == k).astype(np.float32) for k in range(4)])
        lungs = labels > 0
        rim = lungs & ~ndi.binary_erosion(lungs)
        return SegmenterOutput(labels, probs, rim)


class Gate:
    """A segmenter that waits until the test opens the gate (to observe queued/running jobs)."""

    name = "gated"
    requires_hu = False

    def __init__(self):
        self.open = threading.Event()

    def __call__(self, ct, postprocess=True):
        assert self.open.wait(30)
        return ClassicalSegmenter()(ct)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(WebSettings(model="classical", workers=2, root=tmp_path_factory.mktemp("jobs")))
    with TestClient(app) as c:
        yield c


# ---- happy paths -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(HAPPY_FORMATS))
def test_upload_segment_and_download_each_format(client, fmt, tmp_path):
    build, name = HAPPY_FORMATS[fmt]
    scan = build(tmp_path)
    r = submit(client, scan.read_bytes(), name)
    assert r.status_code == 202, r.text
    status = wait_for_job(client, r.json()["job_id"])
    assert status["status"] == "done", status
    expected = lungseg.segment(scan, model="classical")
    is_2d = fmt in ("png", "jpeg")
    extra = {"dicom_seg"} if fmt == "dicom-zip" else set()  # a SEG needs a DICOM series to reference
    assert status["is_2d"] is is_2d and set(status["downloads"]) == {"mask", "report", "preview"} | extra

    mask = client.get(status["downloads"]["mask"])
    assert mask.status_code == 200
    suffix = ".png" if is_2d else ".nii.gz"
    assert f'filename="{Path(name).name.split(".")[0]}_mask{suffix}"' in mask.headers["content-disposition"]
    got = read_mask(mask.content, suffix, tmp_path)
    np.testing.assert_array_equal(got, expected.labels_in_file_order.reshape(got.shape))
    assert np.isin(got, (1, 2)).any()

    report = client.get(status["downloads"]["report"]).json()
    assert report["lungs"] == expected.report["lungs"]
    assert report["input"]["source"] == name  # the user's name, never a server path

    preview = client.get(status["downloads"]["preview"])
    assert preview.headers["content-type"] == "image/png" and preview.content[:4] == b"\x89PNG"
    if not extra:
        assert client.get(status["downloads"]["mask"].replace("/mask", "/dicom-seg")).status_code == 404


def test_dicom_zip_upload_offers_the_mask_as_dicom_seg(client, tmp_path):
    hd = pytest.importorskip("highdicom")
    build, name = HAPPY_FORMATS["dicom-zip"]
    scan = build(tmp_path)
    status = wait_for_job(client, submit(client, scan.read_bytes(), name).json()["job_id"])
    assert status["status"] == "done", status
    url = status["downloads"]["dicom_seg"]
    assert url == f"/api/jobs/{status['job_id']}/dicom-seg"
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    assert 'filename="series_seg.dcm"' in r.headers["content-disposition"]
    (tmp_path / "seg.dcm").write_bytes(r.content)
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    expected = lungseg.segment(scan, model="classical")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == expected.image.meta["series_uid"]
    # the SEG's labels where it has frames equal the NIfTI mask's (same grid, lungseg's codes)
    got = lungseg.io.read_labels(tmp_path / "seg.dcm")
    start = np.rint(expected.image.index_of_points(np.array([got.origin]))[0]).astype(int)
    window = expected.labels[tuple(slice(a, a + n) for a, n in zip(start, got.shape, strict=True))]
    np.testing.assert_array_equal(got.array, window)
    assert int(np.count_nonzero(got.array)) == int(np.count_nonzero(expected.labels))


def test_viewer_volume_matches_the_segmentation(client, tmp_path):
    scan, name = HAPPY_FORMATS["nrrd"][0](tmp_path), "scan.nrrd"
    job = submit(client, scan.read_bytes(), name).json()["job_id"]
    assert wait_for_job(client, job)["status"] == "done"
    info = client.get(f"/api/jobs/{job}/volume").json()
    expected = lungseg.segment(scan, model="classical")
    assert info["shape_zyx"] == list(expected.labels.shape) and info["step_zyx"] == [1, 1, 1]
    assert info["is_hu"] and not info["is_2d"] and not info["has_low_confidence"]
    labels = np.frombuffer(client.get(info["labels_url"]).content, np.uint8).reshape(info["shape_zyx"])
    np.testing.assert_array_equal(labels, expected.labels)  # canonical grid, as the viewer draws it
    ct = np.frombuffer(client.get(info["ct_url"]).content, np.uint8).reshape(info["shape_zyx"])
    lo, hi = info["value_range"]
    hu = lo + ct.astype(np.float32) * (hi - lo) / 255
    inside = (expected.image.array > lo) & (expected.image.array < hi)
    assert np.abs(hu - expected.image.array)[inside].max() <= (hi - lo) / 255  # one grey level
    # without Accept-Encoding: gzip the bytes come uncompressed
    plain = client.get(info["ct_url"], headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == ct.tobytes()


def test_probability_and_low_confidence_maps_when_the_model_gives_them(tmp_path):
    app = create_app(WebSettings(model=ClassicalWithConfidence(), root=tmp_path / "jobs"))
    scan = HAPPY_FORMATS["mha"][0](tmp_path)
    with TestClient(app) as c:
        status = wait_for_job(c, submit(c, scan.read_bytes(), "scan.mha").json()["job_id"])
        assert set(status["downloads"]) == {"mask", "report", "preview", "probabilities", "low_confidence"}
        mask = read_mask(c.get(status["downloads"]["mask"]).content, ".nii.gz", tmp_path)
        prob = read_mask(c.get(status["downloads"]["probabilities"]).content, ".nii.gz", tmp_path)
        np.testing.assert_allclose(prob, np.isin(mask, (1, 2, 3)).astype(np.float32))
        low = read_mask(c.get(status["downloads"]["low_confidence"]).content, ".nii.gz", tmp_path)
        assert low.shape == mask.shape and 0 < low.sum() < (mask > 0).sum() and not low[mask == 0].any()
        info = c.get(f"/api/jobs/{status['job_id']}/volume").json()
        packed = np.frombuffer(c.get(info["labels_url"]).content, np.uint8)
        assert info["has_low_confidence"] and (packed & info["low_confidence_bit"]).sum() == low.sum() * 4


def test_models_without_probabilities_answer_404_with_a_message(client, tmp_path):
    job = submit(client, HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes(), "scan.nrrd").json()["job_id"]
    wait_for_job(client, job)
    for what in ("probabilities", "low-confidence"):
        r = client.get(f"/api/jobs/{job}/{what}")
        assert r.status_code == 404 and "model 'classical' gives no" in r.json()["detail"]


# ---- job states ------------------------------------------------------------------------------
def test_queue_positions_and_results_not_ready(tmp_path):
    gate = Gate()
    app = create_app(WebSettings(model=gate, workers=1, root=tmp_path / "jobs"))
    data = HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes()
    with TestClient(app) as c:
        ids = [submit(c, data, f"scan{k}.nrrd").json()["job_id"] for k in range(3)]
        time.sleep(0.2)
        states = [c.get(f"/api/jobs/{i}").json() for i in ids]
        assert [s["status"] for s in states] == ["running", "queued", "queued"]
        assert [s["queue_position"] for s in states] == [None, 0, 1]
        r = c.get(f"/api/jobs/{ids[1]}/mask")
        assert r.status_code == 409 and "not ready" in r.json()["detail"]
        assert c.delete(f"/api/jobs/{ids[0]}").status_code == 409  # still running
        gate.open.set()
        assert all(wait_for_job(c, i)["status"] == "done" for i in ids)


def test_unknown_jobs_and_deleted_jobs_are_404(client, tmp_path):
    for job in ("0" * 32, "not-a-job", "A" * 32):
        r = client.get(f"/api/jobs/{job}")
        assert r.status_code == 404 and "unknown job" in r.json()["detail"]
    job = submit(client, HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes(), "scan.nrrd").json()["job_id"]
    wait_for_job(client, job)
    job_dir = client.app.state.store.get(job).dir
    assert job_dir.exists()
    assert client.delete(f"/api/jobs/{job}").status_code == 204
    assert not job_dir.exists() and client.get(f"/api/jobs/{job}/mask").status_code == 404


def test_unexpected_errors_show_no_details(tmp_path):
    class Broken:
        name, requires_hu = "broken", False

        def __call__(self, ct, postprocess=True):
            raise RuntimeError("secret detail at /srv/internal/model.py line 3")

    app = create_app(WebSettings(model=Broken(), root=tmp_path / "jobs"))
    with TestClient(app, raise_server_exceptions=False) as c:
        status = wait_for_job(c, submit(c, HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes(), "a.nrrd").json()["job_id"])
        assert status["status"] == "error" and "internal error" in status["error"]
        assert "secret" not in status["error"] and "/srv" not in status["error"]
        r = c.get(f"/api/jobs/{status['job_id']}/mask")
        assert r.status_code == 409 and "secret" not in r.text



def test_a_bug_in_a_handler_gives_json_500_without_a_trace(tmp_path):
    app = create_app(WebSettings(model="classical", root=tmp_path / "jobs"))
    with TestClient(app, raise_server_exceptions=False) as c:
        job = wait_for_job(c, submit(c, HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes(), "a.nrrd").json()["job_id"])

        def explode(job):
            raise KeyError("/srv/private/path")

        app.state.store.report = explode
        r = c.get(f"/api/jobs/{job['job_id']}/report")
        assert r.status_code == 500
        assert r.json() == {"detail": "internal server error (details are in the server log)"}
        assert "Traceback" not in r.text and "/srv" not in r.text


# ---- schema and page -------------------------------------------------------------------------
def test_openapi_documents_every_endpoint_with_models(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/health", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/mask",
                 "/api/jobs/{job_id}/report", "/api/jobs/{job_id}/preview.png", "/api/jobs/{job_id}/probabilities",
                 "/api/jobs/{job_id}/low-confidence", "/api/jobs/{job_id}/volume", "/api/jobs/{job_id}/volume/{layer}"):
        assert path in paths, path
    post = paths["/api/jobs"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"202", "413", "415"} <= set(post["responses"])
    ref = lambda p, code="200": paths[p]["get"]["responses"][code]["content"]["application/json"]["schema"]["$ref"]  # noqa: E731
    assert ref("/api/jobs/{job_id}").endswith("/JobStatus")
    assert ref("/api/jobs/{job_id}/report").endswith("/Report")
    assert ref("/api/jobs/{job_id}/volume").endswith("/VolumeInfo")
    assert ref("/api/jobs/{job_id}", "404").endswith("/ErrorMessage")
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn." not in docs.text  # works offline
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_page_and_its_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/app.js", "/static/style.css"} <= set(assets)
    texts = [page.text]
    for asset in assets + ["/static/viewer.js", "/static/api.js", "/static/results.js"]:
        r = client.get(asset)
        assert r.status_code == 200, asset
        texts.append(r.text)
    for text in texts:  # no CDN, no external fonts or scripts
        assert not re.search(r"(?:src|href)=\"https?://|url\(https?://|import .* from \"https?://", text)


def test_health_reports_limits(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["model"] == "classical" and h["workers"] == 2
    assert h["max_upload_mb"] == 1024 and "dicom-zip" in h["accepted_formats"]
