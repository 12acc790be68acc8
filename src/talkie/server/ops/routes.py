"""Operations endpoints.

- ``GET /metrics``: Prometheus text format. Send ``Authorization: Bearer <token>`` with either
  ``$TALKIE_METRICS_TOKEN`` (a scrape-only secret for the Prometheus server: it opens nothing
  else) or an admin API key. Anything else gets 401/403 like the API.
- ``GET /v1/admin/ops``: the admin page's data (capacity, frame pacing, turn latency, cost;
  admin keys only). The page itself is ``/admin/`` (it asks for the admin key).
- ``GET /v1/sessions/{id}/export``: one session as JSON lines (the session, its transcript
  lines, its turn traces); the key's tenant only, or the session's own token.
- ``GET /v1/exports/sessions``: every session of the key's tenant created in
  ``[since, until)``, optionally of one character, as JSON lines, streamed page by page (never
  built in memory). Admin keys see every tenant.

Each line is one JSON object with ``type``: ``session`` (as ``GET /v1/sessions/{id}``),
``transcript`` (one line of what was said, as in ``/transcript``, plus ``session_id``) or
``trace`` (one turn's trace, as in ``/traces``, plus ``session_id``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from talkie.server.context import Caller, Services, Svc, character_for, identify, session_for
from talkie.server.errors import ApiError, errors
from talkie.server.models import Session, TranscriptLine, TurnTrace
from talkie.store.export import ExportCursor, SessionBundle, session_page

router = APIRouter()
# A client refused with a place in the line sends its ticket back to keep that place.
QueueTicket = Annotated[
    str | None,
    Header(
        alias="Talkie-Queue-Ticket", max_length=64,
        description="the queue ticket of an earlier 503 (keeps your place in the line)",
    ),
]  # fmt: skip
JSONL = "application/x-ndjson"
EXPORT_PAGE = 50  # sessions read from the database at a time
Include = Literal["transcript", "traces", "both"]
_JSONL_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON lines", "content": {JSONL: {"schema": {"type": "string"}}}}
}


def metrics_token(svc: Services) -> str:
    ops = getattr(svc, "ops", None)
    configured = ops.options.metrics_token if ops is not None else None
    return (configured or os.environ.get("TALKIE_METRICS_TOKEN", "")).strip()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, svc: Svc) -> Response:
    """Prometheus metrics (bearer: ``$TALKIE_METRICS_TOKEN`` or an admin key)."""
    token = metrics_token(svc)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    scrape_token = (
        bool(token) and scheme.lower() == "bearer"
        and hmac.compare_digest(given.encode(), token.encode())
    )  # fmt: skip
    if not scrape_token:
        who = await identify(svc, request.scope)
        who.require("ops:read")
    body = await svc.ops.scrape()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/v1/admin/ops", responses=errors(401, 403), tags=["server"],
    summary="Capacity, frame pacing, turn latency and session cost (the admin page's data)",
)  # fmt: skip
async def ops_dashboard(who: Caller, svc: Svc) -> dict[str, object]:
    who.require("ops:read")
    dashboard: dict[str, object] = svc.ops.dashboard()
    return dashboard


@router.get(
    "/v1/sessions/{session_id}/export",
    responses={**_JSONL_RESPONSE, **errors(400, 401, 403, 404)},
    tags=["sessions"], response_class=StreamingResponse,
    summary="One session as JSON lines: the session, its transcript lines, its turn traces",
)  # fmt: skip
async def export_session(
    session_id: str, who: Caller, svc: Svc, include: Include = "both"
) -> StreamingResponse:
    who.require("sessions:read", session_id=session_id)
    record = await session_for(svc, who, session_id)  # 404: unknown or another tenant's
    return _stream(
        svc, tenant=record.tenant, session_ids=(record.id,), include=include,
        filename=f"{record.id}.jsonl",
    )  # fmt: skip


@router.get(
    "/v1/exports/sessions", tags=["sessions"],
    responses={**_JSONL_RESPONSE, **errors(400, 401, 403, 404)},
    response_class=StreamingResponse,
    summary="Sessions created in a time range (optionally of one character) as JSON lines",
)  # fmt: skip
async def export_sessions(
    who: Caller,
    svc: Svc,
    since: datetime | None = None,
    until: datetime | None = None,
    character_id: Annotated[str | None, Query(max_length=64)] = None,
    include: Include = "both",
) -> StreamingResponse:
    who.require("sessions:read")
    start, end = _timestamp(since, "since"), _timestamp(until, "until")
    if start is not None and end is not None and end <= start:
        raise ApiError(400, "invalid_range", "until: must be later than since")
    if character_id is not None:
        await character_for(svc, who, character_id)  # 404: unknown or not theirs
    return _stream(
        svc, tenant=who.tenant_filter(), character_id=character_id, since=start, until=end,
        include=include, filename="sessions.jsonl",
    )  # fmt: skip


def _timestamp(value: datetime | None, name: str) -> float | None:
    """Seconds since the epoch (a time without a zone is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.timestamp()
    except (OverflowError, ValueError, OSError):
        raise ApiError(400, "invalid_time", f"{name}: not a usable time") from None


def _stream(
    svc: Services, *, tenant: str | None, include: Include, filename: str,
    character_id: str | None = None, since: float | None = None, until: float | None = None,
    session_ids: tuple[str, ...] = (),
) -> StreamingResponse:  # fmt: skip
    async def lines() -> AsyncIterator[bytes]:
        cursor: ExportCursor | None = None

        def read(after: ExportCursor | None) -> tuple[list[SessionBundle], ExportCursor | None]:
            return session_page(
                svc.store, tenant=tenant, character_id=character_id, since=since, until=until,
                after=after, limit=EXPORT_PAGE, session_ids=session_ids,
            )  # fmt: skip

        while True:
            page, cursor = await asyncio.to_thread(read, cursor)
            for bundle in page:
                yield _bundle_lines(bundle, include)
            if cursor is None:
                return

    return StreamingResponse(
        lines(), media_type=JSONL,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )  # fmt: skip


def _bundle_lines(bundle: SessionBundle, include: Include) -> bytes:
    sid = bundle.session.id
    out = [{"type": "session", **Session.of(bundle.session).model_dump(mode="json")}]
    if include in ("transcript", "both"):
        out += [
            {
                "type": "transcript",
                "session_id": sid,
                **TranscriptLine.of(e).model_dump(mode="json"),
            }
            for e in bundle.transcript
        ]
    if include in ("traces", "both"):
        out += [
            {"type": "trace", "session_id": sid, **TurnTrace.of(t).model_dump(mode="json")}
            for t in bundle.traces
        ]
    return "".join(json.dumps(o, separators=(",", ":")) + "\n" for o in out).encode()
