"""`lungseg serve`: the web page and REST API (FastAPI + uvicorn) on this workstation."""
from __future__ import annotations

import argparse
import sys

from ..errors import LungsegError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the web page and REST API",
        description="Serve a page where colleagues upload a chest CT (NIfTI, NRRD, MHA, a zip of a DICOM "
                    "series, PNG/JPG) and see the segmentation, plus a REST API documented at /docs. "
                    "Binds to localhost unless --host says otherwise; there is no login, so only expose it "
                    "on a network you trust.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--max-upload-mb", type=float, default=1024.0, help="largest accepted upload in MB (default: 1024)")
    p.add_argument("--workers", type=int, default=1, help="scans segmented at the same time (default: 1)")
    p.add_argument("--ttl-minutes", type=float, default=60.0,
                   help="delete uploads and results this long after a job finishes (default: 60)")
    p.add_argument("--model", default="default", help="classical | default | path to a checkpoint (default: default)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401

        from ..web import WebSettings, create_app
    except ImportError as e:
        raise LungsegError(f"the web server needs the [web] extra ({e.name} is missing): "
                           "pip install 'lungseg[web]'") from None
    if args.workers < 1 or args.max_upload_mb <= 0 or args.ttl_minutes <= 0:
        raise LungsegError("--workers, --max-upload-mb and --ttl-minutes must be positive")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lungseg: warning: serving on {args.host}: anyone who can reach this address can upload "
              "scans and see results (there is no login)", file=sys.stderr)
    app = create_app(WebSettings(model=args.model, device=args.device, workers=args.workers,
                                 max_upload_mb=args.max_upload_mb, ttl_minutes=args.ttl_minutes))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"lungseg: serving on http://{shown}:{args.port}/ (API docs at /docs); Ctrl+C stops", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
