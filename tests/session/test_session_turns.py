"""Turn-taking as people talk, on virtual time with real ears, brain, voice and face.

The microphone is a scripted track of espeak-ng voices (``speech_set``); the conversation core
runs on a virtual-time loop (``virtual_time``), so these tests are exact and fast: a minute of
talk takes a few seconds. What is checked is what a user would notice: one answer per question
however many breaths it took, no words lost, the character stopping when talked over (and not
for "mm-hm"), and how soon the answer is heard.
"""

from __future__ import annotations

import numpy as np
import pytest
from speech_set import MULTI_PART, VOICES, Track
from turn_harness import Outcome, converse, make
from virtual_time import run_virtual

from talkie.hearing import normalize_words, word_errors

# Accents are the benchmark's business (bench/conversation.py); here the words must come through.
US_VOICES = [v for v in VOICES if v[0].startswith("en-us")]


def run(nova, models, track: Track, seconds: float, mic=None, **kw) -> Outcome:  # type: ignore[no-untyped-def]
    conv = make(nova, models, greet=kw.pop("greet", False))
    audio = track.audio if mic is None else mic
    return run_virtual(converse(conv, audio, seconds=seconds, **kw))


def answer_text(out: Outcome) -> str:
    return " ".join(t["said"] for t in out.turns())


@pytest.mark.parametrize(
    "index", [0, 5, 11, 7], ids=["preamble", "dangling", "two-questions", "three-parts"]
)
def test_a_question_in_several_breaths_is_one_turn_answered_once(nova, models, index) -> None:  # type: ignore[no-untyped-def]
    q = MULTI_PART[index]
    track = Track(1.0)
    end = track.ask(0, q, 1.0, US_VOICES[index % len(US_VOICES)])
    out = run(nova, models, track, end + 9.0)
    turns = out.turns()
    assert len(turns) == 1, [t["user_text"] for t in turns]
    (turn,) = turns
    assert word_errors(q.text, turn["user_text"]) <= 0.4 * len(normalize_words(q.text)), turn
    assert not turn["interrupted"]
    # Answered after the LAST breath, promptly.
    last = track.spoken[-1]
    start = turn["trace"]["marks"]["answer_start"]
    assert last.end < start < last.end + 0.9, (last, turn["trace"])
    # Whatever the character began to say while the user was still asking (an answer to the
    # first breath, if that was a question itself) stopped as soon as the user went on.
    parts = track.spoken
    for before, after in zip(parts, parts[1:], strict=False):
        for a, b in out.sound_spans():
            if before.end < a < after.start:
                assert b < after.start + 0.2, (a, b, after)


def test_a_one_breath_question_is_answered_within_the_endpoint(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("How far away is the Moon?", 1.0, voice=VOICES[0])
    out = run(nova, models, track, end + 8.0)
    (turn,) = out.turns()
    assert "kilometres" in turn["said"]
    latency = turn["trace"]["latency"]
    assert 0.3 < latency < 0.6, turn["trace"]  # the 0.3 s endpoint + placing, no extra wait


def test_words_said_over_the_greeting_are_heard_and_answered(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("How long is a day on Mars?", 1.2, voice=VOICES[2])
    out = run(nova, models, track, end + 9.0, greet=True)
    greeting = [t for t in out.of_type("turn") if not t["user_text"]]
    assert greeting and greeting[0]["interrupted"], "the greeting stopped for the question"
    (turn,) = out.turns()
    assert "mars" in normalize_words(turn["user_text"]) and "hours" in turn["said"]
    # The greeting's sound stopped soon after the user began (pause at the speech onset).
    stop = out.last_sound_between(1.0, end)
    assert stop is not None and stop < 1.2 + 0.25, stop


def test_mm_hm_does_not_stop_the_answer_and_is_recorded(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("How do you listen to me?", 1.0, voice=VOICES[0])
    track.say("Okay.", end + 2.5, voice=US_VOICES[2])
    out = run(nova, models, track, end + 16.0)
    (turn,) = out.turns()
    assert not turn["interrupted"] and len(turn["said"].split()) > 15, turn["said"]
    assert turn["backchannels"], "the backchannel is kept with the turn"
    assert out.of_type("backchannel")
    replies = " ".join(e["text"] for e in out.of_type("reply"))
    # The answer went on after the pause: every word of it was heard, once or after a restart.
    assert set(normalize_words(turn["said"])) == set(normalize_words(replies))


def test_talking_over_the_answer_stops_it_and_starts_the_next_turn(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("How do you listen to me?", 1.0, voice=VOICES[0])
    barge_at = end + 3.0
    barge_end = track.say("Wait, how far away is the Moon?", barge_at, voice=US_VOICES[3])
    out = run(nova, models, track, barge_end + 9.0)
    turns = out.turns()
    assert len(turns) == 2, [t["user_text"] for t in turns]
    first, second = turns
    assert first["interrupted"] and 0 < len(first["said"]) < 120
    assert "moon" in normalize_words(second["user_text"]) and "kilometres" in second["said"]
    stop = out.last_sound_between(barge_at - 1.0, barge_at + 1.0)
    assert stop is not None and stop - barge_at < 0.2, stop - barge_at  # within one step


def test_the_characters_own_echo_does_not_interrupt_it(nova, models) -> None:  # type: ignore[no-untyped-def]
    # A laptop without echo cancellation: the character's voice comes back 6 dB down, 150 ms
    # late. The user waits for the greeting, asks, lets the answer play, then talks over it,
    # 10 dB louder than that echo.
    track = Track(1.0)
    asked = track.say("How do you listen to me?", 5.0, voice=VOICES[0])
    barge_at = asked + 3.5
    track.say("How far away is the Moon?", barge_at, voice=US_VOICES[1])
    mic = track.audio * 3.2
    out = run(nova, models, track, barge_at + 10.0, mic=mic, greet=True, echo_db=6.0)
    greeting = [t for t in out.of_type("turn") if not t["user_text"]]
    assert greeting and not greeting[0]["interrupted"], "its own greeting did not stop it"
    assert "how I work" in greeting[0]["said"]
    turns = out.turns()
    assert [normalize_words(t["user_text"])[:2] for t in turns] == [["how", "do"], ["how", "far"]]
    assert turns[0]["interrupted"] and "kilometres" in turns[1]["said"]
    # The answer played without a pause until the user spoke.
    spans = [s for s in out.sound_spans() if asked < s[0] < barge_at]
    assert len(spans) == 1 and spans[0][1] > barge_at, spans


def test_no_word_is_lost_when_the_microphone_arrives_in_bursts(nova, models) -> None:  # type: ignore[no-untyped-def]
    # A busy machine: the audio arrives late and in bursts, its arrival times jumping about.
    from turn_harness import MIC_RATE

    from talkie.messages import AudioChunk

    track = Track(1.0)
    track.ask(0, MULTI_PART[1], 1.0, US_VOICES[3])
    conv = make(nova, models, greet=False)

    async def bursty() -> Outcome:
        import asyncio

        out = Outcome()
        await conv.start()

        async def events() -> None:
            async for e in conv.events():
                out.events.append(e.to_json())

        async def pull() -> None:
            while True:
                await conv.next_audio_frame()
                await conv.next_video_frame()

        tasks = [asyncio.create_task(events()), asyncio.create_task(pull())]
        rng = np.random.default_rng(3)
        step = MIC_RATE // 50
        k = 0
        while k < len(track.audio):
            await asyncio.sleep(float(rng.uniform(0.0, 0.4)))
            burst = int(rng.integers(1, 25))
            for _ in range(burst):
                chunk = track.audio[k : k + step]
                if len(chunk):
                    # stamped with the arrival time, as an overloaded transport would
                    conv.push_audio(AudioChunk(chunk, MIC_RATE, conv.clock.now() + 1e-6))
                k += step
        await asyncio.sleep(10.0)
        for t in tasks:
            t.cancel()
        await conv.close()
        return out

    track.audio = np.concatenate([track.audio, np.zeros(3 * MIC_RATE, np.float32)])
    out = run_virtual(bursty())
    heard = " ".join(e["text"] for e in out.of_type("transcript") if e["final"])
    q = MULTI_PART[1]
    assert word_errors(q.text, heard) <= 0.3 * len(normalize_words(q.text)), heard
    assert len(out.turns()) == 1


def test_on_slow_ears_a_short_sound_lets_the_answer_go_on_before_its_words_come(
    nova, models
) -> None:  # type: ignore[no-untyped-def]
    # A busy machine: transcripts come 3 s late. "Okay" over the answer pauses it; the
    # character goes on a second after the sound ended instead of waiting for the words.
    from talkie.hearing import FinalTranscript

    track = Track(1.0)
    end = track.say("How do you listen to me?", 1.0, voice=VOICES[0])
    ok_at = end + 2.5
    ok_end = track.say("Okay.", ok_at, voice=US_VOICES[2])
    conv = make(nova, models, greet=False)
    events = conv.hearing.events

    async def late_words():  # type: ignore[no-untyped-def]
        import asyncio

        async for event in events():
            if isinstance(event, FinalTranscript) and event.speech_start > ok_at - 0.5:
                await asyncio.sleep(3.0)
            yield event

    conv.hearing.events = late_words  # type: ignore[method-assign]
    out = run_virtual(converse(conv, track.audio, seconds=end + 18.0))
    (turn,) = out.turns()
    assert not turn["interrupted"] and turn["backchannels"], turn
    back = [s for s in out.sound_spans() if ok_end < s[0] < ok_end + 2.5]
    assert back, (out.sound_spans(), ok_end)  # speaking again well before the words came
