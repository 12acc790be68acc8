"""The synchronous core of hearing: 16 kHz frames -> VAD -> endpoint -> ASR jobs -> events.

``Listener`` owns all per-stream state and runs on ONE thread (the hearing front-end thread);
it never blocks on ASR. It hands transcription jobs to a ``submit`` callback (the ``Hearing``
stage runs them on its ASR worker) and gets their results back through ``on_result`` on the
same thread, so no state is shared between threads.

**Nothing is dropped.** Audio is framed on a continuous *stream* timeline (samples received),
never re-framed or cut when the arrival times jump (a busy machine delivers the microphone in
bursts): media times (``pts``) are only labels, mapped from stream time through the latest
anchor. Utterances are cut from the stream by sample counts, so a final always covers every
frame of its speech.

**Segments.** The endpoint ends a *segment* (a breath group) after ``hangover_s`` of silence.
Whether the user's *turn* is over is decided by the session, from the segment's words and the
learned end-of-turn model's probability, which is attached to each final
(``FinalTranscript.turn_probability``, computed on the last 8 s of the stream when the pause
begins).

**Echo.** While the character talks, ``EchoGate`` (fed with ``push_reference``) decides for
each frame whether it can be the user's voice; frames it attributes to the character's echo
count as silence, so the user's words during an answer start a segment like any other.

ASR scheduling, with at most one job in flight:

1. a final that is due (the segment ended and no usable result exists) goes first;
2. **speculative final**: after ``speculative_after_s`` of silence the segment so far is
   transcribed; the endpoint needs ``hangover_s`` to decide, so by then the final is usually
   ready. If the user goes on, the result becomes a partial;
3. **partials** while the user speaks, whenever ``partial_interval_s`` of new audio has arrived.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from talkie.hearing.asr import AsrResult
from talkie.hearing.echo import EchoGate, EchoOptions
from talkie.hearing.endpoint import Endpointer, EndpointEvent, EndpointOptions
from talkie.hearing.turn_model import WINDOW_SAMPLES, TurnModel
from talkie.hearing.vad import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, SileroVad
from talkie.messages import Transcript, VoiceActivity

__all__ = [
    "AsrJob",
    "FinalTranscript",
    "HearingOptions",
    "HearingTrace",
    "Listener",
    "PauseTranscript",
]

log = logging.getLogger(__name__)

_SILENT_DB = -120.0
_JUMP_S = 0.2  # arrival times further than this from the stream's own clock re-anchor it
_HISTORY_FRAMES = math.ceil(WINDOW_SAMPLES / FRAME_SAMPLES)


@dataclass(frozen=True)
class HearingOptions:
    """Settings of the hearing stage.

    Endpointing (see ``talkie.hearing.endpoint``): ``onset``/``offset`` VAD thresholds,
    ``min_speech_s`` to start (shorter blips are ignored), ``hangover_s`` of silence to end a
    segment, ``energy_margin_db`` for the fading-VAD rule (``None`` disables it).
    While the character's voice may be in the input, a segment needs ``overlap_onset`` and
    ``overlap_min_speech_s`` of frames the echo gate accepts (``echo``) and at least
    ``overlap_min_dbfs`` loud (peak over ~100 ms: what is left of the character's voice after
    echo cancellation is quieter than a user talking into the microphone) to start.

    ASR scheduling: ``partial_interval_s`` of new audio between partials (``partials=False``
    disables them), ``speculative_after_s`` of silence before the speculative final starts,
    ``final_tail_s`` of audio after the end of speech given to a non-speculative final,
    ``preroll_s`` of audio kept before the detected start (so the first phoneme is not cut),
    ``max_utterance_s`` after which a segment is ended by force (Whisper sees at most 30 s).
    """

    onset: float = 0.5
    offset: float = 0.35
    min_speech_s: float = 0.096
    hangover_s: float = 0.3
    energy_margin_db: float | None = 3.0
    partials: bool = True
    partial_interval_s: float = 0.6
    speculative_after_s: float = 0.096
    final_tail_s: float = 0.2
    preroll_s: float = 0.25
    max_utterance_s: float = 28.0
    overlap_onset: float = 0.6
    overlap_min_speech_s: float = 0.096
    overlap_min_dbfs: float = -38.0
    echo: EchoOptions = field(default_factory=EchoOptions)

    def __post_init__(self) -> None:
        # EndpointOptions validates the thresholds and durations it shares.
        self.endpoint_options()
        if self.partial_interval_s <= 0 or self.speculative_after_s < 0:
            raise ValueError("partial_interval_s must be > 0 and speculative_after_s >= 0")
        if not 1.0 <= self.max_utterance_s <= 30.0:
            raise ValueError(f"max_utterance_s must be 1..30 s, got {self.max_utterance_s}")
        if not 0.0 < self.overlap_onset < 1.0 or self.overlap_min_speech_s < 0:
            raise ValueError("overlap_onset must be in (0, 1) and overlap_min_speech_s >= 0")

    def endpoint_options(self) -> EndpointOptions:
        return EndpointOptions(
            onset=self.onset,
            offset=self.offset,
            min_speech_s=self.min_speech_s,
            hangover_s=self.hangover_s,
            energy_margin_db=self.energy_margin_db,
        )


@dataclass(frozen=True)
class FinalTranscript(Transcript):
    """The final transcript of one segment (a ``Transcript`` with ``final=True``).

    ``pts`` is the media time of the end of the audio that was transcribed; ``speech_start`` and
    ``speech_end`` bound the speech itself. ``text`` is "" when the segment held no words (a
    cough, noise). ``turn_probability`` is the end-of-turn model's view (None without a model);
    ``overlapped`` is True when the segment began while the character's voice was playing.
    """

    speech_end: float = 0.0
    utterance: int = 0
    speech_start: float = 0.0
    turn_probability: float | None = None
    overlapped: bool = False


@dataclass(frozen=True)
class PauseTranscript(Transcript):
    """A partial transcript of the whole segment, made in a pause that may end it (``final`` is
    False): unless the user goes on, the segment's final will have these words."""

    speech_end: float = 0.0


@dataclass(frozen=True)
class HearingTrace:
    """Timings of one segment. ``*_pts`` are media times (seconds); ``*_wall`` are
    ``time.perf_counter()`` readings. ``speech_end_wall`` is when the audio at the end of speech
    was pushed, so ``latency_s`` is the real end-of-speech -> final-text delay for live input
    (meaningless for audio pushed faster than real time)."""

    utterance: int
    text: str
    speech_start_pts: float
    speech_end_pts: float
    endpoint_pts: float  # media time at which the end of the segment was decided
    final_pts: float  # end of the audio the final transcript covers
    final_ready_pts: float  # newest media time processed when the final was ready
    speech_end_wall: float
    endpoint_wall: float
    final_wall: float
    asr_ms: float  # compute time of the ASR run that produced the final
    audio_s: float  # seconds of audio in that run
    speculative: bool  # the final came from a run started before the endpoint decision
    partials: int
    barge_in: bool  # the segment started while the character was speaking

    @property
    def latency_s(self) -> float:
        """Wall seconds from the end of speech (as pushed) to the final transcript."""
        return self.final_wall - self.speech_end_wall

    @property
    def endpoint_delay_s(self) -> float:
        """Media seconds from the end of speech to the end-of-segment decision."""
        return self.endpoint_pts - self.speech_end_pts


@dataclass(frozen=True, eq=False)
class AsrJob:
    """One transcription request: ``audio`` (16 kHz) of segment ``utterance`` ending at media
    time ``end_pts``; ``speech_end`` (stream seconds) is the end of speech known when the job
    was made; ``prompt`` is text that biases the recogniser (names, the turn so far)."""

    utterance: int
    kind: Literal["partial", "speculative", "final"]
    audio: np.ndarray
    end_pts: float
    speech_end: float
    prompt: str = ""


@dataclass
class _Utterance:
    index: int
    start: float  # stream time of the first buffered sample (includes the preroll)
    speech_start: float  # stream times from here on
    speech_end: float
    overlapped: bool
    parts: list[np.ndarray] = field(default_factory=list)
    samples: int = 0
    ended: bool = False
    endpoint_at: float = 0.0
    endpoint_wall: float = 0.0
    covered: int = 0  # samples seen by the last partial/speculative job
    last_text: str = ""
    partials: int = 0
    spec_for: float | None = None  # speech_end of the last speculative job launched
    spec: tuple[AsrJob, AsrResult] | None = None
    turn_probability: tuple[float, float] | None = None  # (speech_end it saw, probability)
    final_due: bool = False  # a final job must be run
    final_launched: bool = False

    def audio(self, samples: int) -> np.ndarray:
        whole = np.concatenate(self.parts) if len(self.parts) != 1 else self.parts[0]
        self.parts = [whole]
        return whole[:samples]


class Listener:
    """Single-threaded hearing core (see the module docstring). ``emit`` receives events in
    order; ``submit`` receives ASR jobs, whose outcome must come back through ``on_result``.
    ``turn_model`` (optional) gives each final its end-of-turn probability."""

    def __init__(
        self,
        *,
        options: HearingOptions,
        vad: SileroVad,
        submit: Callable[[AsrJob], None],
        emit: Callable[[VoiceActivity | Transcript], None],
        clock: Callable[[], float] = time.perf_counter,
        turn_model: TurnModel | None = None,
    ) -> None:
        self.options = options
        self._vad = vad
        self._submit = submit
        self._emit = emit
        self._clock = clock
        self._turn_model = turn_model
        self._endpointer = Endpointer(options=options.endpoint_options())
        self.echo = EchoGate(options=options.echo)
        self.traces: list[HearingTrace] = []
        self.prompt = ""
        self._pending = np.zeros(0, dtype=np.float32)
        self._received = 0  # samples received (stream clock)
        self._framed = 0  # samples framed so far
        self._anchors: deque[tuple[int, float]] = deque(maxlen=64)  # (stream sample, media pts)
        ring_frames = math.ceil(
            (options.preroll_s + max(options.min_speech_s, options.overlap_min_speech_s) + 0.2)
            / FRAME_SECONDS
        )
        self._ring: deque[tuple[float, np.ndarray]] = deque(maxlen=ring_frames)
        self._history: deque[np.ndarray] = deque(maxlen=_HISTORY_FRAMES)  # for the turn model
        self._walls: deque[tuple[float, float]] = deque(maxlen=2000)  # (stream end, wall)
        self._overlap = False  # the character's voice may be in the current frame
        self._recent_db: deque[float] = deque(maxlen=3)  # levels of the last ~100 ms
        self._count = 0
        self._current: _Utterance | None = None
        self._awaiting: list[_Utterance] = []  # ended segments whose final is not out yet
        self._in_flight: AsrJob | None = None

    # -- inputs -------------------------------------------------------------------------------

    def push(self, samples: np.ndarray, pts: float, wall: float) -> None:
        """Feed 16 kHz mono float32 audio whose first sample is at media time ``pts``."""
        if len(samples) == 0:
            return
        expected = self.media_pts(self._received / SAMPLE_RATE)
        if not self._anchors or abs(pts - expected) > _JUMP_S:
            self._anchors.append((self._received, pts))
        self._received += len(samples)
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        self._walls.append((self._received / SAMPLE_RATE, wall))
        while len(self._pending) >= FRAME_SAMPLES:
            frame = self._pending[:FRAME_SAMPLES]
            self._pending = self._pending[FRAME_SAMPLES:]
            start = self._framed / SAMPLE_RATE
            self._framed += FRAME_SAMPLES
            self._process_frame(frame, start)

    def push_reference(self, pts: float, level_db: float, duration: float) -> None:
        """The level of the character's output audio at media time ``pts`` (for the echo gate)."""
        self.echo.push_reference(pts, level_db, duration)

    def confirm_echo(self) -> None:
        """What was just heard was the character's own voice (see ``EchoGate.confirm_echo``)."""
        self.echo.confirm_echo(self.media_pts(self._framed / SAMPLE_RATE))

    def clear(self) -> None:
        """Forget the segment in progress and every pending transcript (a running ASR job
        finishes but its result is dropped). An open segment is closed with VoiceActivity(False)."""
        if self._current is not None and not self._current.ended:
            self._emit(VoiceActivity(False, self.media_pts(self._current.speech_end)))
        self._current = None
        self._awaiting.clear()
        self._endpointer.reset()
        self._vad.reset()
        self._ring.clear()

    def on_result(self, job: AsrJob, result: AsrResult) -> None:
        """An ASR job finished (called on the listener's thread)."""
        self._in_flight = None
        utt = self._find(job.utterance)
        if utt is not None:
            self._handle_result(utt, job, result)
        self._schedule()

    @property
    def idle(self) -> bool:
        """No ASR job running or due."""
        return self._in_flight is None and not any(u.final_due for u in self._awaiting)

    @property
    def speaking(self) -> bool:
        """The user is in a segment (speech started and not yet ended)."""
        return self._current is not None and not self._current.ended

    def media_pts(self, stream_t: float) -> float:
        """Media time of stream time ``stream_t`` (through the latest anchor before it)."""
        sample = round(stream_t * SAMPLE_RATE)
        anchor = next(((s, p) for s, p in reversed(self._anchors) if s <= sample), None)
        if anchor is None:
            anchor = self._anchors[0] if self._anchors else (0, 0.0)
        return anchor[1] + (sample - anchor[0]) / SAMPLE_RATE

    # -- frames -------------------------------------------------------------------------------

    def _process_frame(self, frame: np.ndarray, start: float) -> None:
        probability = self._vad.probability(frame)
        pts = self.media_pts(start)
        self._ring.append((start, frame))
        self._history.append(frame)
        utt = self._current
        if utt is not None and not utt.ended:
            utt.parts.append(frame)
            utt.samples += len(frame)
        event = self._endpoint(frame, probability, start, pts)
        if event is not None and event.kind == "start":
            self._start(event)
        elif event is not None:
            self._stop(event)
        elif (
            utt is not None
            and not utt.ended
            and utt.samples >= self.options.max_utterance_s * SAMPLE_RATE
        ):
            forced = self._endpointer.force_stop()
            if forced is not None:
                log.info(
                    "segment %d reached %.0f s: ending it", utt.index, self.options.max_utterance_s
                )
                self._stop(forced)
        self._schedule()

    def _endpoint(
        self, frame: np.ndarray, probability: float, start: float, pts: float
    ) -> EndpointEvent | None:
        opts = self.options
        rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64))))
        level_db = 20.0 * math.log10(rms) if rms > 1e-6 else _SILENT_DB
        user = self.echo.user_possible(pts, level_db)
        self._recent_db.append(level_db)
        self._overlap = self.echo.reference_active(pts)
        if not self._overlap:
            return self._endpointer.update(probability, start, level_db=level_db)
        user = user and max(self._recent_db) >= opts.overlap_min_dbfs
        # The character's voice may be in this frame: only what the echo gate leaves counts,
        # and a segment needs a clearer, slightly longer voice to start. No level: the
        # character's voice must not become the "background noise" of the fading-VAD rule.
        return self._endpointer.update(
            probability if user else 0.0,
            start,
            onset=opts.overlap_onset,
            min_speech_s=opts.overlap_min_speech_s,
        )

    def _start(self, event: EndpointEvent) -> None:
        self._count += 1
        begin = event.pts - self.options.preroll_s
        frames = [(t, f) for t, f in self._ring if t >= begin - 1e-6]
        start = frames[0][0] if frames else event.pts
        utt = _Utterance(
            index=self._count,
            start=start,
            speech_start=event.pts,
            speech_end=event.decided_at,
            overlapped=self._overlap,
            parts=[f for _, f in frames],
            samples=sum(len(f) for _, f in frames),
        )
        self._current = utt
        log.debug(
            "speech %d started at %.3f%s",
            utt.index,
            event.pts,
            " (overlap)" if utt.overlapped else "",
        )
        self._emit(VoiceActivity(True, self.media_pts(event.pts)))

    def _stop(self, event: EndpointEvent) -> None:
        utt = self._current
        if utt is None:
            return
        utt.ended = True
        utt.speech_end = event.pts
        utt.endpoint_at = event.decided_at
        utt.endpoint_wall = self._clock()
        self._current = None
        self._emit(VoiceActivity(False, self.media_pts(event.pts)))
        spec = utt.spec
        if spec is not None and spec[0].speech_end == utt.speech_end:
            self._finish(utt, spec[0], spec[1], speculative=True)
            return
        self._awaiting.append(utt)
        job = self._in_flight
        if not (
            job is not None
            and job.utterance == utt.index
            and job.kind == "speculative"
            and job.speech_end == utt.speech_end
        ):
            utt.final_due = True  # otherwise the running speculative job becomes the final

    # -- ASR ----------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._in_flight is not None:
            return
        for ended in self._awaiting:
            if ended.final_due and not ended.final_launched:
                until = ended.speech_end + self.options.final_tail_s
                ended.final_launched = True
                self._launch(ended, "final", min(ended.samples, self._samples_until(ended, until)))
                return
        utt = self._current
        if utt is None or utt.ended or not self._endpointer.speaking:
            return
        silence = self._endpointer.silence_s
        if silence > 0:
            if (
                silence >= self.options.speculative_after_s - 1e-9
                and not self._endpointer.resuming
                and utt.spec_for != self._endpointer.speech_end
            ):
                utt.spec_for = self._endpointer.speech_end
                self._launch(utt, "speculative", utt.samples)
                self._judge_turn(utt)
            return  # in a pause: keep the worker free for the speculative final
        if (
            self.options.partials
            and utt.samples - utt.covered >= self.options.partial_interval_s * SAMPLE_RATE
        ):
            self._launch(utt, "partial", utt.samples)

    def _launch(
        self, utt: _Utterance, kind: Literal["partial", "speculative", "final"], samples: int
    ) -> None:
        speech_end = self._endpointer.speech_end if not utt.ended else utt.speech_end
        end = utt.start + samples / SAMPLE_RATE
        job = AsrJob(
            utterance=utt.index,
            kind=kind,
            audio=utt.audio(samples),
            end_pts=self.media_pts(end),
            speech_end=speech_end if speech_end is not None else end,
            prompt=self.prompt,
        )
        if kind != "final":
            utt.covered = samples
        self._in_flight = job
        self._submit(job)

    def _judge_turn(self, utt: _Utterance) -> None:
        """The end-of-turn model's view of the pause that just began (last 8 s of audio)."""
        if self._turn_model is None or not self._history:
            return
        try:
            p = self._turn_model.probability(np.concatenate(list(self._history)))
        except Exception:  # the model is an aid: hearing goes on without it
            log.exception("the end-of-turn model failed; going on without it")
            self._turn_model = None
            return
        end = self._endpointer.speech_end
        utt.turn_probability = (end if end is not None else 0.0, p)

    def _handle_result(self, utt: _Utterance, job: AsrJob, result: AsrResult) -> None:
        if job.kind == "final":
            self._finish(utt, job, result, speculative=False)
            return
        if job.kind == "speculative" and utt.ended and job.speech_end == utt.speech_end:
            self._finish(utt, job, result, speculative=True)
            return
        if job.kind == "speculative":
            utt.spec = (job, result)
            if not utt.ended and self._endpointer.speech_end == job.speech_end and result.text:
                # Still silent since the job began: this is very likely the final text, before
                # the endpoint is sure. The session can start on the answer now.
                utt.last_text = result.text
                utt.partials += 1
                self._emit(
                    PauseTranscript(
                        result.text, final=False, pts=job.end_pts,
                        speech_end=self.media_pts(job.speech_end),
                    )
                )  # fmt: skip
                return
        if not utt.ended and result.text and result.text != utt.last_text:
            utt.last_text = result.text
            utt.partials += 1
            self._emit(Transcript(result.text, final=False, pts=job.end_pts))

    def _finish(
        self, utt: _Utterance, job: AsrJob, result: AsrResult, *, speculative: bool
    ) -> None:
        if utt in self._awaiting:
            self._awaiting.remove(utt)
        wall = self._clock()
        probability = None
        if utt.turn_probability is not None and utt.turn_probability[0] == utt.speech_end:
            probability = utt.turn_probability[1]
        speech_end = self.media_pts(utt.speech_end)
        speech_start = self.media_pts(utt.speech_start)
        self._emit(
            FinalTranscript(
                result.text,
                final=True,
                pts=job.end_pts,
                speech_end=speech_end,
                utterance=utt.index,
                speech_start=speech_start,
                turn_probability=probability,
                overlapped=utt.overlapped,
            )
        )
        trace = HearingTrace(
            utterance=utt.index,
            text=result.text,
            speech_start_pts=speech_start,
            speech_end_pts=speech_end,
            endpoint_pts=self.media_pts(utt.endpoint_at),
            final_pts=job.end_pts,
            final_ready_pts=self.media_pts(self._framed / SAMPLE_RATE),
            speech_end_wall=self._wall_at(utt.speech_end),
            endpoint_wall=utt.endpoint_wall,
            final_wall=wall,
            asr_ms=result.compute_ms,
            audio_s=result.audio_s,
            speculative=speculative,
            partials=utt.partials,
            barge_in=utt.overlapped,
        )
        self.traces.append(trace)
        log.debug(
            "segment %d final after %.0f ms (endpoint %.0f ms, asr %.0f ms%s)",
            utt.index,
            trace.latency_s * 1e3,
            trace.endpoint_delay_s * 1e3,
            trace.asr_ms,
            ", speculative" if speculative else "",
        )

    def _find(self, index: int) -> _Utterance | None:
        if self._current is not None and self._current.index == index:
            return self._current
        return next((u for u in self._awaiting if u.index == index), None)

    def _samples_until(self, utt: _Utterance, stream_t: float) -> int:
        return max(0, round((stream_t - utt.start) * SAMPLE_RATE))

    def _wall_at(self, stream_t: float) -> float:
        for end, wall in self._walls:
            if end >= stream_t - 1e-6:
                return wall
        return self._walls[-1][1] if self._walls else self._clock()
