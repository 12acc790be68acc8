"""Backchannels in transcripts: "mm-hm" said over the character is kept (migration 7), marked,
and never mistaken for a turn of its own; a finished turn event is written as it ends."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from talkie.server.routes_sessions import _event
from talkie.session.events import ReplySpoken, TurnFinished
from talkie.store import SessionRecord, Store, TranscriptEntry


def _session(store: Store, session_id: str) -> SessionRecord:
    record = SessionRecord(
        id=session_id, character_id="astronaut", key_id=None, end_user_id=None,
        status="live", created_at=time.time(), started_at=None, ended_at=None,
        end_reason=None, turns=0, tenant="admin",
    )  # fmt: skip
    store.add_session(record)
    return record


def test_migration_7_keeps_old_transcripts_and_adds_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "talkie.db"
    store = Store(f"sqlite:///{path}")
    _session(store, "se_old")
    store.close()
    with sqlite3.connect(path) as db:  # a version-6 database with a line in it
        db.execute("ALTER TABLE transcript_entries DROP COLUMN backchannel")
        db.execute("DELETE FROM schema_migrations WHERE version = 7")
        db.execute(
            "INSERT INTO transcript_entries (session_id, turn, speaker, text, at, interrupted, "
            "typed) VALUES ('se_old', 1, 'user', 'hello', 1.0, 0, 0)"
        )
    store = Store(f"sqlite:///{path}")
    try:
        (old,) = store.transcript("se_old")
        assert old.text == "hello" and not old.backchannel
        store.record_turn(
            [TranscriptEntry("se_old", 2, "user", "mm-hm", 2.0, backchannel=True)], None
        )
        assert [e.backchannel for e in store.transcript("se_old")] == [False, True]
    finally:
        store.close()


class _Operations:
    """``svc.ops`` (metrics and spans; not what this test is about): sees every event."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_event(self, session: Any, event: Any) -> None:
        self.seen.append(event)


class _Services:
    """Just what ``_event`` uses: the store, written at once, and the operations hook."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ops = _Operations()

    def write_later(self, fn: Any, *args: Any) -> None:
        fn(*args)


def test_a_finished_turn_is_written_with_its_backchannels(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'talkie.db'}")
    try:
        record = _session(store, "se_live")
        svc: Any = _Services(store)
        _event(svc, record, ReplySpoken(t=1.0, text="ignored", start=1.1, turn=3))
        _event(
            svc, record,
            TurnFinished(
                t=5.0, turn=3, user_text="How do you listen to me?", said="I listen with a",
                started_at=100.0, ended_at=104.0, interrupted=True, backchannels=("Okay.",),
                trace={"latency": 0.42, "marks": {"answer_start": 1.2}, "error": ""},
            ),
        )  # fmt: skip
        lines = store.transcript("se_live")
        assert [(e.speaker, e.text, e.backchannel, e.interrupted) for e in lines] == [
            ("user", "How do you listen to me?", False, False),
            ("user", "Okay.", True, False),
            ("character", "I listen with a", False, True),
        ]
        (trace,) = store.traces("se_live")
        assert trace.turn == 3 and trace.latency == 0.42 and trace.interrupted
    finally:
        store.close()
