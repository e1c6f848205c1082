"""Every kind of bad upload gets a clear JSON error and leaves nothing behind on the server."""
from __future__ import annotations

import gzip
import io
import struct
import zipfile

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from lungseg.web import WebSettings, create_app  # noqa: E402
from test_web_api import Gate, submit, wait_for_job  # noqa: E402
from test_web_formats import HAPPY_FORMATS, write_picture, write_rgb_photo, write_volume  # noqa: E402

LIMIT_MB = 1.0
DICOM_LIKE = bytes(128) + b"DICM" + bytes(400)  # enough for the content check to call it DICOM


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(WebSettings(model="classical", max_upload_mb=LIMIT_MB, root=tmp_path_factory.mktemp("jobs")))
    with TestClient(app) as c:
        yield c


def job_folders(client) -> list:
    store = client.app.state.store
    return [p for p in store.root.iterdir() if store.get(p.name) is None]


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert words in detail and "Traceback" not in detail and "/tmp" not in detail


def failed_job(client, data: bytes, name: str) -> str:
    """Accepted by its header, refused by the reader: the job reports why, in the user's terms."""
    r = submit(client, data, name)
    assert r.status_code == 202, r.text
    status = wait_for_job(client, r.json()["job_id"])
    assert status["status"] == "error", status
    assert "/tmp" not in status["error"] and "input." not in status["error"] and "Traceback" not in status["error"]
    return status["error"]


def zip_bytes(members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, data)
    return buf.getvalue()


def with_declared_sizes(data: bytes, size: int) -> bytes:
    """Rewrite every central-directory 'uncompressed size' to `size` (what a crafted bomb does)."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos != -1:
        out[pos + 24:pos + 28] = struct.pack("<I", size)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


# ---- size ------------------------------------------------------------------------------------
def test_too_large_upload_is_413_before_reading_it(client):
    refused(submit(client, b"\0" * int(2.5 * 1024**2), "big.nii.gz"), 413, "upload limit of 1 MB")
    assert job_folders(client) == []


def test_too_large_streamed_upload_without_length_is_cut_off(client):
    boundary = "lungsegboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.nrrd\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()

    def body():  # a generator: sent chunked, so no Content-Length to check up front
        yield head + b"NRRD0004\n"
        for _ in range(40):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/api/jobs", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    refused(r, 413, "upload limit")
    assert job_folders(client) == []


# ---- content that is not what it claims ------------------------------------------------------
@pytest.mark.parametrize("data", [
    b"<!doctype html><html><body>hello</body></html>",
    b"\x7fELF\x02\x01\x01\x00" + bytes(400),
    b"%PDF-1.7\n" + bytes(400),
    gzip.compress(b"not an image at all " * 100),
], ids=["html", "elf", "pdf", "gzip-text"])
def test_other_content_named_like_a_scan_is_415(client, data):
    refused(submit(client, data, "scan.nii.gz"), 415, "accepted: NIfTI")


def test_the_name_does_not_decide_the_format(client, tmp_path):
    png = write_picture(tmp_path / "slice.png").read_bytes()
    status = wait_for_job(client, submit(client, png, "scan.nii.gz").json()["job_id"])
    assert status["status"] == "done" and status["is_2d"]  # read as the PNG it is
    assert client.get(status["downloads"]["mask"]).content[:4] == b"\x89PNG"


def test_empty_file_and_missing_field(client):
    refused(submit(client, b"", "scan.nrrd"), 400, "empty")
    refused(client.post("/api/jobs", data={"other": "x"}), 422, "multipart/form-data field 'file'")


def test_single_dicom_file_asks_for_a_zip(client):
    refused(submit(client, DICOM_LIKE, "IM0001.dcm"), 415, "zip the whole series")


def test_detached_headers_cannot_read_server_files(client):
    nrrd = b"NRRD0004\ntype: short\ndimension: 3\nsizes: 64 64 2\nencoding: raw\ndata file: /etc/passwd\n\n"
    refused(submit(client, nrrd, "scan.nrrd"), 415, "separate data file")
    mha = b"ObjectType = Image\nNDims = 3\nDimSize = 64 64 2\nElementType = MET_UCHAR\nElementDataFile = /etc/passwd\n"
    refused(submit(client, mha, "scan.mha"), 415, "separate data file")


# ---- zips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../evil.dcm", "/etc/cron.d/evil.dcm", "series/../../evil.dcm", "C:/evil.dcm"])
def test_zip_with_path_traversal_is_refused(client, name):
    data = zip_bytes({"series/IM0001.dcm": DICOM_LIKE, name: DICOM_LIKE})
    refused(submit(client, data, "series.zip"), 400, "points outside the archive")
    assert job_folders(client) == []


def test_zip_with_a_symbolic_link_is_refused(client):
    data = zip_bytes({"series/IM0001.dcm": DICOM_LIKE, "series/link.dcm": b"/etc/passwd"}, symlinks=("series/link.dcm",))
    refused(submit(client, data, "series.zip"), 400, "symbolic link")


def test_zip_bomb_by_compression_ratio_is_refused(client):
    data = zip_bytes({"series/IM0001.dcm": DICOM_LIKE, "series/IM0002.dcm": DICOM_LIKE + bytes(8 * 1024**2)})
    assert len(data) < LIMIT_MB * 1024**2  # small on the wire ...
    refused(submit(client, data, "series.zip"), 413, "zip bomb")  # ... ~1000-fold when unpacked


def test_zip_bomb_by_declared_size_is_refused(client):
    data = with_declared_sizes(zip_bytes({f"series/IM{k}.dcm": DICOM_LIKE for k in range(3)}), 0xF0000000)
    refused(submit(client, data, "series.zip"), 413, "would unpack to")


def test_zip_without_dicom_and_broken_zips(client, tmp_path):
    refused(submit(client, zip_bytes({"readme.txt": b"hello" * 50}), "series.zip"), 415, "no DICOM files")
    good = HAPPY_FORMATS["dicom-zip"][0](tmp_path).read_bytes()
    refused(submit(client, good[: len(good) // 2], "series.zip"), 400, "damaged or truncated")


def test_zip_member_that_lies_about_its_size_fails_cleanly(client):
    honest = zip_bytes({"series/IM0001.dcm": DICOM_LIKE, "series/IM0002.dcm": DICOM_LIKE + bytes(5000)})
    lying = with_declared_sizes(honest, len(DICOM_LIKE))  # second member claims to be smaller
    error = failed_job(client, lying, "series.zip")
    assert "zip" in error and "damaged" in error or "larger than its header" in error


# ---- files that look right but are not readable scans ------------------------------------------
def test_truncated_nifti_fails_with_a_clear_message(client, tmp_path):
    data = write_volume(tmp_path / "scan.nii.gz").read_bytes()
    error = failed_job(client, data[: len(data) // 2], "my scan.nii.gz")
    assert "truncated" in error and "my scan.nii.gz" in error


def test_truncated_raw_nifti_and_nrrd(client, tmp_path):
    data = write_volume(tmp_path / "scan.nii").read_bytes()
    assert "truncated" in failed_job(client, data[:20000], "scan.nii")
    nrrd = HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes()
    assert "cannot read" in failed_job(client, nrrd[: len(nrrd) // 3], "scan.nrrd")


def test_rgb_photo_is_refused_as_not_a_ct(client, tmp_path):
    error = failed_job(client, write_rgb_photo(tmp_path / "photo.jpg").read_bytes(), "holiday.jpg")
    assert "colour (RGB) picture" in error and "holiday.jpg" in error


def test_busy_server_answers_503(tmp_path):
    gate = Gate()
    app = create_app(WebSettings(model=gate, max_pending=1, root=tmp_path / "jobs"))
    data = HAPPY_FORMATS["nrrd"][0](tmp_path).read_bytes()
    with TestClient(app) as c:
        first = submit(c, data, "a.nrrd")
        assert first.status_code == 202
        refused(submit(c, data, "b.nrrd"), 503, "busy")
        gate.open.set()
        assert wait_for_job(c, first.json()["job_id"])["status"] == "done"
