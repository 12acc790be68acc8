"""The hearing stage: live audio in, voice activity and transcripts out, as an async iterator.

Threads (the event loop only enqueues and dequeues):

- the **front-end thread** resamples to 16 kHz, runs the VAD (0.2 ms per 32 ms frame) and the
  endpoint, and decides what to transcribe (``Listener``). It is separate from the ASR thread so
  that the end of a turn is detected on time even while a transcription is running;
- the **ASR thread** (a one-worker executor) runs Whisper; results go back to the front-end
  thread through the same queue as the audio, so all decisions happen on one thread in order.

Events are ``VoiceActivity(True)`` when the user starts speaking (stamped at the start of speech),
partial ``Transcript``s while they speak, ``VoiceActivity(False)`` stamped at the true end of
speech, then one ``FinalTranscript`` (a ``Transcript`` with ``final=True``, plus ``speech_end``).
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
from talkie.hearing.vad import SAMPLE_RATE, SileroVad
from talkie.messages import AudioChunk, Transcript, VoiceActivity

__all__ = ["Hearing", "HearingEvent"]

log = logging.getLogger(__name__)

HearingEvent = VoiceActivity | Transcript

_JUMP_S = 0.2  # a pts discontinuity larger than this restarts the stream timeline
_CLOSE_TIMEOUT_S = 5.0


class Hearing:
    """The live conversation's ears (see the module docstring).

    ``push`` and ``set_muted``/``clear`` may be called from any thread (typically the event
    loop); they never block. Consume ``events()`` (or ``async for event in hearing``) from one
    task. Models load lazily in the worker threads; ``load()`` loads them eagerly (blocking, so
    call it with ``asyncio.to_thread`` from async code). Close with ``close()``/``aclose()`` or
    ``async with``.

    ``recognizer`` is any ``SpeechRecognizer`` (default: ``WhisperAsr(options=asr_options)``,
    tiny.en); ``vad`` defaults to a new ``SileroVad``. One ``Hearing`` per audio stream.
    """

    def __init__(
        self,
        *,
        options: HearingOptions | None = None,
        recognizer: SpeechRecognizer | None = None,
        asr_options: WhisperOptions | None = None,
        vad: SileroVad | None = None,
    ) -> None:
        self.options = options or HearingOptions()
        self.recognizer: SpeechRecognizer = recognizer or WhisperAsr(options=asr_options)
        self._vad = vad or SileroVad()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._listener = Listener(
            options=self.options, vad=self._vad, submit=self._submit, emit=self._emit
        )
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
        self._muted = False
        # Front-end thread only: stream timeline and resampler.
        self._resampler: StreamResampler | None = None
        self._anchor_pts = 0.0
        self._consumed = 0
        self._produced = 0

    # -- public API ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load the VAD and ASR models and warm the ASR up (blocking, ~0.3-0.6 s)."""
        self._vad.load()
        self.recognizer.load()
        self.recognizer.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def push(self, chunk: AudioChunk) -> None:
        """Queue mono audio at any sample rate; ``chunk.pts`` is its media time (seconds).

        Chunks should be consecutive; a jump in ``pts`` of more than 0.2 s (or a change of
        sample rate) restarts the timeline at the new time. Raises the stage's error if it has
        failed, and ``RuntimeError`` after ``close()``.
        """
        self._check_open()
        samples = np.asarray(chunk.samples)
        if samples.ndim != 1:
            raise ValueError(f"hearing needs mono audio (1-D samples), got shape {samples.shape}")
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        self._ensure_started()
        self._inbox.put(("audio", samples, chunk.sample_rate, chunk.pts, time.perf_counter()))

    def set_muted(self, muted: bool) -> None:
        """Gate the input while the character speaks (``HearingOptions.barge_in_threshold``
        decides between ignoring it and accepting only a clear barge-in). Takes effect in order
        with the audio pushed so far."""
        self._check_open()
        self._muted = muted
        self._ensure_started()
        self._inbox.put(("mute", bool(muted)))

    @property
    def muted(self) -> bool:
        return self._muted

    def clear(self) -> None:
        """Drop the utterance in progress and any pending transcripts (see ``Listener.clear``)."""
        self._check_open()
        self._ensure_started()
        self._inbox.put(("clear",))

    async def flush(self) -> None:
        """Wait until all audio pushed so far is processed and no transcription is pending."""
        self._check_open()
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
        """Timings of every finished utterance so far (oldest first)."""
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
        elif kind == "result":
            _, job, outcome = item
            if isinstance(outcome, BaseException):
                raise outcome
            self._listener.on_result(job, outcome)
        elif kind == "mute":
            self._listener.set_muted(item[1])
        elif kind == "clear":
            self._listener.clear()
        elif kind == "flush":
            self._flush_waiters.append(item[1])

    def _resample(self, samples: np.ndarray, rate: int, pts: float) -> tuple[np.ndarray, float]:
        resampler = self._resampler
        expected = self._anchor_pts + self._consumed / rate if resampler else 0.0
        if resampler is None or resampler.in_rate != rate or abs(pts - expected) > _JUMP_S:
            resampler = StreamResampler(in_rate=rate, out_rate=SAMPLE_RATE)
            self._resampler = resampler
            self._anchor_pts, self._consumed, self._produced = pts, 0, 0
        out = resampler.process(samples)
        # Output sample k is the input at time k / 16000 - delay (the FIR's group delay).
        out_pts = self._anchor_pts + self._produced / SAMPLE_RATE - resampler.delay_seconds
        self._consumed += len(samples)
        self._produced += len(out)
        return out, out_pts

    def _submit(self, job: AsrJob) -> None:
        executor = self._executor
        if executor is None or self._closed:
            return
        executor.submit(self._transcribe, job)

    def _transcribe(self, job: AsrJob) -> None:
        outcome: AsrResult | BaseException
        try:
            outcome = self.recognizer.transcribe(job.audio)
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
