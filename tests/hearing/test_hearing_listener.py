"""The hearing core's scheduling, driven frame by frame with a scripted VAD and scripted ASR."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.hearing import AsrResult, FinalTranscript, HearingOptions
from talkie.hearing.listener import AsrJob, Listener
from talkie.messages import Transcript, VoiceActivity

FRAME = 0.032


class ScriptedVad:
    """Returns the probability scheduled for each frame in turn."""

    def __init__(self, probs: list[float]) -> None:
        self.probs = list(probs)
        self.i = 0

    def probability(self, frame: np.ndarray) -> float:
        p = self.probs[self.i] if self.i < len(self.probs) else 0.0
        self.i += 1
        return p

    def reset(self) -> None:
        pass


class Harness:
    def __init__(self, probs: list[float], **options: object) -> None:
        self.events: list[VoiceActivity | Transcript] = []
        self.jobs: list[AsrJob] = []
        self.listener = Listener(
            options=HearingOptions(**options),  # type: ignore[arg-type]
            vad=ScriptedVad(probs),  # type: ignore[arg-type]
            submit=self.jobs.append,
            emit=self.events.append,
        )
        self.probs = probs
        self.n = len(probs)
        self.t = 0.0
        self.i = 0

    def frames(self, count: int, *, level: float | None = None, complete: bool = True) -> None:
        """Push ``count`` frames (speech at 0.1, silence at 0.001 unless ``level`` is given);
        with ``complete`` every submitted job finishes at once."""
        for _ in range(count):
            voiced = self.i < self.n and self.probs[self.i] >= 0.35
            value = level if level is not None else (0.1 if voiced else 0.001)
            self.i += 1
            self.listener.push(np.full(512, value, np.float32), self.t, 0.0)
            self.t += FRAME
            if complete:
                self.complete()

    def complete(self) -> None:
        while self.jobs:
            job = self.jobs.pop(0)
            seconds = len(job.audio) / 16000
            self.listener.on_result(job, AsrResult(f"{job.kind} {seconds:.3f}", seconds, 1.0, 10.0))

    def kinds(self) -> list[str]:
        out = []
        for e in self.events:
            if isinstance(e, VoiceActivity):
                out.append("start" if e.speaking else "stop")
            else:
                out.append("final" if e.final else "partial")
        return out


def _script(speech_frames: int, silence_frames: int = 30, lead: int = 10) -> list[float]:
    return [0.0] * lead + [0.95] * speech_frames + [0.0] * silence_frames


def test_partials_then_speculative_final() -> None:
    h = Harness(_script(60))  # ~1.9 s of speech
    h.frames(h.n)
    kinds = h.kinds()
    assert kinds[0] == "start" and kinds[-2:] == ["stop", "final"]
    assert kinds.count("final") == 1 and kinds.count("partial") >= 2
    final = h.events[-1]
    assert isinstance(final, FinalTranscript) and final.text.startswith("speculative")
    stop = h.events[-2]
    assert isinstance(stop, VoiceActivity) and stop.pts == pytest.approx(70 * FRAME)
    assert final.speech_end == pytest.approx(stop.pts)
    # The speculative run saw the speech plus 3 frames of silence; its pts is where its audio ends.
    assert final.pts == pytest.approx(stop.pts + 3 * FRAME)
    trace = h.listener.traces[-1]
    assert trace.speculative and trace.endpoint_delay_s == pytest.approx(10 * FRAME)
    # Partials are ~0.6 s of audio apart, their pts increase, and none comes after the stop.
    partial_pts = [e.pts for e in h.events if isinstance(e, Transcript) and not e.final]
    assert partial_pts == sorted(partial_pts) and partial_pts[-1] <= stop.pts + 3 * FRAME


def test_slow_speculative_run_becomes_the_final_without_a_rerun() -> None:
    h = Harness(_script(20), partials=False)
    h.frames(10 + 20 + 2)
    h.frames(1, complete=False)  # the speculative job is submitted on the 3rd silent frame
    assert [j.kind for j in h.jobs] == ["speculative"]
    h.frames(17, complete=False)  # the stop happens while it is still running
    assert h.kinds() == ["start", "stop"]
    h.complete()
    assert h.kinds() == ["start", "stop", "final"]
    assert h.listener.traces[-1].speculative
    assert h.listener.idle


def test_resumed_speech_turns_the_speculative_result_into_a_partial() -> None:
    probs = [0.0] * 10 + [0.95] * 20 + [0.0] * 5 + [0.95] * 20 + [0.0] * 30
    h = Harness(probs, partials=False)
    h.frames(len(probs))
    # Each speculative result is a partial while the turn goes on (the first because the user
    # resumed, the second because the hangover was still running), then the second is the final.
    assert h.kinds() == ["start", "partial", "partial", "stop", "final"]
    final = h.events[-1]
    assert isinstance(final, FinalTranscript) and final.speech_end == pytest.approx(55 * FRAME)


def test_a_partial_running_at_the_stop_is_dropped_and_a_final_follows() -> None:
    h = Harness(_script(25), speculative_after_s=10.0)  # no speculation: the plain path
    h.frames(10 + 25, complete=False)  # partials are submitted but not completed
    assert [j.kind for j in h.jobs] == ["partial"]
    h.frames(15, complete=False)  # the turn ends while that partial runs
    assert h.kinds() == ["start", "stop"]
    h.complete()  # the partial finishes (dropped), then the final job runs
    assert h.kinds() == ["start", "stop", "final"]
    trace = h.listener.traces[-1]
    assert not trace.speculative
    # The final covers the speech plus final_tail_s (0.2 s).
    assert trace.final_pts == pytest.approx(trace.speech_end_pts + 0.2, abs=0.02)


def test_clear_closes_the_turn_and_drops_pending_results() -> None:
    h = Harness(_script(40))
    h.frames(10 + 25, complete=False)
    h.listener.clear()
    assert h.kinds() == ["start", "stop"]
    h.complete()
    assert h.kinds() == ["start", "stop"]  # the running job's result was dropped


def test_a_user_talking_while_the_character_plays_starts_a_segment() -> None:
    # No echo path known (echo cancellation, a headset): the user's voice over the character's
    # counts at once, with the slightly stricter onset used while the character talks.
    probs = [0.0] * 10 + [0.95] * 30 + [0.0] * 20
    h = Harness(probs)
    for k in range(len(probs)):
        h.listener.push_reference(k * FRAME, -20.0, FRAME)
    h.frames(len(probs))
    assert h.kinds()[0] == "start" and h.kinds()[-2:] == ["stop", "final"]
    start = h.events[0]
    assert isinstance(start, VoiceActivity) and start.pts == pytest.approx(10 * FRAME)
    final = h.events[-1]
    assert isinstance(final, FinalTranscript) and final.overlapped


def test_turns_longer_than_the_limit_are_split() -> None:
    h = Harness([0.0] * 5 + [0.95] * 80 + [0.0] * 20, max_utterance_s=2.0)
    h.frames(105)
    assert h.kinds().count("final") >= 2
