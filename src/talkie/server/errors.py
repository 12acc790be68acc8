"""HTTP errors with a status, a stable code and a one-line message for the user."""

from __future__ import annotations


class ApiError(Exception):
    """Raised by a route; rendered as ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
