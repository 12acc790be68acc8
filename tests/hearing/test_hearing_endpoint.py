"""Endpointing: hysteresis, blips, hangover timing, the fading-VAD rule, and real speech."""

from __future__ import annotations

import math

import pytest
from hearing_testutil import Utterance, frames, level_db, scene

from talkie.hearing import Endpointer, EndpointEvent, EndpointOptions, SileroVad

FRAME = 0.032


def _run(
    probs: list[float], endpointer: Endpointer | None = None, levels: list[float] | None = None
) -> list[EndpointEvent]:
    ep = endpointer or Endpointer()
    events = []
    for i, p in enumerate(probs):
        event = ep.update(p, i * FRAME, level_db=None if levels is None else levels[i])
        if event is not None:
            events.append(event)
    return events


def test_start_needs_96_ms_and_is_stamped_at_the_first_voiced_frame() -> None:
    events = _run([0.1] * 5 + [0.9] * 3 + [0.9] * 5)
    assert [e.kind for e in events] == ["start"]
    assert events[0].pts == pytest.approx(5 * FRAME)
    assert events[0].decided_at == pytest.approx(8 * FRAME)


def test_short_blips_do_not_start_a_turn() -> None:
    blips = [0.1] * 5 + [0.95, 0.95] + [0.1] * 5 + [0.9] + [0.2] * 10
    assert _run(blips) == []


def test_hysteresis_keeps_soft_speech_going() -> None:
    # Once speaking, 0.4 (< onset, > offset) is still speech: no stop for 2 s of it.
    events = _run([0.9] * 4 + [0.4] * 60)
    assert [e.kind for e in events] == ["start"]


@pytest.mark.parametrize("hangover", [0.3, 0.2, 0.5])
def test_stop_after_hangover_stamped_at_the_last_voiced_frame(hangover: float) -> None:
    ep = Endpointer(options=EndpointOptions(hangover_s=hangover))
    events = _run([0.0] * 3 + [0.9] * 20 + [0.05] * 40, ep)
    assert [e.kind for e in events] == ["start", "stop"]
    stop = events[1]
    assert stop.pts == pytest.approx(23 * FRAME)  # end of the last voiced frame
    delay = stop.decided_at - stop.pts
    assert hangover - 1e-9 <= delay <= hangover + FRAME + 1e-9
    assert delay == pytest.approx(math.ceil(hangover / FRAME - 1e-9) * FRAME)


def test_blip_inside_the_hangover_is_ignored() -> None:
    probs = [0.9] * 10 + [0.1] * 4 + [0.8, 0.8] + [0.1] * 20
    events = _run(probs)
    assert [e.kind for e in events] == ["start", "stop"]
    assert events[1].pts == pytest.approx(10 * FRAME)  # the blip did not move the end
    assert events[1].decided_at == pytest.approx(20 * FRAME)  # 10 frames after the end


def test_speech_resuming_inside_the_hangover_continues_the_turn() -> None:
    probs = [0.9] * 10 + [0.1] * 6 + [0.9] * 5 + [0.1] * 20
    events = _run(probs)
    assert [e.kind for e in events] == ["start", "stop"]
    assert events[1].pts == pytest.approx(21 * FRAME)


def test_fading_vad_tail_is_cut_by_the_energy_rule() -> None:
    # Background at -50 dBFS; speech at -20; after the words, the VAD fades slowly over 6 frames
    # of pure background. The energy rule stops waiting for the fade (at most 96 ms earlier).
    noise = [0.02] * 20
    speech = [0.99] * 20
    fade = [0.95, 0.9, 0.8, 0.7, 0.55, 0.4]
    tail = [0.1] * 20
    probs = noise + speech + fade + tail
    levels = [-50.0] * 20 + [-20.0] * 20 + [-50.0] * 6 + [-50.0] * 20
    plain = _run(probs, Endpointer(options=EndpointOptions(energy_margin_db=None)))
    fast = _run(probs, levels=levels)
    assert plain[1].pts == fast[1].pts == pytest.approx(46 * FRAME)
    assert plain[1].decided_at == pytest.approx(56 * FRAME)
    assert fast[1].decided_at == pytest.approx(54 * FRAME)  # credit capped at 2 frames
    # Energy never ends a turn while the VAD still hears speech.
    quiet_speech = _run([0.9] * 60, levels=[-50.0] * 60)
    assert [e.kind for e in quiet_speech] == ["start"]


def test_force_stop_and_reset() -> None:
    ep = Endpointer()
    _run([0.9] * 5, ep)
    assert ep.speaking
    event = ep.force_stop()
    assert event is not None and event.kind == "stop"
    assert ep.force_stop() is None
    _run([0.9] * 5, ep)
    ep.reset()
    assert not ep.speaking


def _endpoints(audio) -> list[EndpointEvent]:  # type: ignore[no-untyped-def]
    vad, ep = SileroVad(), Endpointer()
    events = []
    for frame, t in frames(audio):
        event = ep.update(vad.probability(frame), t, level_db=level_db(frame))
        if event is not None:
            events.append(event)
    return events


@pytest.mark.parametrize(
    ("voice", "snr_db"), [("question", None), ("question", 20.0), ("espeak", 20.0)]
)
def test_real_speech_end_is_found_within_hangover_plus_a_frame(
    voice: str, snr_db: float | None, question: Utterance, espeak_f3
) -> None:  # type: ignore[no-untyped-def]
    from hearing_testutil import speak

    utterance = question if voice == "question" else speak(espeak_f3, "Please close the door.")
    audio, start, end = scene(utterance, before=0.8, after=1.0, snr_db=snr_db)
    events = _endpoints(audio)
    assert [e.kind for e in events] == ["start", "stop"]
    assert abs(events[0].pts - start) <= 2 * FRAME
    # Silero's recurrent state keeps the probability up for a few frames after the acoustic
    # end (measured: +1..+4 frames), so the last voiced frame is a little late.
    lag = events[1].pts - end
    assert -2 * FRAME <= lag <= 4 * FRAME
    # The decision comes hangover + at most one frame after the last voiced frame (earlier on
    # a fading VAD), i.e. within hangover + 1 frame + the VAD's lag of the true end.
    assert events[1].decided_at - events[1].pts <= 0.3 + FRAME + 1e-9
    assert events[1].decided_at - end <= 0.3 + FRAME + max(lag, 0.0) + 1e-9
