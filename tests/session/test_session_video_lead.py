"""Frames taken early for encoding: handed out ``lead`` before their time, sent on time."""

from __future__ import annotations

import asyncio
import statistics

import pytest
from session_harness import make_conversation

from talkie.session.contract import VIDEO_CLOCK_RATE
from talkie.transport.encoder import X264Encoder
from talkie.transport.tracks import ENCODE_LEAD_S, ConversationVideoTrack

pytestmark = pytest.mark.asyncio


async def test_frames_come_a_lead_early_and_never_earlier(nova) -> None:  # type: ignore[no-untyped-def]
    conv = make_conversation(nova, greet=False)
    await conv.start()
    try:
        early = []
        for _ in range(48):
            frame = await conv.next_video_frame(lead=0.04)
            early.append(frame.pts - conv.media_time())
    finally:
        await conv.close()
    # Never before it was asked for (a frame's moment minus the lead)...
    assert max(early) <= 0.04 + 0.002, max(early)
    # ...and usually right then: the renderer works ahead of the lead.
    assert statistics.median(early) > 0.02, early


async def test_the_track_encodes_early_and_sends_on_time(nova) -> None:  # type: ignore[no-untyped-def]
    conv = make_conversation(nova, greet=False)
    failures: list[str] = []
    track = ConversationVideoTrack(conv, on_failure=failures.append)
    track.encoder = X264Encoder()
    await conv.start()
    try:
        sent_at_minus_pts = []
        for _ in range(36):
            packet = await track.recv()
            sent_at_minus_pts.append(conv.media_time() - packet.pts / VIDEO_CLOCK_RATE)
        await asyncio.sleep(0)
    finally:
        track.stop()
        track.encoder.close()
        await conv.close()
    assert not failures
    # aiortc sends what recv() returns at once: never before the frame's moment.
    assert min(sent_at_minus_pts) >= 0, min(sent_at_minus_pts)
    # The encoder's time was spent inside the lead (a loaded CI box may make a few late).
    assert statistics.median(sent_at_minus_pts) < ENCODE_LEAD_S, sent_at_minus_pts
