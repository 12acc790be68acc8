"""/v1/sessions: create (-> session token), WebRTC offer/answer, list, get, end, transcript,
per-turn latency traces.

A session is created ``pending`` with a short-lived token; the browser sends its WebRTC offer with
that token and the session goes ``live``; it ends when either side hangs up (``ended``, with a
reason). Each finished turn is written to the database as it ends (transcript lines and trace in
one transaction), so a crash loses at most the turn in progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from talkie.brain.base import Turn
from talkie.brain.memory import bounded_lines, fold_turn
from talkie.server.characters import require_rig
from talkie.server.context import Caller, Services, Svc, character_for, session_for
from talkie.server.errors import ApiError, errors
from talkie.server.hosts import SessionHostError, SessionSpec
from talkie.server.models import (
    Answer,
    Offer,
    Session,
    SessionCreate,
    SessionCreated,
    SessionList,
    Traces,
    Transcript,
    TranscriptLine,
    TurnTrace,
    utc,
)
from talkie.server.ops.routes import QueueTicket
from talkie.session.events import SessionEvent, TurnFinished
from talkie.store import SessionRecord, TraceRecord, TranscriptEntry
from talkie.transport.webrtc import check_offer

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
MEMORY_TOKENS = 300  # what a character keeps of one person across sessions


@router.post(
    "",
    status_code=201,
    response_model=SessionCreated,
    responses=errors(400, 401, 403, 404, 409, 503),
    summary="Create a session for a character: returns a short-lived token for the browser",
)
async def create_session(
    body: SessionCreate, who: Caller, svc: Svc, queue_ticket: QueueTicket = None
) -> SessionCreated:
    who.require("sessions:create")
    character = await character_for(svc, who, body.character_id)  # 404: unknown or not theirs
    svc.ops.admit(queue_ticket)  # 503 + Retry-After + place in line without headroom (ops)
    tenant = who.tenant
    assert tenant is not None  # only keys may create sessions
    if character.disabled:
        raise ApiError(
            409, "character_disabled", f"{character.id} is switched off by an administrator"
        )
    require_rig(character)  # 409 needs_rig: its face points are not placed yet
    record = SessionRecord(
        id="se_" + secrets.token_hex(10), character_id=body.character_id, key_id=who.key_id,
        end_user_id=body.end_user_id, status="pending", created_at=time.time(),
        started_at=None, ended_at=None, end_reason=None, turns=0, remember=body.remember,
        tenant=tenant,
    )  # fmt: skip
    await svc.run(svc.store.add_session, record)
    token, expires = svc.auth.session_token(record.id)
    return SessionCreated(
        session=Session.of(record), token=token,
        token_expires_at=utc(expires),
        offer_url=f"/v1/sessions/{record.id}/offer",
        ice_servers=ice_servers(svc),
    )  # fmt: skip


@router.post(
    "/{session_id}/offer",
    response_model=Answer,
    responses=errors(400, 401, 403, 404, 409, 503),
    summary="Send the browser's WebRTC offer; returns the complete answer (no trickle ICE)",
)
async def send_offer(
    session_id: str,
    body: Offer,
    who: Caller,
    svc: Svc,
) -> Answer:
    who.require("sessions:connect", session_id=session_id)
    record = await session_for(svc, who, session_id)
    if record.status != "pending":
        raise ApiError(409, "session_" + record.status, f"session {session_id} is {record.status}")
    check_offer(body.sdp, body.type)  # InvalidInputError -> 400, before any work
    with svc.registry.reserve() as slot:  # SessionLimitError -> 503
        character = await svc.characters.load_async(record.character_id)
        if record.remember and record.end_user_id:
            memory = await svc.run(svc.store.get_memory, record.character_id, record.end_user_id)
            if memory is not None:
                character = dataclasses.replace(character, recall=memory.notes)
        spec = SessionSpec(
            session_id=session_id, character=character,
            conversation_factory=svc.conversation_factory,
            webrtc=dataclasses.replace(svc.options.webrtc, mic_preroll=True) if body.preroll
            else svc.options.webrtc,
            messages_per_minute=svc.options.messages_per_minute,
            message_burst=svc.options.message_burst,
        )  # fmt: skip
        session = svc.host.open(spec, _Recorder(svc, record))
        svc.registry.add(session, slot)
        try:
            answer = await asyncio.wait_for(
                session.start(body.sdp, body.type), timeout=svc.options.answer_timeout
            )
        except TimeoutError:
            await session.close("answer timeout")
            raise ApiError(
                503, "timeout", "the session could not start in time; try again"
            ) from None
        except SessionHostError as exc:
            await session.close("could not start")
            raise ApiError(503, "host_unavailable", str(exc)) from None
        except Exception:
            await session.close("could not start")
            raise
    await svc.run(lambda: svc.store.mark_session(session_id, status="live"))
    return Answer(sdp=answer.sdp, type=answer.type, session_id=session_id)


@router.get(
    "",
    response_model=SessionList,
    responses=errors(400, 401, 403),
    summary="List the sessions this key sees, newest first (status=active: pending or live)",
)
async def list_sessions(
    who: Caller,
    svc: Svc,
    status: Literal["active", "pending", "live", "ended"] | None = None,
    character_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SessionList:
    who.require("sessions:read")
    statuses = ("pending", "live") if status == "active" else status
    tenant = who.tenant_filter()
    page = await svc.run(
        lambda: svc.store.list_sessions(
            status=statuses,
            character_id=character_id,
            limit=limit,
            cursor=cursor,
            tenant=tenant,
        )
    )
    return SessionList(sessions=[Session.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{session_id}",
    response_model=Session,
    responses=errors(400, 401, 403, 404),
    summary="Get a session",
)
async def get_session(session_id: str, who: Caller, svc: Svc) -> Session:
    who.require("sessions:read", session_id=session_id)
    return Session.of(await session_for(svc, who, session_id))


@router.delete(
    "/{session_id}",
    response_model=Session,
    responses=errors(400, 401, 403, 404),
    summary="End a session (hang up); ending an ended session changes nothing",
)
async def end_session(session_id: str, who: Caller, svc: Svc) -> Session:
    who.require("sessions:end", session_id=session_id)
    await session_for(svc, who, session_id)
    reason = "ended by the client" if who.key is None else f"ended by API key {who.key_id}"
    await end_live_session(svc, session_id, reason)
    return Session.of(await session_for(svc, who, session_id))


@router.get(
    "/{session_id}/transcript",
    response_model=Transcript,
    responses=errors(400, 401, 403, 404),
    summary="What was said, turn by turn (the character's lines as heard, if interrupted)",
)
async def get_transcript(session_id: str, who: Caller, svc: Svc) -> Transcript:
    who.require("sessions:read", session_id=session_id)
    await session_for(svc, who, session_id)
    entries = await svc.run(svc.store.transcript, session_id)
    return Transcript(session_id=session_id, lines=[TranscriptLine.of(e) for e in entries])


@router.get(
    "/{session_id}/traces",
    response_model=Traces,
    responses=errors(400, 401, 403, 404),
    summary="Per-turn latency traces (stage times on the session's media clock) and tool calls",
)
async def get_traces(session_id: str, who: Caller, svc: Svc) -> Traces:
    who.require("sessions:read", session_id=session_id)
    await session_for(svc, who, session_id)
    traces = await svc.run(svc.store.traces, session_id)
    return Traces(session_id=session_id, turns=[TurnTrace.of(t) for t in traces])


def ice_servers(svc: Services) -> list[dict[str, Any]]:
    """The STUN/TURN servers browsers should use, as RTCPeerConnection takes them."""
    return [
        {k: v for k, v in vars(server).items() if v is not None}
        for server in svc.options.webrtc.ice_servers
    ]


async def end_character_sessions(svc: Services, character_id: str, reason: str) -> list[str]:
    """The kill switch: end every pending or live session of a character, all at once."""
    page = await svc.run(
        lambda: svc.store.list_sessions(
            status=("pending", "live"), character_id=character_id, limit=10_000
        )
    )
    ids = [s.id for s in page.items]
    await asyncio.gather(*(end_live_session(svc, sid, reason) for sid in ids))
    log.warning("kill switch: ended %d sessions of character %s", len(ids), character_id[:40])
    return ids


async def end_live_session(svc: Services, session_id: str, reason: str) -> None:
    """Hang up a live session (if this server's host runs it) and mark it ended."""
    await svc.host.end(session_id, reason)
    await svc.run(lambda: svc.store.mark_session(session_id, status="ended", reason=reason))


class _Recorder:
    """The web process's listener for one session: its host reports the session's events and
    its end here, wherever it runs; the records are written on the store's writer thread."""

    def __init__(self, svc: Services, session: SessionRecord) -> None:
        self._svc = svc
        self._session = session

    def event(self, event: SessionEvent) -> None:
        _event(self._svc, self._session, event)

    def closed(self, reason: str) -> None:
        svc, session_id = self._svc, self._session.id
        svc.registry.discard(session_id)
        svc.write_later(lambda: svc.store.mark_session(session_id, status="ended", reason=reason))


def _event(svc: Services, session: SessionRecord, event: SessionEvent) -> None:
    """Write each finished turn (transcript lines + latency trace) as it ends."""
    svc.ops.on_event(session, event)  # metrics, spans, idle/talking (server/ops)
    if not isinstance(event, TurnFinished):
        return
    session_id = session.id
    entries = []
    if event.user_text:
        entries.append(
            TranscriptEntry(
                session_id, event.turn, "user", event.user_text, event.started_at,
                typed=event.typed,
            )
        )  # fmt: skip
    for text in event.backchannels:
        entries.append(
            TranscriptEntry(session_id, event.turn, "user", text, event.ended_at, backchannel=True)
        )
    if event.said:
        entries.append(
            TranscriptEntry(
                session_id, event.turn, "character", event.said, event.ended_at,
                interrupted=event.interrupted,
            )
        )  # fmt: skip
    trace = event.trace
    record = TraceRecord(
        session_id=session_id, turn=event.turn, latency=trace.get("latency"),
        interrupted=event.interrupted, error=str(trace.get("error") or ""),
        marks=dict(trace.get("marks") or {}), at=event.ended_at,
        tools=[dict(c) for c in trace.get("tools") or [] if isinstance(c, dict)],
    )  # fmt: skip
    svc.write_later(svc.store.record_turn, entries, record)
    if session.remember and session.end_user_id:
        roles = {"user": "user", "character": "assistant"}
        lines = [
            fold_turn(Turn(roles[e.speaker], e.text))  # type: ignore[arg-type]
            for e in entries
            if not e.backchannel
        ]
        svc.write_later(_remember, svc, session.character_id, session.end_user_id, lines)


def _remember(svc: Services, character_id: str, end_user_id: str, lines: list[str]) -> None:
    """Add a turn to what the character remembers of this person (bounded, newest kept)."""
    old = svc.store.get_memory(character_id, end_user_id)
    notes = (old.notes.splitlines() if old else []) + lines
    svc.store.put_memory(character_id, end_user_id, "\n".join(bounded_lines(notes, MEMORY_TOKENS)))
