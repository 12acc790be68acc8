"""Sessions end on their own, seen by a WebRTC client (aiortc, fake conversations): typing
keeps a session alive and silence ends it after a goodbye; the maximum length ends even a busy
one; the heartbeat drops only clients that ping and then fall silent. (A crashed browser and
the page's own goodbye: tests/live/test_live_lifetime.py.)"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_client import connect  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402
from talkie.transport.lifetime import SessionLimits  # noqa: E402
from talkie.transport.webrtc import WebRtcOptions  # noqa: E402


def limited_server(**limits: Any) -> LiveServer:
    options = ServerOptions(max_sessions=4, webrtc=WebRtcOptions(limits=SessionLimits(**limits)))
    return LiveServer(options=options, conversation_factory=FakeConversation)


@pytest.fixture(scope="module")
def idle_server() -> Iterator[LiveServer]:
    with limited_server(idle_timeout=2.5, max_duration=None) as server:
        yield server


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


async def _closed_by_server(server: LiveServer, session_id: str) -> None:
    """The client stays on the line until the server hangs up (after its goodbye)."""
    deadline = time.monotonic() + 30
    while server.registry.get(session_id) is not None:
        assert time.monotonic() < deadline, "the server did not end the session"
        await asyncio.sleep(0.05)


def test_typing_keeps_a_session_alive_and_silence_ends_it(idle_server: LiveServer) -> None:
    async def scenario() -> tuple[str, float, float, list[dict[str, Any]]]:
        session = await connect(idle_server.url, "astronaut", microphone=False)
        try:
            await asyncio.wait_for(session.channel_open.wait(), 10)
            for i in range(6):  # 4.5 s of typing, longer than the 2.5 s idle timeout
                session.send({"type": "text", "text": f"message {i}"})
                last = time.monotonic()
                await asyncio.sleep(0.75)
            assert not [e for e in session.events if e.get("type") == "session_end"]
            await session.wait_event(lambda e: e.get("type") == "session_end", timeout=15)
            ended = time.monotonic()
            await _closed_by_server(idle_server, session.session_id)
            return session.session_id, last, ended, list(session.events)
        finally:
            await session.close()

    session_id, last, ended, events = asyncio.run(asyncio.wait_for(scenario(), 60))
    print(f"idle session ended {ended - last:.1f} s after the last message")
    assert idle_server.end_reason(session_id) == "idle timeout"
    assert ended - last >= 2.0  # counted from the last message, not from the start
    kinds = [e.get("type") for e in events]
    assert kinds.index("session_end") < len(kinds) - 1  # the goodbye follows the notice
    assert SessionLimits().idle_farewell in [e.get("text") for e in events]


def test_maximum_length_ends_even_a_busy_session() -> None:
    async def scenario(server: LiveServer) -> tuple[str, list[dict[str, Any]]]:
        session = await connect(server.url, "astronaut", microphone=False)
        try:
            await asyncio.wait_for(session.channel_open.wait(), 10)
            for _ in range(12):  # chatting all along: not idle
                session.send({"type": "text", "text": "still here"})
                await asyncio.sleep(0.5)
                if any(e.get("type") == "session_end" for e in session.events):
                    break
            await session.wait_event(lambda e: e.get("type") == "session_end", timeout=15)
            await _closed_by_server(server, session.session_id)
            return session.session_id, list(session.events)
        finally:
            await session.close()

    with limited_server(max_duration=2.0, idle_timeout=60.0) as server:
        session_id, events = asyncio.run(asyncio.wait_for(scenario(server), 60))
        _wait(lambda: server.registry.get(session_id) is None, 30, "the session to end")
        (end,) = [e for e in events if e.get("type") == "session_end"]
        assert end["reason"] == "max_duration"
        assert server.end_reason(session_id) == "maximum length reached"
        assert FakeConversation.instances[-1].farewells == [SessionLimits().max_duration_farewell]


def test_heartbeat_only_for_clients_that_ping() -> None:
    """A client that pinged once and went quiet is closed; one that never pings is left to
    WebRTC's own checks (older clients, scripts)."""

    async def scenario(server: LiveServer) -> None:
        pinging = await connect(server.url, "astronaut", microphone=False)
        quiet = await connect(server.url, "astronaut", microphone=False)
        try:
            await asyncio.wait_for(pinging.channel_open.wait(), 10)
            await asyncio.wait_for(quiet.channel_open.wait(), 10)
            pinging.send({"type": "ping", "t": 1})
            await pinging.wait_event(lambda e: e.get("type") == "pong")
            deadline = time.monotonic() + 10
            while server.registry.get(pinging.session_id) is not None:
                assert time.monotonic() < deadline, "the silent client was not dropped"
                await asyncio.sleep(0.05)
            assert server.registry.get(quiet.session_id) is not None
        finally:
            await pinging.close()
            await quiet.close()

    with limited_server(heartbeat_timeout=1.0) as server:
        asyncio.run(asyncio.wait_for(scenario(server), 60))


def test_session_limits_decide_what_ends_a_session() -> None:
    limits = SessionLimits(max_duration=3600.0, idle_timeout=300.0)
    assert limits.ending(elapsed=30.0, idle=299.9) is None
    idle = limits.ending(elapsed=400.0, idle=300.0)
    assert idle is not None and (idle.reason, idle.close_reason) == ("idle", "idle timeout")
    assert "5 min" in idle.message
    longest = limits.ending(elapsed=3600.0, idle=300.0)  # both: the maximum length wins
    assert longest is not None and longest.reason == "max_duration"
    assert longest.farewell == limits.max_duration_farewell and "60 min" in longest.message
    unlimited = SessionLimits(max_duration=None, idle_timeout=None)
    assert unlimited.ending(elapsed=1e9, idle=1e9) is None
    with pytest.raises(ValueError):
        SessionLimits(idle_timeout=0)
