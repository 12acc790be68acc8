"""Metrics from the REAL conversation (built-in brain, Piper voice, mesh-warp renderer): a typed
question over a real WebRTC client (aiortc), then ``/metrics`` read with Prometheus's parser:
the turn's stages as the session core traced them, and its own frame counters (frames sent,
late or skipped) reaching the server through the session's wrappers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from live_client import connect
from live_server import LiveServer
from prometheus_client.parser import text_string_to_metric_families

from talkie.server.app import ServerOptions
from talkie.session.trace import STAGES


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(options=ServerOptions(max_sessions=2)) as live:
        yield live


def test_a_real_turn_reaches_the_metrics(server: LiveServer) -> None:
    async def scenario() -> dict[str, object]:
        session = await connect(server.url, "astronaut", microphone=False)
        try:
            await asyncio.wait_for(session.channel_open.wait(), 30)
            await session.wait_event(lambda e: e.get("type") == "turn", timeout=60)  # greeting
            session.send({"type": "text", "text": "What is your name?"})
            turn = await session.wait_event(
                lambda e: e.get("type") == "turn" and e.get("user_text"), timeout=90
            )
            # the live session's own counter, through MessageLimitedConversation and the peer
            peers = server.registry.peers()
            assert [type(getattr(p.conversation, "late_frames", None)) for p in peers] == [int]
            return turn
        finally:
            await session.close()

    turn = asyncio.run(asyncio.wait_for(scenario(), 180))
    with server.admin() as admin:
        text = admin.get("/metrics").text
    m = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    marks = turn["trace"]["marks"]  # type: ignore[index]
    print(f"\nreal turn: latency {turn['trace']['latency']} s, marks {marks}")  # type: ignore[index]
    assert m[("talkie_turns_total", (("interrupted", "false"),))] >= 2  # greeting + answer
    assert m[("talkie_turn_latency_seconds_count", ())] >= 1
    for stage in STAGES[1:]:
        if stage in marks:
            assert m[("talkie_turn_stage_seconds_count", (("stage", stage),))] >= 1, stage
    assert m[("talkie_tts_first_audio_seconds_count", ())] >= 1
    # frames and late frames, as the real conversation counted them
    assert m[("talkie_video_frames_total", ())] >= 24
    assert ("talkie_video_late_frames_total", ()) in m
    assert (
        m[("talkie_sessions", (("state", "ended"),))] + m[("talkie_sessions", (("state", "live"),))]
        >= 1
    )
    r = httpx.get(server.url + "/metrics")
    assert r.status_code == 401
