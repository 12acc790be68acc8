"""HTTP errors with a status, a stable code and a one-line message for the user."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.responses import JSONResponse

_DESCRIPTIONS = {
    400: "Invalid request: the message names the field",
    401: "Missing, invalid, revoked or expired credentials",
    403: "The credentials do not allow this (scope, origin or read-only resource)",
    404: "Not found",
    408: "The request body arrived too slowly",
    409: "Conflict with the resource's current state",
    413: "Request body too large for this endpoint",
    415: "Unsupported media type",
    422: "The photo was read but cannot be used (for example, no face found)",
    429: "Too many requests: retry after the Retry-After header's seconds",
    503: "Busy or unavailable: try again later",
}


class ApiError(Exception):
    """Raised by a route; rendered as ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = dict(details or {})  # extra members of the error object


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The JSON error every failure is answered with (``details``: more fields of the error,
    e.g. which points of a rig fold the mesh)."""
    body = {"code": code, "message": message, **(details or {})}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    from talkie.server.models import ErrorBody

    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in statuses}


def describe_validation(problems: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic validation errors as one line naming each field ("body.name: ...")."""
    lines = []
    for err in list(problems)[:5]:
        loc = list(err.get("loc", ()))
        if loc[:1] == ["body"]:  # the JSON body's fields are named as the client wrote them
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        lines.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(lines) or "invalid request"
