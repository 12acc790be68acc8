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
from talkie.hearing import FinalTranscript, Hearing, WhisperAsr, word_errors
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
@pytest.mark.parametrize("echo_db", [6.0, 30.0], ids=["no-cancellation", "cancelled"])
async def test_the_characters_echo_is_not_the_user_but_talking_over_it_is(
    piper,
    espeak_f3,
    long_request: Utterance,
    echo_db: float,  # type: ignore[no-untyped-def]
) -> None:
    """The character's reply (the reference, pushed as it plays) comes back into the
    microphone 150 ms later, ``echo_db`` quieter: no echo cancellation (6 dB) or a cancelled
    residual (30 dB). Once the first half second has taught the gate the echo path, the echo
    starts nothing; a user talking over it 10 dB louder than the echo does, at once. (A loud
    echo in that first half second may start a segment: the session recognises its words as
    the character's own and goes on, see ``talkie.session.turns``.)"""
    reply, _, _ = scene(long_request, before=0.2, after=0.0, snr_db=None, level_dbfs=-18.0)
    reply = np.concatenate([reply, reply])  # the character talks on for ~7 s
    delay = round(0.15 * RATE)
    echo = np.concatenate([np.zeros(delay, np.float32), reply])[: len(reply)]
    echo *= 10 ** (-echo_db / 20)
    user = speak(espeak_f3, "Stop, wait a second.")
    user_at = len(reply) // 2
    loud, _, _ = scene(user, before=0.0, after=0.0, snr_db=None, level_dbfs=-18.0 - echo_db + 10)
    mic = echo.copy()
    mic[user_at : user_at + len(loud)] += loud[: len(mic) - user_at]
    mic += np.random.default_rng(1).standard_normal(len(mic)).astype(np.float32) * 1e-4
    mic = np.concatenate([mic, np.zeros(RATE, np.float32)])
    fake = FakeRecognizer()
    hearing = Hearing(recognizer=fake)
    consumer = asyncio.create_task(collect(hearing))
    step = RATE // 50
    for k in range(0, len(mic) - step + 1, step):
        pts = k / RATE
        if k < len(reply):  # what the character plays now, as the session reports it
            hearing.push_reference(AudioChunk(reply[k : k + step], RATE, pts))
        hearing.push(AudioChunk(mic[k : k + step], RATE, pts))
    await hearing.flush()
    await hearing.aclose()
    events = await consumer
    starts = [e.pts for e in events if isinstance(e, VoiceActivity) and e.speaking]
    assert starts, _kinds(events)
    learning = [t for t in starts if t < 0.2 + 0.15 + 0.6]
    user_span = (user_at / RATE - 0.05, (user_at + len(loud)) / RATE)
    heard = [t for t in starts if t not in learning]
    assert heard and all(user_span[0] <= t <= user_span[1] for t in heard), starts
    start = heard[0]
    assert user_at / RATE - 0.05 <= start <= user_at / RATE + 0.3, (start, user_at / RATE)
    assert hearing.traces[-1].barge_in  # it began over the character's voice
    if echo_db >= 20:
        assert not learning  # a cancelled residual is too quiet to be taken for the user


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


@pytest.mark.asyncio
async def test_a_shared_recognizer_is_warmed_by_the_first_session_only() -> None:
    """A session's start waits for ``load``: the recognizer's warm-up call (a second of
    silence, slow the first time) is made once per recognizer, not once per session."""
    shared, other = FakeRecognizer(), FakeRecognizer()
    for recognizer in (shared, shared, shared, other):
        async with Hearing(recognizer=recognizer) as hearing:
            await asyncio.to_thread(hearing.load)
    assert shared.calls == [1.0] and other.calls == [1.0]
