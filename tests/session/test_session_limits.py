"""What the transport's session timers need from a conversation (contract.LiveConversation):
``last_user_activity`` follows the user's speech and typed messages (not the character's
answers), and ``farewell`` speaks as the character and returns once it has been played."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from scipy.signal import resample_poly
from session_harness import make_conversation, running, wait_for

from talkie.messages import AudioChunk
from talkie.offline import synthesize
from talkie.voice import load_tts

pytestmark = pytest.mark.asyncio


async def test_user_activity_follows_speech_and_typing_not_answers(nova) -> None:  # type: ignore[no-untyped-def]
    question = synthesize(load_tts("espeak:en-us+m3"), "What is your name?")
    speech = resample_poly(question.audio, 320, 147).astype(np.float32)  # 22050 -> 48000 Hz
    conv = make_conversation(nova, greet=False)
    during: list[tuple[float, float]] = []
    spoken_until = [0.0]

    async def microphone() -> None:
        """The question once, then silence, in 20 ms packets in real time (like WebRTC)."""
        for k in range(0, len(speech), 960):
            conv.push_audio(AudioChunk(speech[k : k + 960], 48000))
            await asyncio.sleep(0.02)
            if k == 960 * 50:  # a second into the question: the user is speaking now
                during.append((conv.last_user_activity, conv.clock.now()))
        spoken_until[0] = conv.clock.now()
        while True:
            conv.push_audio(AudioChunk(np.zeros(960, np.float32), 48000))
            await asyncio.sleep(0.02)

    async with running(conv) as pulled:
        await asyncio.sleep(0.5)
        assert conv.last_user_activity == 0.0  # nothing yet: the start of the session
        mic = asyncio.create_task(microphone())
        try:
            await wait_for(pulled, lambda p: p.of_type("turn"), timeout=30)
            after_question = conv.last_user_activity
            await asyncio.sleep(1.5)  # silence on the line while the character is idle
            assert conv.last_user_activity == after_question
            conv.handle_client_event({"type": "text", "text": "Tell me about the Moon."})
            typed_at = conv.clock.now()
            typed = conv.last_user_activity
            await wait_for(pulled, lambda p: p.of_type("reply") and p.of_type("reply")[-1][
                "start"] > typed_at, timeout=20)  # fmt: skip
            await asyncio.sleep(1.0)  # the answer is playing: not the user's activity
            assert conv.last_user_activity == typed
        finally:
            mic.cancel()
    ((seen, now),) = during
    assert seen == pytest.approx(now, abs=0.05)
    # the end of the question, as heard (media time; on a loaded machine the 20 ms packets
    # arrive late, so it runs up to a few packets past the clock; an answer starts later still)
    assert 0.5 < after_question <= spoken_until[0] + 0.25
    assert typed == pytest.approx(typed_at, abs=0.05)


async def test_farewell_is_spoken_and_returns_once_played(nova) -> None:  # type: ignore[no-untyped-def]
    conv = make_conversation(nova, greet=False)
    async with running(conv) as pulled:
        await asyncio.sleep(0.5)
        await asyncio.wait_for(conv.farewell("Goodbye for now, talk to you soon!"), 20)
        returned_at = conv.clock.now()
        await asyncio.sleep(0.3)
    replies = pulled.of_type("reply")
    assert replies and "Goodbye" in replies[0]["text"]
    start = replies[0]["start"]
    loud = [p for a, p in zip(pulled.audio, pulled.audio_pts, strict=True)
            if p >= start and np.sqrt(np.mean(a**2)) > 0.01]  # fmt: skip
    assert loud and pulled.audio_rms(start, start + 0.5) > 0.02
    assert returned_at >= loud[-1]  # it returned after the last of the goodbye was played
    (turn,) = pulled.of_type("turn")
    assert turn["user_text"] == "" and turn["said"].startswith("Goodbye for now")
