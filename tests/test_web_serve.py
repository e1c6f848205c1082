"""`lungseg serve` as a user runs it: a real process, localhost by default, clean exit on Ctrl+C."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from lungseg.cli import build_parser  # noqa: E402
from lungseg.samples import SAMPLE_CT  # noqa: E402


def test_serve_binds_to_localhost_by_default():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_process_segments_and_cleans_up_on_ctrl_c(tmp_path):
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the server keeps its job folders
    proc = subprocess.Popen([sys.executable, "-m", "lungseg", "serve", "--port", str(port), "--model", "classical",
                             "--max-upload-mb", "5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health["max_upload_mb"] == 5
        job = httpx.post(f"{base}/api/jobs", files={"file": ("a.nrrd", SAMPLE_CT.read_bytes())}).json()["job_id"]
        while (status := httpx.get(f"{base}/api/jobs/{job}").json())["status"] not in ("done", "error"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["status"] == "done"
        assert any(tmp_path.glob("lungseg-web-*/*/mask.nii.gz"))
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "serving on http://127.0.0.1:" in out and "Traceback" not in out
    assert not list(tmp_path.glob("lungseg-web-*"))  # uploads and results are gone
