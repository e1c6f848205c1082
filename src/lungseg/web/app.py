"""The FastAPI app: upload a scan, poll the job, fetch results; GET / serves the viewer page.

The app holds no segmentation logic: each job calls lungseg.segment(), like the CLI does.
"""
from __future__ import annotations

import contextlib
import gzip
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import LungsegError
from .jobs import Job, JobStore
from .schemas import ErrorMessage, Health, JobCreated, JobStatus, Report, VolumeInfo
from .security import ACCEPTED, UploadLimitMiddleware, UploadRejected, detect_format, safe_filename, too_large_message
from .viewer import CT_FILE, LABELS_FILE

log = logging.getLogger("lungseg.web")
STATIC = Path(__file__).parent / "static"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1 << 20

SECURITY_HEADERS = {
    # the page loads only its own files: no CDN, no inline script
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN and start it inline;
# only those two developer pages get a policy that allows it. The viewer page never does.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; worker-src 'self' blob:; "
            "connect-src 'self'; frame-ancestors 'none'")


@dataclass
class WebSettings:
    model: object = "default"  # anything lungseg.segment() accepts as model
    device: str = "cpu"
    workers: int = 1
    max_upload_mb: float = 1024.0
    ttl_minutes: float = 60.0
    max_pending: int = 32
    root: Path | None = None  # job folders (default: a fresh temporary folder)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024**2)


def _errors(*codes: int) -> dict:
    return {c: {"model": ErrorMessage} for c in codes}


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    store = JobStore(model=settings.model, device=settings.device, workers=settings.workers,
                     ttl_minutes=settings.ttl_minutes, max_pending=settings.max_pending, root=settings.root)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.shutdown()

    swagger_assets = _swagger_assets()
    app = FastAPI(
        title="lungseg", version=__version__, lifespan=lifespan,
        docs_url=None if swagger_assets else "/docs",  # offline: served below from the local bundle
        description="Right/left lung and nodule segmentation of chest CT. Upload a scan "
                    f"({ACCEPTED}); a background job segments it; poll the job, then fetch the mask, "
                    "report, preview and viewer volumes. Results are deleted "
                    f"{settings.ttl_minutes:g} minutes after the job finishes.")
    app.state.settings, app.state.store = settings, store
    app.add_middleware(UploadLimitMiddleware, max_bytes=settings.max_upload_bytes)
    _add_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path in ("/docs", app.redoc_url):
            response.headers["Content-Security-Policy"] = DOCS_CSP
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    model_name = settings.model if isinstance(settings.model, str) else getattr(settings.model, "name", "custom")

    @app.get("/api/health", response_model=Health, tags=["server"])
    def health() -> Health:
        """Server status and limits (the page reads the upload limit from here)."""
        return Health(version=__version__, model=str(model_name), workers=settings.workers,
                      max_upload_mb=settings.max_upload_mb, result_ttl_minutes=settings.ttl_minutes,
                      accepted_formats=["nifti", "nrrd", "mha", "dicom-zip", "png", "jpeg"])

    @app.post("/api/jobs", response_model=JobCreated, status_code=202, tags=["jobs"],
              responses=_errors(400, 413, 415, 503))
    def submit(request: Request, file: UploadFile = File(..., description=f"the scan: {ACCEPTED}")) -> JobCreated:
        """Upload a scan and queue it for segmentation. The format is detected from the file's
        content, not its name; files over the upload limit are refused with 413."""
        try:
            job = store.new_job(safe_filename(file.filename))
        except LungsegError as e:
            raise HTTPException(503, str(e)) from None
        try:
            input_path = _receive(file, job, settings.max_upload_bytes)
        except UploadRejected as e:
            store.discard(job)
            raise HTTPException(e.status, e.message) from None
        except BaseException:
            store.discard(job)
            raise
        store.submit(job, input_path)
        return JobCreated(job_id=job.id, status_url=f"/api/jobs/{job.id}")

    @app.get("/api/jobs/{job_id}", response_model=JobStatus, tags=["jobs"], responses=_errors(404))
    def job_status(job_id: str) -> JobStatus:
        """Poll a job: queued (with its place in the queue), running, done (with download URLs) or error."""
        job = _job(store, job_id)
        downloads = {}
        if job.status == "done":
            downloads = {name: f"/api/jobs/{job.id}/{_ROUTE[name]}" for name in job.outputs}
        return JobStatus(job_id=job.id, filename=job.filename, status=job.status, error=job.error,
                         queue_position=store.queue_position(job) if job.status == "queued" else None,
                         elapsed_s=round((job.finished or time.time()) - job.created, 2),
                         model=job.model, is_2d=job.is_2d if job.status == "done" else None, downloads=downloads)

    @app.delete("/api/jobs/{job_id}", status_code=204, tags=["jobs"], responses=_errors(404, 409))
    def delete_job(job_id: str) -> Response:
        """Delete a finished job's files now instead of waiting for the time limit."""
        job = _job(store, job_id)
        if job.status in ("queued", "running"):
            raise HTTPException(409, "the job is still running; delete it when it has finished")
        store.forget(job)
        return Response(status_code=204)

    @app.get("/api/jobs/{job_id}/mask", tags=["results"], responses={
        200: {"content": {"application/gzip": {}, "image/png": {}},
              "description": "label map on the input's grid (NIfTI; PNG for a 2D input): "
                             "0 background, 1 right lung, 2 left lung, 3 nodule"}, **_errors(404, 409)})
    def mask(job_id: str) -> FileResponse:
        job = _done(store, job_id)
        name = job.outputs["mask"]
        media = "image/png" if name.endswith(".png") else "application/gzip"
        return _download(job, "mask", media, f"{job.stem}_mask{name[4:]}")

    @app.get("/api/jobs/{job_id}/dicom-seg", tags=["results"], responses={
        200: {"content": {"application/dicom": {}},
              "description": "DICOM uploads only: the mask as one DICOM Segmentation (BINARY; segments 1 right lung, "
                             "2 left lung, 3 nodule, SNOMED CT coded) referencing the uploaded series"},
        **_errors(404, 409)})
    def dicom_seg(job_id: str) -> FileResponse:
        job = _done(store, job_id)
        if "dicom_seg" not in job.outputs:
            raise HTTPException(404, "a DICOM-SEG is written for DICOM uploads only (it references the series)")
        return _download(job, "dicom_seg", "application/dicom", f"{job.stem}_seg.dcm")

    @app.get("/api/jobs/{job_id}/report", response_model=Report, tags=["results"], responses=_errors(404, 409))
    def report(job_id: str) -> JSONResponse:
        """Lung volumes, mean HU, emphysema index, nodules and warnings."""
        job = _done(store, job_id)
        return JSONResponse(store.report(job), headers={
            "Content-Disposition": f'inline; filename="{job.stem}_report.json"'})

    @app.get("/api/jobs/{job_id}/preview.png", tags=["results"], responses={
        200: {"content": {"image/png": {}}, "description": "axial/coronal/sagittal overlay"}, **_errors(404, 409, 503)})
    def preview(job_id: str) -> FileResponse:
        job = _done(store, job_id)
        if not job.preview_done.wait(timeout=120):  # drawn just after the job turned 'done'
            raise HTTPException(503, "the preview is still being drawn; try again in a moment")
        if job.preview_failed:
            raise HTTPException(404, "the preview could not be drawn for this scan (see the server log)")
        return _download(job, "preview", "image/png", f"{job.stem}_preview.png", inline=True)

    @app.get("/api/jobs/{job_id}/probabilities", tags=["results"], responses={
        200: {"content": {"application/gzip": {}}, "description": "lung probability (NIfTI float32)"},
        **_errors(404, 409)})
    def probabilities(job_id: str) -> FileResponse:
        return _optional_map(_done(store, job_id), "probabilities", "probability map")

    @app.get("/api/jobs/{job_id}/low-confidence", tags=["results"], responses={
        200: {"content": {"application/gzip": {}}, "description": "low-confidence voxels (NIfTI, 1 = low)"},
        **_errors(404, 409)})
    def low_confidence(job_id: str) -> FileResponse:
        return _optional_map(_done(store, job_id), "low_confidence", "low-confidence map")

    @app.get("/api/jobs/{job_id}/volume", response_model=VolumeInfo, tags=["viewer"], responses=_errors(404, 409))
    def volume(job_id: str) -> VolumeInfo:
        """Describe the viewer volumes (CT as windowable bytes, packed labels) the page slices itself."""
        job = _done(store, job_id)
        return VolumeInfo(**job.viewer, ct_url=f"/api/jobs/{job.id}/volume/ct",
                          labels_url=f"/api/jobs/{job.id}/volume/labels")

    @app.get("/api/jobs/{job_id}/volume/{layer}", tags=["viewer"], responses={
        200: {"content": {"application/octet-stream": {}}, "description": "uint8 (z, y, x) bytes, see /volume"},
        **_errors(404, 409)})
    def volume_layer(job_id: str, layer: Literal["ct", "labels"], request: Request) -> Response:
        job = _done(store, job_id)
        path = job.dir / {"ct": CT_FILE, "labels": LABELS_FILE}[layer]
        if "gzip" in request.headers.get("accept-encoding", ""):
            return FileResponse(path, media_type="application/octet-stream", headers={"Content-Encoding": "gzip"})
        return Response(gzip.decompress(path.read_bytes()), media_type="application/octet-stream")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if swagger_assets:
        app.mount("/docs-assets", StaticFiles(directory=swagger_assets), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def docs() -> Response:
            from fastapi.openapi.docs import get_swagger_ui_html

            return get_swagger_ui_html(openapi_url=app.openapi_url, title="lungseg API",
                                       swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                       swagger_css_url="/docs-assets/swagger-ui.css",
                                       swagger_favicon_url="/docs-assets/favicon.png")
    return app


def _swagger_assets() -> str | None:
    """The Swagger UI 5 files bundled by the fastapi-offline package, so /docs works with no
    internet (FastAPI's default page loads them from a CDN); None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    return str(static) if (static / "swagger-ui-bundle.js").exists() else None


_ROUTE = {"mask": "mask", "report": "report", "preview": "preview.png", "probabilities": "probabilities",
          "low_confidence": "low-confidence", "dicom_seg": "dicom-seg"}


def _receive(file: UploadFile, job: Job, limit: int) -> Path:
    """Copy the upload into the job folder (refusing more than `limit` bytes), then name it by content."""
    part = job.dir / "upload.part"
    written = 0
    with open(part, "wb") as out:
        while chunk := file.file.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise UploadRejected(413, too_large_message(limit))
            out.write(chunk)
    suffix = detect_format(part)
    target = job.dir / f"input{suffix}"
    shutil.move(part, target)
    return target


def _job(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise HTTPException(404, "unknown job (results are deleted after a while; upload the scan again)")
    return job


def _done(store: JobStore, job_id: str) -> Job:
    job = _job(store, job_id)
    if job.status == "error":
        raise HTTPException(409, f"the job failed: {job.error}")
    if job.status != "done":
        raise HTTPException(409, f"the job is {job.status}; results are not ready yet")
    return job


def _optional_map(job: Job, name: str, what: str) -> FileResponse:
    """A NIfTI map that only some models give (probabilities, low confidence)."""
    if name not in job.outputs:
        raise HTTPException(404, f"model '{job.model}' gives no {what} for this scan")
    return _download(job, name, "application/gzip", f"{job.stem}_{name}.nii.gz")


def _download(job: Job, name: str, media_type: str, filename: str, inline: bool = False) -> FileResponse:
    return FileResponse(job.dir / job.outputs[name], media_type=media_type, filename=filename,
                        content_disposition_type="inline" if inline else "attachment")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is {"detail": "<one line>"}; nothing internal (traces, paths) is sent."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        fields = sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()})
        detail = f"invalid request: check field(s) {', '.join(fields)}"
        if "file" in fields:
            detail = "no file in the request: send the scan as multipart/form-data field 'file'"
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal server error (details are in the server log)"}, status_code=500)
