"""Talkie's web server: REST API, WebRTC signalling and the browser client.

``create_app`` and ``ServerOptions`` are imported lazily: `talkie --help` and the client verbs
should not pay for FastAPI, aiortc and OpenCV.
"""

from typing import Any

__all__ = ["ServerOptions", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from talkie.server import app

        return getattr(app, name)
    raise AttributeError(name)
