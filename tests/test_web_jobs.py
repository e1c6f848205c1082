"""The job store: background runs, clean-up after the time limit, no server paths in errors."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from lungseg.samples import SAMPLE_CT  # noqa: E402
from lungseg.web.jobs import JobStore, scrub_paths  # noqa: E402


def run_one(store: JobStore, src: Path = SAMPLE_CT, name: str = "scan.nrrd"):
    job = store.new_job(name)
    target = job.dir / "input.nrrd"
    target.write_bytes(src.read_bytes())
    store.submit(job, target)
    deadline = time.monotonic() + 60
    while job.status not in ("done", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.preview_done.wait(30)  # the preview is drawn just after the job is done
    return job


def test_a_job_writes_its_results_and_drops_the_upload(tmp_path):
    """The viewer files come first (status 'done'), the preview right after."""
    store = JobStore(model="classical", root=tmp_path)
    try:
        job = run_one(store)
        assert job.status == "done" and job.error is None
        files = {p.name for p in job.dir.iterdir()}
        assert {"mask.nii.gz", "report.json", "preview.png", "viewer_ct.u8.gz", "viewer_labels.u8.gz"} <= files
        assert "input.nrrd" not in files  # the scan is not kept once segmented
        assert store.report(job)["input"]["source"] == "scan.nrrd"
    finally:
        store.shutdown()


def test_expired_jobs_are_forgotten_and_their_files_deleted(tmp_path):
    store = JobStore(model="classical", ttl_minutes=10, root=tmp_path)
    try:
        job = run_one(store)
        assert store.remove_expired(now=job.finished + 9 * 60) == []
        assert store.remove_expired(now=job.finished + 11 * 60) == [job.id]
        assert store.get(job.id) is None and not job.dir.exists()
    finally:
        store.shutdown()


def test_the_janitor_runs_by_itself(tmp_path):
    store = JobStore(model="classical", ttl_minutes=0.5 / 60, root=tmp_path)  # half a second
    try:
        job = run_one(store)
        deadline = time.monotonic() + 10
        while job.dir.exists():
            assert time.monotonic() < deadline, "janitor did not remove the job folder"
            time.sleep(0.1)
        assert store.get(job.id) is None
    finally:
        store.shutdown()


def test_shutdown_removes_its_own_temporary_folder():
    store = JobStore(model="classical")
    run_one(store)
    root = store.root
    assert any(root.iterdir())
    store.shutdown()
    assert not root.exists()


def test_error_messages_name_the_users_file_not_server_paths():
    inp = Path("/tmp/lungseg-web-abc/0123/input.nii.gz")
    assert scrub_paths(f"cannot read image {inp}: file is truncated", inp, "chest.nii.gz") == \
        "cannot read image chest.nii.gz: file is truncated"
    assert scrub_paths("no DICOM series found in folder /tmp/lungseg-zip-x1y2", inp, "ct.zip") == \
        "no DICOM series found in folder ct.zip"
    assert scrub_paths("window L-600/W1500 and 3/4 slices", inp, "a") == "window L-600/W1500 and 3/4 slices"
