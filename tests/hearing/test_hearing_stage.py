"""The ``Hearing`` stage end to end: threads, async iterator, resampling, gating, real models."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hearing_testutil import (
    RATE,
    FakeRecognizer,
    Utterance,
    collect,
    scene,
    speak,
    stream,
    to_rate,
)

from talkie.errors import EngineError
from talkie.hearing import FinalTranscript, Hearing, HearingOptions, WhisperAsr, word_errors
from talkie.messages import AudioChunk, Transcript, VoiceActivity

FRAME = 0.032


def _kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    out = []
    for e in events:
        if isinstance(e, VoiceActivity):
            out.append("start" if e.speaking else "stop")
        else:
            out.append("final" if e.final else "partial")
    return out


async def _run(hearing: Hearing, feed) -> list:  # type: ignore[no-untyped-def,type-arg]
    consumer = asyncio.create_task(collect(hearing))
    await feed()
    await hearing.flush()
    await hearing.aclose()
    return await asyncio.wait_for(consumer, 5)


@pytest.mark.asyncio
async def test_live_48k_turn_gives_start_partials_stop_final(
    whisper: WhisperAsr, long_request: Utterance
) -> None:
    audio, start, end = scene(long_request, before=0.5, after=0.8, snr_db=20.0, seed=1)
    hearing = Hearing(recognizer=whisper)
    await asyncio.to_thread(hearing.load)

    async def feed() -> None:  # WebRTC-like: 48 kHz, 20 ms chunks, twice real time
        await stream(hearing, to_rate(audio, 48_000), rate=48_000, speed=2.0, start_pts=10.0)

    events = await _run(hearing, feed)
    kinds = _kinds(events)
    assert kinds[0] == "start" and kinds[-2:] == ["stop", "final"], kinds
    assert kinds.count("partial") >= 2 and set(kinds[1:-2]) == {"partial"}, kinds
    begin, stop, final = events[0], events[-2], events[-1]
    # Media times follow the chunks' pts (10 s offset) through the 48 -> 16 kHz resampler.
    assert abs(begin.pts - (10.0 + start)) <= 2 * FRAME
    assert -2 * FRAME <= stop.pts - (10.0 + end) <= 4 * FRAME
    assert isinstance(final, FinalTranscript) and final.speech_end == stop.pts
    assert final.pts >= stop.pts
    assert word_errors(long_request.text, final.text) <= 1, final.text
    partials = [e for e in events if isinstance(e, Transcript) and not e.final]
    assert [p.pts for p in partials] == sorted(p.pts for p in partials)
    assert all(begin.pts < p.pts <= stop.pts + 0.2 for p in partials)
    [trace] = hearing.traces
    assert trace.text == final.text and trace.partials == len(partials)
    assert trace.speech_end_pts == stop.pts and trace.final_pts == final.pts
    assert trace.endpoint_delay_s <= 0.3 + FRAME + 1e-6
    assert trace.final_wall >= trace.endpoint_wall >= trace.speech_end_wall
    assert trace.asr_ms > 0 and 0 < trace.latency_s < 5


@pytest.mark.asyncio
async def test_two_questions_pushed_at_once(
    whisper: WhisperAsr, question: Utterance, espeak_f3
) -> None:  # type: ignore[no-untyped-def]
    second = speak(espeak_f3, "Where is the nearest train station?")
    first_audio, _, _ = scene(question, before=0.4, after=1.0, snr_db=25.0, seed=2)
    second_audio, _, _ = scene(second, before=0.2, after=1.0, snr_db=25.0, seed=3)
    audio = np.concatenate([first_audio, second_audio])
    hearing = Hearing(recognizer=whisper)

    async def feed() -> None:
        await stream(hearing, audio, speed=None, chunk_s=0.1)  # faster than real time

    events = await _run(hearing, feed)
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [f.utterance for f in finals] == [1, 2]
    assert word_errors(question.text, finals[0].text) <= 1, finals[0].text
    assert word_errors(second.text, finals[1].text) <= 1, finals[1].text
    assert _kinds(events).count("start") == 2 and _kinds(events).count("stop") == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("echo_dbfs", [-26.0, -40.0])
async def test_gate_ignores_own_voice_but_hears_a_loud_barge_in(
    piper,
    espeak_f3,
    long_request: Utterance,
    echo_dbfs: float,  # type: ignore[no-untyped-def]
) -> None:
    """The character's reply comes back into the microphone at a normal speech level (-26 dBFS,
    no echo cancellation) or as a cancelled residual (-40 dBFS). Neither starts a turn; a user
    talking over it 14 dB louder than the echo (or at -20 dBFS) does."""
    echo, _, _ = scene(long_request, before=0.2, after=0.0, snr_db=30.0, level_dbfs=echo_dbfs)
    user = speak(espeak_f3, "Stop, wait a second.")
    user_level = max(echo_dbfs + 14.0, -20.0)
    loud, _, _ = scene(user, before=0.0, after=0.0, snr_db=None, level_dbfs=user_level)
    tail = echo[: len(loud)] if len(echo) >= len(loud) else np.pad(echo, (0, len(loud) - len(echo)))
    barge = loud + tail[::-1]  # the character is still talking underneath
    fake = FakeRecognizer()
    hearing = Hearing(recognizer=fake)
    consumer = asyncio.create_task(collect(hearing))
    hearing.set_muted(True)
    await stream(hearing, echo, speed=None)
    await hearing.flush()
    assert hearing.traces == [] and fake.calls == []
    await stream(hearing, barge, speed=None, start_pts=len(echo) / RATE)
    await hearing.flush()
    hearing.set_muted(False)  # the session cancels the reply on barge-in
    await stream(
        hearing, np.zeros(RATE, np.float32), speed=None, start_pts=(len(echo) + len(barge)) / RATE
    )
    await hearing.flush()
    await hearing.aclose()
    events = await consumer
    assert _kinds(events)[0] == "start", _kinds(events)
    assert events[0].pts >= len(echo) / RATE - 1e-6  # nothing started during the echo alone
    assert events[0].pts <= len(echo) / RATE + 0.3
    assert hearing.traces and hearing.traces[0].barge_in


@pytest.mark.asyncio
async def test_muted_without_barge_in_ignores_everything(question: Utterance) -> None:
    audio, _, _ = scene(question, before=0.3, after=0.6, snr_db=None, level_dbfs=-12.0)
    hearing = Hearing(options=HearingOptions(barge_in_threshold=None), recognizer=FakeRecognizer())
    hearing.set_muted(True)
    assert hearing.muted

    async def feed() -> None:
        await stream(hearing, audio, speed=None)

    assert await _run(hearing, feed) == []


@pytest.mark.asyncio
async def test_clear_ends_the_turn_without_a_final(question: Utterance) -> None:
    audio, start, _ = scene(question, before=0.3, after=0.6, snr_db=None)
    hearing = Hearing(recognizer=FakeRecognizer())

    async def feed() -> None:
        cut = round((start + 0.8) * RATE)
        await stream(hearing, audio[:cut], speed=None)
        await hearing.flush()
        hearing.clear()
        await stream(hearing, np.zeros(RATE, np.float32), speed=None, start_pts=cut / RATE)

    events = await _run(hearing, feed)
    assert _kinds(events)[0] == "start" and _kinds(events)[-1] == "stop"
    assert "final" not in _kinds(events)


@pytest.mark.asyncio
async def test_engine_errors_reach_the_consumer(question: Utterance) -> None:
    audio, _, _ = scene(question, before=0.3, after=0.6, snr_db=None)
    hearing = Hearing(recognizer=FakeRecognizer(error=EngineError("whisper broke")))
    seen: list = []  # type: ignore[type-arg]

    async def consume() -> None:
        async for event in hearing:
            seen.append(event)

    consumer = asyncio.create_task(consume())
    await stream(hearing, audio, speed=None)
    with pytest.raises(EngineError, match="whisper broke"):
        await asyncio.wait_for(consumer, 5)
    assert _kinds(seen)[0] == "start"
    with pytest.raises(EngineError):
        hearing.push(AudioChunk(np.zeros(320, np.float32), RATE))
    hearing.close()


@pytest.mark.asyncio
async def test_input_checks_and_close() -> None:
    async with Hearing(recognizer=FakeRecognizer()) as hearing:
        with pytest.raises(ValueError, match="mono"):
            hearing.push(AudioChunk(np.zeros((320, 2), np.float32), RATE))
        hearing.push(AudioChunk(np.zeros(320, np.int16), RATE))  # int16 PCM is accepted
        await hearing.flush()
    with pytest.raises(RuntimeError, match="closed"):
        hearing.push(AudioChunk(np.zeros(320, np.float32), RATE))
    assert [e async for e in hearing] == []  # a closed stage's iterator ends at once
