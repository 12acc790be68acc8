"""A TTS engine in its own process, for live sessions.

Measured here: Piper synthesising in a thread of the server process made a 720p render that
normally takes ~8 ms take 300-400 ms (its Python-level work holds the GIL in long stretches and its
ONNX threads compete for the cores), which froze the picture exactly when an answer started. In a
separate process the renderer keeps its thread and the GIL; clips stream back over a pipe as soon
as each clause is synthesised.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError, TalkieError
from talkie.messages import PhonemeTiming, SpeechClip

log = logging.getLogger(__name__)

_ERRORS: dict[str, type[TalkieError]] = {
    "InvalidInputError": InvalidInputError,
    "MissingDependencyError": MissingDependencyError,
}


def _serve(spec: str, conn: Connection) -> None:
    """Child process: load the engine once, then answer ``(text,)`` requests until EOF."""
    from talkie.voice import load_tts

    try:
        tts = load_tts(spec)
        load = getattr(tts, "load", None)
        if callable(load):
            load()
        conn.send(("ready", tts.name, tts.sample_rate))
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    while True:
        try:
            text = conn.recv()
        except (EOFError, OSError):
            return
        try:
            for clip in tts.synthesize(text):
                phonemes = [(p.phoneme, p.start, p.end) for p in clip.phonemes]
                conn.send(
                    (
                        "clip",
                        clip.audio.astype(np.float32).tobytes(),
                        clip.sample_rate,
                        phonemes,
                        clip.text,
                    )
                )
            conn.send(("done",))
        except Exception as exc:
            conn.send(("error", type(exc).__name__, str(exc)))


class ProcessTTS:
    """``TextToSpeech`` backed by a worker process running ``load_tts(spec)``.

    One request at a time (a lock); the worker is started on first use (or ``load()``) and again
    if it dies. ``close()`` stops it.
    """

    def __init__(self, *, spec: str = "piper", start_timeout: float = 60.0) -> None:
        self.spec = spec
        self.name = f"process:{spec}"
        self.sample_rate = 0
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: Any = None

    def load(self) -> None:
        with self._lock:
            self._ensure()

    def _ensure(self) -> Connection:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return self._conn
        self._stop()
        # spawn, not fork: the parent has ONNX/OpenCV thread pools that must not be forked.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(self.spec, child), name="talkie-tts", daemon=True)
        proc.start()
        child.close()
        if not parent.poll(self._start_timeout):
            proc.kill()
            raise EngineError(
                f"the voice {self.spec!r} did not start within {self._start_timeout:.0f} s"
            )
        message = parent.recv()
        if message[0] == "error":
            proc.join(timeout=5)
            raise _ERRORS.get(message[1], EngineError)(message[2])
        self.sample_rate = int(message[2])
        self._conn, self._proc = parent, proc
        return parent

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        with self._lock:
            conn = self._ensure()
            try:
                conn.send(text)
                while True:
                    message = conn.recv()
                    if message[0] == "done":
                        return
                    if message[0] == "error":
                        raise _ERRORS.get(message[1], EngineError)(message[2])
                    _, audio, rate, phonemes, clip_text = message
                    yield SpeechClip(
                        np.frombuffer(audio, np.float32),
                        int(rate),
                        tuple(PhonemeTiming(p, s, e) for p, s, e in phonemes),
                        clip_text,
                    )
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._stop()
                raise EngineError(f"the voice process stopped unexpectedly ({exc})") from exc
            except GeneratorExit:
                # The caller stopped early: the worker is mid-answer, so start a fresh one.
                self._stop()
                raise

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
        self._conn, self._proc = None, None
