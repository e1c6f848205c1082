"""Upload safety: a request-size limit that holds while the body streams in, and format
detection by content (magic bytes), never by the file name the browser sent.

Each accepted upload is saved under a name we choose from its content (input.nii.gz, ...), so the
readers in lungseg.io see a suffix that matches what the bytes really are.
"""
from __future__ import annotations

import re
import struct
import zipfile
import zlib
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

ZIP_MAX_MEMBERS = 5000  # a CT series rarely exceeds ~2000 slices
ZIP_MAX_UNPACKED = 4 * 1024**3  # bytes, declared total
ZIP_MAX_RATIO = 200  # DICOM packs ~2-20x; a member packed far tighter is a bomb, not a CT
HEADER_BYTES = 4096


class UploadRejected(Exception):
    """An upload we refuse; `status` is the HTTP code (413, 415, 400), `message` the user text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class BodyTooLarge(HTTPException):
    """Raised from inside receive(); FastAPI re-raises HTTPExceptions met while parsing a body."""

    def __init__(self, limit: int):
        super().__init__(413, detail=too_large_message(limit))


def too_large_message(limit: int) -> str:
    mb = limit / 1024**2
    return f"file is larger than the upload limit of {mb:.0f} MB" if mb >= 10 else \
        f"file is larger than the upload limit of {mb:.2g} MB"


class UploadLimitMiddleware:
    """Refuse request bodies above `max_bytes` with 413 + JSON, before or while they stream in.

    Content-Length is checked first (no byte is read); a chunked or lying client is cut off as
    soon as the running total passes the limit, so nothing larger ever reaches the disk."""

    def __init__(self, app, max_bytes: int, overhead: int = 1024**2):
        self.app = app
        self.max_bytes = max_bytes
        self.allowed = max_bytes + overhead  # multipart boundaries and headers around the file

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.allowed:
            return await self._refuse(send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.allowed:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        response = JSONResponse({"detail": too_large_message(self.max_bytes)}, status_code=413,
                                headers={"Connection": "close"})
        await response({"type": "http"}, _no_body, send)


async def _no_body():
    return {"type": "http.request", "body": b"", "more_body": False}


# ---- format detection ------------------------------------------------------------------------
ACCEPTED = "NIfTI (.nii/.nii.gz), NRRD, MHA, a .zip of a DICOM series, PNG or JPEG"


def detect_format(path: Path) -> str:
    """The suffix the file's content calls for ('.nii.gz', '.nii', '.nrrd', '.mha', '.zip',
    '.png', '.jpg'), or UploadRejected(415) naming what was found instead."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if not head:
        raise UploadRejected(400, "the uploaded file is empty")
    if head.startswith(b"\x1f\x8b"):
        if _is_nifti(_gunzip_head(head)):
            return ".nii.gz"
        raise UploadRejected(415, f"a gzip file that does not hold a NIfTI image; accepted: {ACCEPTED}")
    if _is_nifti(head):
        return ".nii"
    if head.startswith(b"NRRD000"):
        _check_nrrd(head)
        return ".nrrd"
    if re.match(rb"\s*ObjectType\s*=", head):
        _check_mha(head)
        return ".mha"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"PK\x03\x04"):
        check_dicom_zip(path)
        return ".zip"
    if head[128:132] == b"DICM":
        raise UploadRejected(415, "a single DICOM file: zip the whole series folder and upload the .zip")
    raise UploadRejected(415, f"unsupported or unrecognised file content; accepted: {ACCEPTED}")


def _gunzip_head(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 600)
    except zlib.error:
        raise UploadRejected(415, "the gzip data is corrupt") from None


def _is_nifti(head: bytes) -> bool:
    """NIfTI-1: sizeof_hdr 348 and magic 'n+1'/'ni1' at 344; NIfTI-2: 540 and 'n+2' at 4."""
    if len(head) >= 348:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 348 and head[344:347] in (b"n+1", b"ni1"):
                return True
    if len(head) >= 8:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 540 and head[4:7] in (b"n+2", b"ni2"):
                return True
    return False


def _header_fields(head: bytes, sep: bytes) -> dict[str, str]:
    text = head.split(b"\n\n", 1)[0] if sep == b":" else head
    fields = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found:
            fields[key.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return fields


def _check_nrrd(head: bytes) -> None:
    # A detached header could name any file on the server as its data ('data file: /etc/...').
    fields = _header_fields(head, b":")
    if "data file" in fields or "datafile" in fields:
        raise UploadRejected(415, "NRRD header points to a separate data file; upload an attached .nrrd")


def _check_mha(head: bytes) -> None:
    fields = _header_fields(head, b"=")
    if fields.get("elementdatafile", "").upper() != "LOCAL":
        raise UploadRejected(415, "MetaImage header points to a separate data file (.mhd/.raw); "
                                  "upload a single .mha with the data inside")


def check_dicom_zip(path: Path) -> None:
    """Refuse path traversal, links, zip bombs and zips without DICOM before anything is unpacked
    (lungseg.io.safe_extract checks again, byte by byte, when the job unpacks it)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            _check_members(infos)
            if not any(_member_is_dicom(zf, i) for i in infos):
                raise UploadRejected(415, "the zip holds no DICOM files (expected a zipped DICOM series)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as e:
        raise UploadRejected(400, f"the zip archive is damaged or truncated ({type(e).__name__})") from None
    except NotImplementedError:
        raise UploadRejected(415, "the zip uses a compression method that is not supported") from None
    except RuntimeError:  # encrypted members
        raise UploadRejected(415, "the zip is encrypted; upload an unencrypted zip") from None


def _check_members(infos: list[zipfile.ZipInfo]) -> None:
    if not infos:
        raise UploadRejected(415, "the zip archive is empty")
    if len(infos) > ZIP_MAX_MEMBERS:
        raise UploadRejected(413, f"the zip holds {len(infos)} files (limit {ZIP_MAX_MEMBERS})")
    total = sum(i.file_size for i in infos)
    if total > ZIP_MAX_UNPACKED:
        raise UploadRejected(413, f"the zip would unpack to {total / 1024**3:.1f} GiB "
                                  f"(limit {ZIP_MAX_UNPACKED / 1024**3:.0f} GiB); refused as a zip bomb")
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
            raise UploadRejected(400, f"zip member '{info.filename[:100]}' points outside the archive; refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UploadRejected(400, f"zip member '{info.filename[:100]}' is a symbolic link; refused")
        if info.file_size > 1024**2 and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise UploadRejected(413, f"zip member '{info.filename[:100]}' expands {info.file_size // max(info.compress_size, 1)}"
                                      f"-fold; refused as a zip bomb")


def _member_is_dicom(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if info.file_size < 132:
        return False
    with zf.open(info) as f:
        return f.read(132)[128:132] == b"DICM"


def safe_filename(name: str | None) -> str:
    """The browser's file name for display and download names only (never a path on disk)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ()]+", "_", base).strip(" .")[:120]
    return base or "scan"
