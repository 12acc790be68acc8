"""/v1/sessions end to end over real HTTP and WebRTC (aiortc client, fake conversation): create ->
token -> offer/answer -> live -> typed turns recorded (transcript + traces) -> end."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_testutil import error_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_client import connect  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(conversation_factory=FakeConversation) as live:
        yield live


def _wait(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_session_from_creation_to_transcript(server: LiveServer) -> None:
    async def talk() -> str:
        session = await connect(server.url, "astronaut")
        try:
            await asyncio.wait_for(session.channel_open.wait(), 10)
            with server.admin() as admin:
                live = await asyncio.to_thread(admin.get, "/v1/sessions?status=active")
                assert session.session_id in [s["id"] for s in live.json()["sessions"]]
            for text in ("Hello there", "What time is it?"):
                session.send({"type": "text", "text": text})
                await session.wait_event(
                    lambda e, said=text: e.get("type") == "turn" and e["user_text"] == said,
                    timeout=10,
                )
        finally:
            await session.close()
        return session.session_id

    sid = asyncio.run(asyncio.wait_for(talk(), 60))
    with server.admin() as admin:
        _wait(lambda: admin.get(f"/v1/sessions/{sid}").json()["status"] == "ended")
        record = admin.get(f"/v1/sessions/{sid}").json()
        assert record["character_id"] == "astronaut" and record["turns"] == 2
        assert record["started_at"] and record["ended_at"] and record["end_reason"]
        lines = admin.get(f"/v1/sessions/{sid}/transcript").json()["lines"]
        assert [(x["turn"], x["speaker"], x["text"]) for x in lines] == [
            (1, "user", "Hello there"),
            (1, "character", "You said: Hello there"),
            (2, "user", "What time is it?"),
            (2, "character", "You said: What time is it?"),
        ]
        assert lines[0]["typed"] is True and lines[0]["at"] <= lines[1]["at"]
        traces = admin.get(f"/v1/sessions/{sid}/traces").json()["turns"]
        assert [t["turn"] for t in traces] == [1, 2]
        assert traces[0]["latency"] == 0.22 and "answer_start" in traces[0]["marks"]
        ended = admin.get("/v1/sessions?status=ended").json()["sessions"]
        assert sid in [s["id"] for s in ended]
        assert sid not in [
            s["id"] for s in admin.get("/v1/sessions?status=active").json()["sessions"]
        ]


def test_ending_a_live_session_through_the_api_hangs_up(server: LiveServer) -> None:
    async def scenario() -> None:
        session = await connect(server.url, "astronaut")
        try:
            await session.wait_video(2)
            with server.admin() as admin:
                r = await asyncio.to_thread(admin.delete, f"/v1/sessions/{session.session_id}")
            assert r.status_code == 200 and r.json()["status"] == "ended"
            assert "API key" in r.json()["end_reason"]
            deadline = time.monotonic() + 5
            while len(server.registry) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(server.registry) == 0
        finally:
            await session.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_session_request_errors(server: LiveServer) -> None:
    with server.admin() as admin:
        error_of(admin.post("/v1/sessions", json={}), 400, "invalid_request")
        error_of(admin.post("/v1/sessions", json={"character_id": "x" * 100}), 400)
        error_of(admin.post("/v1/sessions", json={"character_id": "astronaut", "x": 1}), 400)
        error_of(admin.post("/v1/sessions", json={"character_id": "nobody"}), 404)
        error_of(admin.get("/v1/sessions/nope/transcript"), 404, "unknown_session")
        error_of(admin.get("/v1/sessions?status=sleeping"), 400)
        created = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()
        # an offer needs the session's token or a key allowed to create sessions
        r = httpx.post(server.url + created["offer_url"], json={"sdp": "v=0", "type": "offer"})
        error_of(r, 401)
        pending = admin.get(f"/v1/sessions/{created['session']['id']}").json()
        assert pending["status"] == "pending" and pending["turns"] == 0


def test_pending_sessions_that_never_connect_expire(server: LiveServer) -> None:
    store = server.app.state.services.store
    with server.admin() as admin:
        created = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()
        sid = created["session"]["id"]
        assert store.expire_pending(max_age=3600) == 0
        assert store.expire_pending(max_age=-1) >= 1
        ended = admin.get(f"/v1/sessions/{sid}").json()
        assert ended["status"] == "ended" and ended["end_reason"] == "never connected"


def test_active_sessions_filter_by_character(server: LiveServer) -> None:
    with server.admin() as admin:
        mine = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()["session"]
        r = admin.post(
            "/v1/characters",
            content=(Path(__file__).resolve().parents[2] / "assets/samples/astronaut.png")
            .read_bytes(),
            headers={"content-type": "image/png"},
        )
        other_id = r.json()["id"]
        other = admin.post("/v1/sessions", json={"character_id": other_id}).json()["session"]
        listed = admin.get(f"/v1/sessions?status=active&character_id={other_id}").json()
        ids = [s["id"] for s in listed["sessions"]]
        assert ids == [other["id"]] and mine["id"] not in ids
        page = admin.get("/v1/sessions?status=active&limit=1").json()
        assert len(page["sessions"]) == 1 and page["next_cursor"]
        rest = admin.get(f"/v1/sessions?status=active&cursor={page['next_cursor']}").json()
        assert page["sessions"][0]["id"] not in [s["id"] for s in rest["sessions"]]
