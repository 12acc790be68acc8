"""Opt-in memory of end users across sessions: written per turn only when the session asked for
it, given to the next session of the same person, readable and deletable."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _session(server: LiveServer, **body: Any) -> tuple[str, Any]:
    """Run one session with a typed message; returns its id and the conversation's character."""

    async def talk() -> tuple[str, Any]:
        session = await connect(
            server.url, "astronaut", api_key=server.admin_key, session_fields=body
        )
        try:
            await asyncio.wait_for(session.channel_open.wait(), 10)
            session.send({"type": "text", "text": "My name is Bo and I love tulips."})
            await session.wait_event(lambda e: e.get("type") == "turn", timeout=10)
            return session.session_id, FakeConversation.instances[-1].character
        finally:
            await session.close()

    return asyncio.run(asyncio.wait_for(talk(), 30))


def _memory(admin: httpx.Client, user: str) -> Any:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = admin.get(f"/v1/characters/astronaut/memories/{user}")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.05)
    return None


def test_memory_is_opt_in_and_reaches_the_next_session(server: LiveServer) -> None:
    with server.admin() as admin:
        _session(server, end_user_id="user-a")  # not remembered
        time.sleep(0.3)
        error_of(admin.get("/v1/characters/astronaut/memories/user-a"), 404, "no_memory")

        sid, character = _session(server, end_user_id="user-b", remember=True)
        assert character.recall == ""  # nothing known yet
        memory = _memory(admin, "user-b")
        assert memory and "Bo" in memory["notes"] and "tulips" in memory["notes"]
        assert admin.get(f"/v1/sessions/{sid}").json()["remember"] is True

        _, character = _session(server, end_user_id="user-b", remember=True)
        assert "tulips" in character.recall  # the next session starts knowing them
        _, character = _session(server, end_user_id="user-b")  # without remember: no recall
        assert character.recall == ""

        assert admin.delete("/v1/characters/astronaut/memories/user-b").status_code == 204
        error_of(admin.get("/v1/characters/astronaut/memories/user-b"), 404)
        _session(server, end_user_id="user-c", remember=True)
        assert _memory(admin, "user-c")
        r = admin.delete("/v1/end-users/user-c/memories")
        assert r.status_code == 200 and r.json()["deleted"] == 1
        error_of(admin.post("/v1/sessions", json={"character_id": "astronaut", "remember": True}),
                 400)  # fmt: skip
        key = admin.post("/v1/keys", json={"name": "c", "scopes": ["characters"]}).json()
        r = admin.delete("/v1/end-users/user-c/memories",
                         headers={"Authorization": f"Bearer {key['secret']}"})  # fmt: skip
        error_of(r, 403, "forbidden")
