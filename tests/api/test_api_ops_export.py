"""Exports as JSON lines: one session, or a tenant's sessions in a time range (optionally of one
character); streamed in pages; a key sees only its tenant's sessions (another tenant's are
"not found"), admin keys see all; bad ranges are 400s with a message."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.server.app import ServerOptions, create_app
from talkie.store import SessionRecord, TraceRecord, TranscriptEntry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_fakes import FakeConversation  # noqa: E402

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86_400.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("export-data")
    app = create_app(
        options=ServerOptions(data_dir=data, request_burst=10_000),
        conversation_factory=FakeConversation,
    )
    admin_key = (data / "admin.key").read_text().strip()
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
        keys = {"admin": admin_key}
        for tenant in ("alpha", "beta"):
            r = admin.post(
                "/v1/keys", json={"name": tenant, "scopes": ["sessions"], "tenant": tenant}
            )
            assert r.status_code == 201, r.text
            keys[tenant] = r.json()["secret"]
        store = app.state.services.store
        # alpha: 120 sessions, one a minute from T0 (three pages); beta: 2, a day later
        for i in range(120):
            add_session(store, f"se_alpha{i:04d}", "alpha", T0 + 60 * i, turns=1 if i % 2 else 0)
        for i in range(2):
            add_session(store, f"se_beta{i:04d}", "beta", T0 + DAY + i, turns=2)
        yield {"app": app, "keys": keys}


def add_session(store: Any, sid: str, tenant: str, at: float, turns: int) -> None:
    store.add_session(
        SessionRecord(
            id=sid, character_id="astronaut", key_id=None, end_user_id=None, status="ended",
            created_at=at, started_at=at, ended_at=at + 30, end_reason="closed", turns=0,
            tenant=tenant,
        )
    )  # fmt: skip
    for turn in range(1, turns + 1):  # as the server records a finished turn
        store.record_turn(
            [
                TranscriptEntry(sid, turn, "user", f"question {turn} of {sid}", at + turn),
                TranscriptEntry(sid, turn, "character", f"answer {turn}", at + turn + 1),
            ],
            TraceRecord(sid, turn, 0.8, False, "", {"speech_end": 1.0, "answer_start": 1.8}, at),
        )


def get(world: dict[str, Any], who: str, path: str, **params: Any) -> Any:
    with TestClient(world["app"], headers={"Authorization": f"Bearer {world['keys'][who]}"}) as c:
        return c.get(path, params=params)


def lines(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "content-length" not in r.headers  # streamed, not built whole
    return [json.loads(line) for line in r.text.splitlines()]


def test_one_session_as_json_lines(world: dict[str, Any]) -> None:
    out = lines(get(world, "alpha", "/v1/sessions/se_alpha0001/export"))
    assert [o["type"] for o in out] == ["session", "transcript", "transcript", "trace"]
    assert out[0]["id"] == "se_alpha0001" and out[0]["tenant"] == "alpha"
    assert out[0]["turns"] == 1
    assert out[1] == {
        "type": "transcript", "session_id": "se_alpha0001", "turn": 1, "speaker": "user",
        "text": "question 1 of se_alpha0001", "at": out[1]["at"], "interrupted": False,
        "typed": False, "backchannel": False,
    }  # fmt: skip
    assert out[3]["latency"] == 0.8 and out[3]["marks"]["answer_start"] == 1.8
    only = lines(get(world, "alpha", "/v1/sessions/se_alpha0001/export", include="transcript"))
    assert [o["type"] for o in only] == ["session", "transcript", "transcript"]


def test_another_tenants_session_is_not_found(world: dict[str, Any]) -> None:
    error_of(get(world, "beta", "/v1/sessions/se_alpha0001/export"), 404, "unknown_session")
    error_of(get(world, "alpha", "/v1/sessions/se_nothing/export"), 404, "unknown_session")
    assert lines(get(world, "admin", "/v1/sessions/se_alpha0001/export"))[0]["tenant"] == "alpha"


def test_a_tenants_sessions_stream_in_order_across_pages(world: dict[str, Any]) -> None:
    out = lines(get(world, "alpha", "/v1/exports/sessions"))
    sessions = [o["id"] for o in out if o["type"] == "session"]
    assert sessions == [f"se_alpha{i:04d}" for i in range(120)]  # oldest first, no beta
    assert sum(o["type"] == "transcript" for o in out) == 2 * 60
    assert sum(o["type"] == "trace" for o in out) == 60
    # every line follows its own session's line
    current = None
    for o in out:
        if o["type"] == "session":
            current = o["id"]
        else:
            assert o["session_id"] == current
    beta = lines(get(world, "beta", "/v1/exports/sessions", include="traces"))
    assert [o["type"] for o in beta] == ["session", "trace", "trace"] * 2


def test_a_time_range_and_a_character(world: dict[str, Any]) -> None:
    # minutes 10..19 of alpha's sessions (until is exclusive), as ISO 8601 times with a zone
    since, until = "2027-01-15T08:10:00Z", "2027-01-15T08:20:00+00:00"
    assert T0 == 1_800_000_000.0
    out = lines(get(world, "alpha", "/v1/exports/sessions", since=since, until=until))
    assert [o["id"] for o in out if o["type"] == "session"] == [
        f"se_alpha{i:04d}" for i in range(10, 20)
    ]
    # the admin sees every tenant; a day later only beta's
    later = lines(get(world, "admin", "/v1/exports/sessions", since="2027-01-16T00:00:00Z"))
    assert {o["tenant"] for o in later if o["type"] == "session"} == {"beta"}
    by_character = lines(
        get(world, "admin", "/v1/exports/sessions", character_id="astronaut", include="traces")
    )
    assert sum(o["type"] == "session" for o in by_character) == 122
    # a character alpha cannot see is "not found", as everywhere
    error_of(
        get(world, "alpha", "/v1/exports/sessions", character_id="astronaut"), 404,
        "unknown_character",
    )  # fmt: skip


def test_bad_export_requests(world: dict[str, Any]) -> None:
    r = get(world, "alpha", "/v1/exports/sessions", since="2027-01-16T00:00:00Z",
            until="2027-01-15T00:00:00Z")  # fmt: skip
    assert "until" in error_of(r, 400, "invalid_range")
    error_of(get(world, "alpha", "/v1/exports/sessions", since="yesterday"), 400)
    error_of(get(world, "alpha", "/v1/exports/sessions", include="audio"), 400)
    with TestClient(world["app"]) as anonymous:
        error_of(anonymous.get("/v1/exports/sessions"), 401)
