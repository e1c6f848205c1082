"""`lungseg serve`: a REST API and one viewer page over lungseg.segment() (needs the [web] extra)."""
from .app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
