"""The hearing stage: live audio in, voice activity and transcripts out, as an async iterator.

Threads (the event loop only enqueues and dequeues):

- the **front-end thread** resamples to 16 kHz, runs the VAD (0.2 ms per 32 ms frame), the echo
  gate and the endpoint, and decides what to transcribe (``Listener``). It is separate from the
  ASR thread so that the end of a segment is detected on time even while a transcription runs;
- the **ASR thread** (a one-worker executor) runs Whisper; results go back to the front-end
  thread through the same queue as the audio, so all decisions happen on one thread in order.

The queue is unbounded: on a busy machine transcription gets slower, never lossy. With
``threaded=False`` everything runs inline in the caller (``push`` processes the audio and runs
any transcription it needs before it returns): deterministic, for tests on virtual time.

Events are ``VoiceActivity(True)`` when the user starts speaking (stamped at the start of speech),
partial ``Transcript``s while they speak, ``VoiceActivity(False)`` stamped at the true end of
speech, then one ``FinalTranscript`` per segment (a ``Transcript`` with ``final=True``, plus
``speech_start``/``speech_end`` and the end-of-turn model's ``turn_probability``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np

from talkie.hearing.asr import AsrResult, SpeechRecognizer, WhisperAsr, WhisperOptions
from talkie.hearing.listener import AsrJob, HearingOptions, HearingTrace, Listener
from talkie.hearing.resample import StreamResampler
from talkie.hearing.turn_model import TurnModel
from talkie.hearing.vad import SAMPLE_RATE, SileroVad
from talkie.messages import AudioChunk, Transcript, VoiceActivity
from talkie.worker import warm_once

__all__ = ["Hearing", "HearingEvent"]

log = logging.getLogger(__name__)

HearingEvent = VoiceActivity | Transcript


def _transcribe_silence(recognizer: SpeechRecognizer) -> None:
    recognizer.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))


_CLOSE_TIMEOUT_S = 5.0
_PROMPT_CHARS = 600


class Hearing:
    """The live conversation's ears (see the module docstring).

    ``push``, ``push_reference``, ``set_prompt`` and ``clear`` may be called from any thread
    (typically the event loop); they never block (unless ``threaded=False``). Consume
    ``events()`` (or ``async for event in hearing``) from one task. Models load lazily in the
    worker threads; ``load()`` loads them eagerly (blocking, so call it with
    ``asyncio.to_thread`` from async code). Close with ``close()``/``aclose()`` or ``async with``.

    ``recognizer`` is any ``SpeechRecognizer`` (default: ``WhisperAsr(options=asr_options)``,
    tiny.en); ``vad`` defaults to a new ``SileroVad``; ``turn_model`` (e.g. ``SmartTurnModel``)
    gives finals their end-of-turn probability. One ``Hearing`` per audio stream.
    """

    def __init__(
        self,
        *,
        options: HearingOptions | None = None,
        recognizer: SpeechRecognizer | None = None,
        asr_options: WhisperOptions | None = None,
        vad: SileroVad | None = None,
        turn_model: TurnModel | None = None,
        threaded: bool = True,
    ) -> None:
        self.options = options or HearingOptions()
        self.recognizer: SpeechRecognizer = recognizer or WhisperAsr(options=asr_options)
        self.turn_model = turn_model
        self.threaded = threaded
        self._vad = vad or SileroVad()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._inline_jobs: list[AsrJob] = []
        self._listener = Listener(
            options=self.options, vad=self._vad, submit=self._submit, emit=self._emit,
            turn_model=turn_model,
        )  # fmt: skip
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._events: deque[HearingEvent] = deque()
        self._events_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._flush_waiters: list[Callable[[], None]] = []
        self._error: BaseException | None = None
        self._closed = False
        self._resampler: StreamResampler | None = None  # front-end thread only

    # -- public API ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load the VAD, ASR and end-of-turn models and warm the ASR up (blocking; ~0.5 s the
        first time in a process, then ~0.1 s: the models are shared, and a recognizer that
        has transcribed once is warm)."""
        self._vad.load()
        self.recognizer.load()
        warm_once(self.recognizer, _transcribe_silence)
        if self.turn_model is not None:
            self.turn_model.load()

    def push(self, chunk: AudioChunk) -> None:
        """Queue mono audio at any sample rate; ``chunk.pts`` is its media time (seconds).

        Every sample is heard, in order: a jump in ``pts`` (bursty arrival on a busy machine)
        only moves the media-time labels of what follows. Raises the stage's error if it has
        failed, and ``RuntimeError`` after ``close()``.
        """
        self._check_open()
        samples = np.asarray(chunk.samples)
        if samples.ndim != 1:
            raise ValueError(f"hearing needs mono audio (1-D samples), got shape {samples.shape}")
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        self._post(("audio", samples, chunk.sample_rate, chunk.pts, time.perf_counter()))

    def push_reference(self, chunk: AudioChunk) -> None:
        """What the character plays at ``chunk.pts`` (its output audio, any rate): the echo gate
        compares the microphone with it. Only the level is kept."""
        self._check_open()
        samples = np.asarray(chunk.samples, dtype=np.float32)
        power = float(np.mean(np.square(samples, dtype=np.float64))) if len(samples) else 0.0
        level = 10.0 * float(np.log10(power)) if power > 1e-12 else -120.0
        self._post(("reference", chunk.pts, level, chunk.duration))

    def set_prompt(self, prompt: str) -> None:
        """Text that biases the recogniser from the next transcription on: names and words the
        user is likely to say (the character's name, its knowledge's vocabulary, names the user
        said) and the turn so far. Whisper reads it as preceding context: keep it short."""
        self._check_open()
        self._post(("prompt", prompt.strip()[-_PROMPT_CHARS:]))

    def confirm_echo(self) -> None:
        """The last segment was the character's own voice coming back: learn the echo path."""
        self._check_open()
        self._post(("echo",))

    def clear(self) -> None:
        """Drop the segment in progress and any pending transcripts (see ``Listener.clear``)."""
        self._check_open()
        self._post(("clear",))

    @property
    def speaking(self) -> bool:
        """The user is inside a segment (a snapshot; may be read from any thread)."""
        return self._listener.speaking

    async def flush(self) -> None:
        """Wait until all audio pushed so far is processed and no transcription is pending."""
        self._check_open()
        if not self.threaded:
            return
        self._ensure_started()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(None)

        def resolve() -> None:
            loop.call_soon_threadsafe(settle)

        self._inbox.put(("flush", resolve))
        await done
        self._raise_if_failed()

    async def events(self) -> AsyncIterator[HearingEvent]:
        """Voice activity and transcripts in order; ends after ``close()``. Raises the stage's
        error (e.g. ``EngineError``) once the events before it are delivered."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while True:
            with self._events_lock:
                batch = list(self._events)
                self._events.clear()
            for event in batch:
                yield event
            if batch:
                continue
            self._raise_if_failed()
            if self._closed:
                return
            await self._wake.wait()
            self._wake.clear()

    def __aiter__(self) -> AsyncIterator[HearingEvent]:
        return self.events()

    @property
    def traces(self) -> list[HearingTrace]:
        """Timings of every finished segment so far (oldest first)."""
        return list(self._listener.traces)

    def close(self) -> None:
        """Stop the worker threads (a running transcription finishes in the background)."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._inbox.put(("close",))
            thread.join(timeout=_CLOSE_TIMEOUT_S)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._wake_consumer()

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Hearing:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- threads ------------------------------------------------------------------------------

    def _post(self, item: tuple[Any, ...]) -> None:
        if not self.threaded:
            self._run_inline(item)
            return
        self._ensure_started()
        self._inbox.put(item)

    def _run_inline(self, item: tuple[Any, ...]) -> None:
        """``threaded=False``: handle now, then run the transcriptions it asked for, in order."""
        try:
            self._handle(item[0], item)
            while self._inline_jobs:
                job = self._inline_jobs.pop(0)
                result = self.recognizer.transcribe(job.audio, prompt=job.prompt or None)
                self._listener.on_result(job, result)
        except BaseException as exc:
            self._error = exc
            self._wake_consumer()
            raise

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is not None:
                return
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="talkie-asr")
            # Load Whisper in the background right away, so the first final does not pay it.
            self._executor.submit(self._preload)
            thread = threading.Thread(target=self._run, name="talkie-hearing", daemon=True)
            thread.start()
            self._thread = thread

    def _preload(self) -> None:
        try:
            self.recognizer.load()
        except Exception:  # reported again, with context, by the first transcription
            log.exception("loading the speech recogniser failed")

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            kind = item[0]
            if kind == "close":
                return
            try:
                self._handle(kind, item)
            except BaseException as exc:  # surfaced to the consumer by events()/push()
                log.error("hearing stopped: %s", exc)
                self._error = exc
                self._wake_consumer()
                for waiter in self._flush_waiters:
                    waiter()
                return
            if self._flush_waiters and self._listener.idle:
                waiters, self._flush_waiters = self._flush_waiters, []
                for waiter in waiters:
                    waiter()

    def _handle(self, kind: str, item: tuple[Any, ...]) -> None:
        if kind == "audio":
            _, samples, rate, pts, wall = item
            out, out_pts = self._resample(samples, rate, pts)
            self._listener.push(out, out_pts, wall)
        elif kind == "reference":
            _, pts, level, duration = item
            self._listener.push_reference(pts, level, duration)
        elif kind == "result":
            _, job, outcome = item
            if isinstance(outcome, BaseException):
                raise outcome
            self._listener.on_result(job, outcome)
        elif kind == "prompt":
            self._listener.prompt = item[1]
        elif kind == "echo":
            self._listener.confirm_echo()
        elif kind == "clear":
            self._listener.clear()
        elif kind == "flush":
            self._flush_waiters.append(item[1])

    def _resample(self, samples: np.ndarray, rate: int, pts: float) -> tuple[np.ndarray, float]:
        resampler = self._resampler
        if resampler is None or resampler.in_rate != rate:
            # Only a new rate restarts the resampler: a jump in arrival times is a label change
            # (the listener re-anchors its media times) and the samples stay continuous.
            resampler = StreamResampler(in_rate=rate, out_rate=SAMPLE_RATE)
            self._resampler = resampler
        out = resampler.process(samples)
        # Output sample k is the input at time k / 16000 - delay (the FIR's group delay).
        return out, pts - resampler.delay_seconds

    def _submit(self, job: AsrJob) -> None:
        if not self.threaded:
            self._inline_jobs.append(job)
            return
        executor = self._executor
        if executor is None or self._closed:
            return
        executor.submit(self._transcribe, job)

    def _transcribe(self, job: AsrJob) -> None:
        outcome: AsrResult | BaseException
        try:
            outcome = self.recognizer.transcribe(job.audio, prompt=job.prompt or None)
        except BaseException as exc:  # handed to the front-end thread, which stops the stage
            outcome = exc
        self._inbox.put(("result", job, outcome))

    # -- events -------------------------------------------------------------------------------

    def _emit(self, event: HearingEvent) -> None:
        with self._events_lock:
            self._events.append(event)
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to wake
                loop.call_soon_threadsafe(wake.set)

    @property
    def failed(self) -> bool:
        """A stage failed: ``events()`` raises its error; nothing more is heard."""
        return self._error is not None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Hearing is closed")
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, Exception):
            raise error
        raise RuntimeError(f"hearing failed: {error!r}") from error
