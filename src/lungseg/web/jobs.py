"""Background jobs: a thread pool runs lungseg.segment() on each upload; results live in a
per-job folder that a janitor deletes after a set time. Everything is in-process and in memory:
restarting the server forgets all jobs (and removes their files)."""
from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LungsegError
from .viewer import write_viewer_data

log = logging.getLogger("lungseg.web")


OUTPUT_FILES = {  # name in the API -> file in the job folder (mask depends on 2D/3D)
    "report": "report.json",
    "preview": "preview.png",
    "probabilities": "probabilities.nii.gz",
    "low_confidence": "low_confidence.nii.gz",
    "dicom_seg": "mask.dcm",  # DICOM uploads only: the mask as a DICOM-SEG referencing the series
}


@dataclass
class Job:
    id: str
    filename: str  # the name the browser sent, sanitised; for display and download names only
    dir: Path
    status: str = "queued"  # queued -> running -> done | error
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # API name -> file name in dir
    viewer: dict | None = None
    model: str | None = None
    is_2d: bool = False
    preview_done: threading.Event = field(default_factory=threading.Event)  # drawn after status 'done'
    preview_failed: bool = False

    @property
    def stem(self) -> str:
        name = self.filename
        for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".zip", ".png", ".jpg", ".jpeg"):
            if name.lower().endswith(ext):
                return name[: -len(ext)] or "scan"
        return name


class JobStore:
    def __init__(self, model="default", device: str = "cpu", workers: int = 1, ttl_minutes: float = 60.0,
                 max_pending: int = 32, root: Path | None = None):
        self.model = model
        self.device = device
        self.ttl_s = ttl_minutes * 60.0
        self.max_pending = max_pending
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="lungseg-web-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lungseg-job")
        self._stop = threading.Event()
        self._janitor = threading.Thread(target=self._janitor_loop, name="lungseg-janitor", daemon=True)
        self._janitor.start()

    # ---- life cycle ---------------------------------------------------------------------------
    def new_job(self, filename: str) -> Job:
        """A job folder to receive the upload into; the job is not queued until submit()."""
        with self._lock:
            pending = sum(j.status in ("queued", "running") for j in self._jobs.values())
        if pending >= self.max_pending:
            raise LungsegError(f"the server is busy ({pending} scans waiting); try again in a minute")
        job_id = uuid.uuid4().hex
        job_dir = self.root / job_id
        job_dir.mkdir()
        return Job(job_id, filename, job_dir)

    def submit(self, job: Job, input_path: Path) -> None:
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, input_path)

    def discard(self, job: Job) -> None:
        """Drop a job that never ran (its upload was refused)."""
        shutil.rmtree(job.dir, ignore_errors=True)

    def forget(self, job: Job) -> None:
        """Delete a finished job and its files now."""
        job.preview_done.wait(120)  # the preview writer would otherwise re-create the folder
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.dir, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def queue_position(self, job: Job) -> int:
        """How many queued jobs were submitted before this one (0 = next to run)."""
        with self._lock:
            return sum(j.status == "queued" and j.created < job.created for j in self._jobs.values())

    def shutdown(self) -> None:
        """Drop queued jobs, let running ones finish (they write into the folder), then clean up."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- the work -----------------------------------------------------------------------------
    def _run(self, job: Job, input_path: Path) -> None:
        job.status, job.started = "running", time.time()
        result, error = None, None
        try:
            result = self._segment(job, input_path)
        except LungsegError as e:
            error = scrub_paths(str(e), input_path, job.filename)
        except zipfile.BadZipFile as e:  # a member that lies about its size or checksum
            error = f"the zip archive is damaged ({e})"
        except MemoryError:
            error = "the scan is too large for this server's memory"
        except Exception:  # a bug: keep details in the server log, not in the response
            log.exception("job %s failed", job.id)
            error = "internal error while segmenting this scan (details are in the server log)"
        finally:
            input_path.unlink(missing_ok=True)  # the upload is not kept once segmented
            job.finished = time.time()
        if result is None:
            job.error, job.status = error, "error"
            job.preview_done.set()
            return
        job.status = "done"  # the viewer can open now; the preview follows (seconds on a big scan)
        self._draw_preview(job, result)

    def _segment(self, job: Job, input_path: Path):
        from ..api import segment

        result = segment(input_path, model=self.model, device=self.device)
        result.image.source = job.filename  # shown in the preview title; no server paths
        result.report["input"]["source"] = job.filename
        job.model = result.report.get("model")
        job.is_2d = bool(result.image.is_2d or result.labels.shape[0] == 1)
        out = job.dir
        mask_name = "mask.png" if job.is_2d else "mask.nii.gz"
        result.save(out / mask_name)
        outputs = {"mask": mask_name, "report": OUTPUT_FILES["report"], "preview": OUTPUT_FILES["preview"]}
        result.save_report(out / outputs["report"])
        if self._save_dicom_seg(job, result):
            outputs["dicom_seg"] = OUTPUT_FILES["dicom_seg"]
        if result.probabilities is not None:
            result.save_probabilities(out / OUTPUT_FILES["probabilities"])
            outputs["probabilities"] = OUTPUT_FILES["probabilities"]
        if result.low_confidence is not None:
            from ..io import write_labels

            write_labels(result.low_confidence.astype("uint8"), result.image, out / OUTPUT_FILES["low_confidence"])
            outputs["low_confidence"] = OUTPUT_FILES["low_confidence"]
        job.viewer = write_viewer_data(result.image, result.labels, result.low_confidence, out)
        job.outputs = outputs
        return result

    def _save_dicom_seg(self, job: Job, result) -> bool:
        """The SEG beside the NIfTI mask for a DICOM upload; a series that cannot carry one (e.g.
        multi-frame CT) still gives its other results, and the server log says why."""
        from ..io.dicom_seg import DICOM_FORMATS

        if result.image.format not in DICOM_FORMATS:
            return False
        try:
            result.save(job.dir / OUTPUT_FILES["dicom_seg"], format="dicom-seg")
        except LungsegError as e:
            log.warning("job %s: no DICOM-SEG: %s", job.id, e)
            return False
        return True

    def _draw_preview(self, job: Job, result) -> None:
        try:
            result.save_preview(job.dir / OUTPUT_FILES["preview"])  # thread-safe (no pyplot)
        except Exception:
            log.exception("preview of job %s failed", job.id)
            job.preview_failed = True
        finally:
            job.preview_done.set()

    def report(self, job: Job) -> dict:
        return json.loads((job.dir / job.outputs["report"]).read_text())

    # ---- clean-up -----------------------------------------------------------------------------
    def _janitor_loop(self) -> None:
        interval = max(1.0, min(60.0, self.ttl_s / 4))
        while not self._stop.wait(interval):
            self.remove_expired()

    def remove_expired(self, now: float | None = None) -> list[str]:
        """Forget finished jobs older than the TTL and delete their folders."""
        now = time.time() if now is None else now
        with self._lock:
            expired = [j for j in self._jobs.values()
                       if j.finished is not None and j.preview_done.is_set() and now - j.finished > self.ttl_s]
            for j in expired:
                del self._jobs[j.id]
        for j in expired:
            shutil.rmtree(j.dir, ignore_errors=True)
        return [j.id for j in expired]


_TEMP_DIR = re.compile(r"lungseg-zip-\w+")
_ABS_PATH = re.compile(r"(?<![\w.\-])(?:[A-Za-z]:)?(?:[\\/][\w.\-]+)+")


def scrub_paths(message: str, input_path: Path, filename: str) -> str:
    """Readers name the file they fail on; users should see their own file name, never our paths."""
    message = message.replace(str(input_path), filename)
    message = _ABS_PATH.sub(lambda m: re.split(r"[\\/]", m.group(0))[-1], message)
    return _TEMP_DIR.sub(filename, message)  # a zip's scratch folder stands for the zip
