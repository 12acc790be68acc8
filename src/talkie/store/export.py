"""Reading sessions with their transcripts and traces in pages, for exports and metrics.

Exports stream: each call returns one bounded page (keyset pagination on ``created_at, id``),
so an export of a year of sessions never sits in memory, and the database is never held in one
long transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from talkie.store.db import Store, _session
from talkie.store.records import SessionRecord, TraceRecord, TranscriptEntry
from talkie.store.schema import sessions_table, traces_table, transcript_table


@dataclass(frozen=True)
class SessionBundle:
    """One session with what was said and its per-turn traces."""

    session: SessionRecord
    transcript: list[TranscriptEntry]
    traces: list[TraceRecord]


@dataclass(frozen=True)
class ExportCursor:
    """Where the next page starts (the last session of the previous page)."""

    created_at: float
    session_id: str


def count_sessions_by_status(store: Store) -> dict[str, int]:
    """``{"pending": n, "live": n, "ended": n}`` (every status present, zero if none)."""
    t = sessions_table
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
    counts = {"pending": 0, "live": 0, "ended": 0}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def session_page(
    store: Store,
    *,
    tenant: str | None,
    character_id: str | None = None,
    since: float | None = None,
    until: float | None = None,
    after: ExportCursor | None = None,
    limit: int = 50,
    session_ids: tuple[str, ...] = (),
) -> tuple[list[SessionBundle], ExportCursor | None]:
    """Sessions created in ``[since, until)`` (oldest first), of ``tenant`` (``None``: every
    tenant), optionally of one character or the given ids, with their transcripts and traces.
    Returns the page and the cursor of the next one (``None`` at the end)."""
    t = sessions_table
    query = select(t).order_by(t.c.created_at, t.c.id).limit(limit + 1)
    if tenant is not None:
        query = query.where(t.c.tenant == tenant)
    if character_id is not None:
        query = query.where(t.c.character_id == character_id)
    if session_ids:
        query = query.where(t.c.id.in_(session_ids))
    if since is not None:
        query = query.where(t.c.created_at >= since)
    if until is not None:
        query = query.where(t.c.created_at < until)
    if after is not None:
        query = query.where(
            or_(
                t.c.created_at > after.created_at,
                and_(t.c.created_at == after.created_at, t.c.id > after.session_id),
            )
        )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        sessions = [_session(r) for r in rows[:limit]]
        ids = [s.id for s in sessions]
        lines: dict[str, list[TranscriptEntry]] = defaultdict(list)
        traces: dict[str, list[TraceRecord]] = defaultdict(list)
        if ids:
            tt = transcript_table
            for r in conn.execute(
                select(tt).where(tt.c.session_id.in_(ids)).order_by(tt.c.turn, tt.c.id)
            ):
                lines[r.session_id].append(
                    TranscriptEntry(
                        r.session_id, r.turn, r.speaker, r.text, r.at, bool(r.interrupted),
                        bool(r.typed), bool(r.backchannel),
                    )
                )  # fmt: skip
            tr = traces_table
            for r in conn.execute(select(tr).where(tr.c.session_id.in_(ids)).order_by(tr.c.turn)):
                traces[r.session_id].append(
                    TraceRecord(
                        r.session_id, r.turn, r.latency, bool(r.interrupted), r.error,
                        json.loads(r.marks), r.at, json.loads(r.tools or "[]"),
                    )
                )  # fmt: skip
    page = [SessionBundle(s, lines[s.id], traces[s.id]) for s in sessions]
    more = len(rows) > limit and sessions
    cursor = ExportCursor(sessions[-1].created_at, sessions[-1].id) if more else None
    return page, cursor
