"""Helpers for the API tests (imported by name: this folder is on sys.path under pytest)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def error_of(r: Any, status: int, code: str | None = None) -> str:
    """Assert a JSON error response; return its message."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    assert err["message"]
    return str(err["message"])
