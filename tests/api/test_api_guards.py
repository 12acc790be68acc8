"""The kill switch (end every session of a character at once), rate limits (429 + Retry-After)
and schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_testutil import error_of

from talkie.errors import InvalidInputError, TalkieError
from talkie.server.app import ServerOptions
from talkie.server.ratelimit import RateLimiter
from talkie.store import Store
from talkie.store.schema import LATEST_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_client import connect  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    options = ServerOptions(max_sessions=4, messages_per_minute=6, message_burst=2)
    with LiveServer(options=options, conversation_factory=FakeConversation) as live:
        yield live


def test_kill_switch_ends_every_live_session_of_a_character_at_once(server: LiveServer) -> None:
    async def scenario() -> float:
        sessions = [await connect(server.url, "astronaut") for _ in range(2)]
        try:
            for s in sessions:
                await s.wait_video(2)
            assert len(server.registry) == 2
            with server.admin() as admin:
                start = time.monotonic()
                r = await asyncio.to_thread(
                    admin.delete, "/v1/characters/astronaut/sessions?disable=true"
                )
                elapsed = time.monotonic() - start
            assert r.status_code == 200, r.text
            assert sorted(r.json()["ended"]) == sorted(s.session_id for s in sessions)
            assert len(server.registry) == 0  # closed before the answer came back
            return elapsed
        finally:
            for s in sessions:
                await s.close()

    elapsed = asyncio.run(asyncio.wait_for(scenario(), 60))
    print(f"kill switch: 2 live sessions ended in {elapsed * 1000:.0f} ms")
    with server.admin() as admin:
        error_of(admin.post("/v1/sessions", json={"character_id": "astronaut"}), 409,
                 "character_disabled")  # fmt: skip
        ended = admin.get("/v1/sessions?status=ended").json()["sessions"]
        assert all(s["end_reason"].startswith("kill switch") for s in ended[:2])
        assert admin.get("/v1/characters/astronaut").json()["disabled"] is True
        # samples are read-only, but an administrator can switch one back on
        error_of(admin.patch("/v1/characters/astronaut", json={"disabled": False}), 403)
        server.app.state.services.characters.set_disabled("astronaut", False)
        assert admin.post("/v1/sessions", json={"character_id": "astronaut"}).status_code == 201
        key = admin.post("/v1/keys", json={"name": "s", "scopes": ["sessions"]}).json()["secret"]
        r = admin.delete("/v1/characters/astronaut/sessions",
                         headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        error_of(r, 403, "forbidden")


def test_typed_messages_are_rate_limited_per_session(server: LiveServer) -> None:
    async def scenario() -> list[dict[str, object]]:
        session = await connect(server.url, "astronaut")
        try:
            await asyncio.wait_for(session.channel_open.wait(), 10)
            for i in range(4):
                session.send({"type": "text", "text": f"message {i}"})
            await session.wait_event(lambda e: e.get("type") == "error", timeout=10)
            await asyncio.sleep(0.3)
            return list(session.events)
        finally:
            await session.close()

    events = asyncio.run(asyncio.wait_for(scenario(), 30))
    answered = [e for e in events if e.get("type") == "turn"]
    refused = [e for e in events if e.get("type") == "error"]
    assert len(answered) == 2 and len(refused) == 2  # burst of 2, then "wait N s"
    assert "too many messages" in str(refused[0]["message"])


def test_api_requests_are_rate_limited_per_key_with_retry_after() -> None:
    options = ServerOptions(requests_per_minute=60, request_burst=3)
    live = LiveServer(options=options, conversation_factory=FakeConversation)
    with live, live.admin() as admin:
        codes = [admin.get("/v1/characters").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = admin.get("/v1/characters")
        error_of(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 2
        assert admin.get("/v1/health").status_code == 200  # no key, no limit
        time.sleep(1.1)  # one token refills per second at 60/min
        assert admin.get("/v1/characters").status_code == 200


def test_rate_limiter_refills_at_its_rate() -> None:
    limiter = RateLimiter(per_minute=120, burst=2)  # 2 per second
    assert limiter.wait_time("k", now=0.0) == 0.0
    assert limiter.wait_time("k", now=0.0) == 0.0
    assert limiter.wait_time("k", now=0.0) == pytest.approx(0.5)
    assert limiter.wait_time("other", now=0.0) == 0.0  # keys are independent
    assert limiter.wait_time("k", now=0.6) == 0.0
    with pytest.raises(ValueError):
        RateLimiter(per_minute=0, burst=1)


def test_migrations_upgrade_an_old_database_and_refuse_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "talkie.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # make it look like a version-1 database
        db.execute("ALTER TABLE characters DROP COLUMN disabled")
        db.execute("DELETE FROM schema_migrations WHERE version > 1")
    store = Store(f"sqlite:///{path}")
    store.close()
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(characters)")]
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert "disabled" in columns and versions == list(range(1, LATEST_VERSION + 1))
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(InvalidInputError, match="newer Talkie"):
        Store(f"sqlite:///{path}")


def test_a_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="cannot open the database"):
        Store("nosuchdialect://user:secret@host/db")
    # PostgreSQL: without its driver, a message naming what to install; never the password
    with pytest.raises(TalkieError) as caught:
        Store("postgresql+psycopg://user:hunter2@127.0.0.1:1/talkie")
    assert "hunter2" not in str(caught.value)
    assert "psycopg" in str(caught.value) or "cannot open" in str(caught.value)
