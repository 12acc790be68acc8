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
    async with running(conv) as pulled:
        await asyncio.sleep(0.5)
        assert conv.last_user_activity == 0.0  # nothing yet: the start of the session
        during = []
        for k in range(0, len(speech), 960):  # 20 ms packets in real time, like WebRTC
            conv.push_audio(AudioChunk(speech[k : k + 960], 48000))
            await asyncio.sleep(0.02)
            if k == 960 * 50:  # a second into the question: the user is speaking now
                during.append((conv.last_user_activity, conv.clock.now()))
        spoken_until = conv.clock.now()
        silence = np.zeros(960, np.float32)
        while not pulled.of_type("turn"):  # silence until the answer has played
            conv.push_audio(AudioChunk(silence, 48000))
            await asyncio.sleep(0.02)
        after_answer = conv.last_user_activity
        await asyncio.sleep(0.5)
        conv.handle_client_event({"type": "text", "text": "Thanks!"})
        typed_at = conv.clock.now()
        typed = conv.last_user_activity
        await wait_for(pulled, lambda p: len(p.of_type("turn")) == 2, timeout=20)
        assert conv.last_user_activity == typed  # answering is not the user's activity
    (seen, now), = during
    assert seen == pytest.approx(now, abs=0.05)
    # the end of the question, as heard (before the answer that followed)
    assert 0.5 < after_answer <= spoken_until + 0.05
    assert after_answer < pulled.of_type("reply")[0]["start"]
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
