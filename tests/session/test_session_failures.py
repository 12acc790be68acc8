"""A provider failing mid-session: the page is told what failed (``error`` event with its
``stage``, which the server's metrics count), and the character stays live.

The failing voice and recogniser wrap the real ones and fail on demand (fault injection); the
conversation, renderer and brain under test are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
from session_harness import espeak_48k, running, speak, wait_for

from talkie.errors import EngineError
from talkie.hearing import Hearing
from talkie.hearing.asr import AsrResult
from talkie.messages import SpeechClip
from talkie.session import Conversation, SessionOptions
from talkie.session.parts import build_parts

pytestmark = pytest.mark.asyncio


class BrokenVoice:
    """The real voice until ``broken`` is set, then every synthesis fails."""

    def __init__(self, voice) -> None:  # type: ignore[no-untyped-def]
        self._voice = voice
        self.name = voice.name
        self.broken = False

    @property
    def sample_rate(self) -> int:
        return int(self._voice.sample_rate)

    def load(self) -> None:
        self._voice.load()

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        if self.broken:
            raise EngineError("the speech model process died")
        yield from self._voice.synthesize(text)


class BrokenRecognizer:
    """Transcribes silence (the warm-up) like the real one; fails on speech."""

    def __init__(self, asr) -> None:  # type: ignore[no-untyped-def]
        self._asr = asr

    def load(self) -> None:
        self._asr.load()

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult:
        if float(np.abs(audio).max(initial=0.0)) > 0.01:
            raise EngineError("Whisper transcription failed: out of memory")
        return self._asr.transcribe(audio, prompt=prompt)


def _conversation(nova, models, *, voice=None, recognizer=None) -> Conversation:  # type: ignore[no-untyped-def]
    options = SessionOptions(greet=False, seed=3, brain="builtin")
    parts = build_parts(nova, options)
    if voice is not None:
        parts = dataclasses.replace(parts, voice=voice)
    if recognizer is not None:
        hearing = Hearing(options=options.hearing, recognizer=recognizer, turn_model=None)
        parts = dataclasses.replace(parts, hearing=hearing)
    return Conversation(character=nova, options=options, parts=parts)


async def test_a_failing_voice_is_reported_as_tts_and_the_next_turn_is_spoken(
    nova, models
) -> None:  # type: ignore[no-untyped-def]
    voice = BrokenVoice(models.voice)
    conv = _conversation(nova, models, voice=voice)
    async with running(conv) as pulled:
        voice.broken = True
        conv.handle_client_event({"type": "text", "text": "How far is the Moon?"})
        await wait_for(pulled, lambda p: p.of_type("error"), timeout=20)
        await wait_for(pulled, lambda p: p.of_type("turn"), timeout=10)
        frames_before = len(pulled.video_pts)
        await asyncio.sleep(1.0)
        frames_after = len(pulled.video_pts)
        voice.broken = False  # the voice is back: the character answers again
        conv.handle_client_event({"type": "text", "text": "What is your name?"})
        await wait_for(pulled, lambda p: p.of_type("reply"), timeout=20)
    (error,) = pulled.of_type("error")
    assert error["stage"] == "tts" and "voice" in error["message"], error
    failed = pulled.of_type("turn")[0]
    assert failed["said"] == "" and "speech synthesis failed" in failed["trace"]["error"]
    assert frames_after - frames_before >= 18, "the video kept going"
    assert pulled.of_type("reply")[0]["turn"] > failed["turn"]


async def test_a_failing_recogniser_is_reported_as_asr(nova, models) -> None:  # type: ignore[no-untyped-def]
    question = espeak_48k("How far away is the Moon?")
    audio48 = np.concatenate([question, np.zeros(int(1.5 * 48000), np.float32)])
    conv = _conversation(nova, models, recognizer=BrokenRecognizer(models.recognizer))
    async with running(conv) as pulled:
        await asyncio.sleep(0.3)
        await speak(conv, audio48)
        await wait_for(pulled, lambda p: p.of_type("error"), timeout=20)
        frames_before = len(pulled.video_pts)
        await asyncio.sleep(1.0)
    (error,) = pulled.of_type("error")
    assert error["stage"] == "asr", error
    assert len(pulled.video_pts) - frames_before >= 20, "the video kept going"
