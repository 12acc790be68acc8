"""Speech models shared by live sessions: the recognizer and one voice per spec, loaded once.

Sessions come and go (a page reload is a new session); the models should not be reloaded each
time, and keeping them in their own processes keeps the session's CPU for rendering. Two ways:

- **own model processes** (default): this process starts one per voice spec and one recognizer
  (the in-process host, tests, a Ray actor);
- **the machine's speech service**: one process (``start_speech_service``, in the web process
  of the process host) holds the recognizer and the voices, and every session worker of the
  machine calls it over a Unix socket (``use_speech_service``). A new worker then loads no
  speech model: its warm-up is imports and the character's images, which is what a visitor
  who arrives while another session talks waits for (bench/session_hosts.py), and each session
  costs ~0.6 GB less (two model processes).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from talkie.errors import EngineError, TalkieError
from talkie.hearing.asr import AsrResult, WhisperAsr, WhisperOptions
from talkie.hearing.process import ProcessRecognizer
from talkie.messages import SpeechClip
from talkie.voice import load_tts
from talkie.voice.base import TextToSpeech
from talkie.voice.process import ProcessTTS
from talkie.worker import RemoteWorker, ServiceEndpoint, WorkerProcess, serve_endpoint, warm_once

log = logging.getLogger(__name__)

# Speech models work in short bursts on the answer's critical path (the final transcript, then
# the first clause's audio), so they run ABOVE the renderer's priority (nice -5) where that is
# permitted (root or CAP_SYS_NICE; elsewhere at normal priority), each on one core (Whisper's
# cpu_threads, TALKIE_PIPER_THREADS), so a burst takes at most one of the cores from video.
# At the renderer's priority they waited for the renderer, the encoder and the browser: with
# Chromium on the same 2 cores the ASR took 473-589 ms and the first clause 459-547 ms
# (medians, 3 runs), against 316-329 and 283-359 ms at nice -5 (2 runs; bench/README.md,
# turn_latency "2026-12-04").
# TALKIE_SPEECH_NICENESS sets another nice level (positive: video first).
SPEECH_NICENESS = int(os.environ.get("TALKIE_SPEECH_NICENESS", "-5"))
SERVICE_START_TIMEOUT = 120.0
_lock = threading.Lock()
_voices: dict[str, ProcessTTS] = {}
_recognizer: list[ProcessRecognizer] = []
_service_endpoint: list[ServiceEndpoint] = []  # set in a session worker: use the machine's


def use_speech_service(endpoint: ServiceEndpoint) -> None:
    """From now on this process's sessions call the machine's speech service at ``endpoint``
    instead of starting model processes of their own."""
    with _lock:
        _service_endpoint[:] = [endpoint]


def uses_speech_service() -> bool:
    """Whether this process's sessions call the machine's speech service."""
    with _lock:
        return bool(_service_endpoint)


def shared_voice(spec: str) -> ProcessTTS:
    with _lock:
        voice = _voices.get(spec)
        if voice is None:
            service = _service_client("voice") if _service_endpoint else None
            voice = ProcessTTS(spec=spec, niceness=SPEECH_NICENESS, service=service)
            _voices[spec] = voice
        return voice


def shared_recognizer() -> ProcessRecognizer:
    with _lock:
        if not _recognizer:
            service = _service_client("speech recognizer") if _service_endpoint else None
            _recognizer.append(ProcessRecognizer(niceness=SPEECH_NICENESS, service=service))
        return _recognizer[0]


def _service_client(name: str) -> RemoteWorker:
    # One connection per model: a session's transcript and its voice do not wait for each other.
    return RemoteWorker(_service_endpoint[0], name=f"speech ({name})")


@atexit.register
def close_shared() -> None:
    with _lock:
        for voice in _voices.values():
            voice.close()
        _voices.clear()
        for recognizer in _recognizer:
            recognizer.close()
        _recognizer.clear()


class SpeechModels:
    """The object inside the speech service's process: the recognizer and voices by spec, each
    loaded and warmed once; every session worker of the machine calls these methods."""

    def __init__(self, *, voices: tuple[str, ...] = ()) -> None:
        _few_malloc_arenas()
        self._lock = threading.Lock()
        self._voices: dict[str, TextToSpeech] = {}
        self._recognizer = WhisperAsr(options=WhisperOptions())
        self._recognizer.load()
        warm_once(self._recognizer, lambda asr: asr.transcribe(np.zeros(16000, np.float32)))
        for spec in voices:
            warm_once(self._voice(spec), lambda voice: list(voice.synthesize("Hi.")))

    def _voice(self, spec: str) -> TextToSpeech:
        with self._lock:  # a voice loads once, even when two sessions ask for it at once
            voice = self._voices.get(spec)
            if voice is None:
                voice = load_tts(spec)
                load = getattr(voice, "load", None)
                if callable(load):
                    load()
                self._voices[spec] = voice
            return voice

    def synthesize(self, spec: str, text: str) -> Iterator[SpeechClip]:
        return self._voice(spec).synthesize(text)

    def sample_rate(self, spec: str) -> int:
        return int(self._voice(spec).sample_rate)

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult:
        return self._recognizer.transcribe(audio, prompt=prompt)

    def serve_connection(self, conn: Connection, endpoint: ServiceEndpoint) -> None:
        serve_endpoint(self, conn, endpoint)


def _few_malloc_arenas(arenas: int = 2) -> None:
    """Each caller is served by a thread of its own, and glibc gives new threads new malloc
    arenas (up to 8 per core): the service's memory grew in steps of ~25 MB as sessions came
    and went (bench/speech_service_churn.py). Two arenas are plenty for a few model calls."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        import ctypes

        m_arena_max = -8  # glibc's malloc.h
        ctypes.CDLL("libc.so.6").mallopt(m_arena_max, arenas)


class SpeechService:
    """The machine's speech service, seen from the process that started it (and restarts it,
    at the same endpoint, if it has stopped)."""

    def __init__(self, voices: tuple[str, ...]) -> None:
        folder = Path(tempfile.mkdtemp(prefix="talkie-speech-"))  # mode 0700: this user only
        self.endpoint = ServiceEndpoint(str(folder / "speech.sock"), secrets.token_bytes(32))
        self._voices = voices
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: Any = None

    def ensure(self) -> ServiceEndpoint:
        """Start the service unless it runs; its endpoint once it answers."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._start()
            return self.endpoint

    def _start(self) -> None:
        self._stop()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.endpoint.address)  # left by a service that died
        worker = WorkerProcess(
            factory=functools.partial(SpeechModels, voices=self._voices),
            name="speech service", niceness=SPEECH_NICENESS, start_timeout=SERVICE_START_TIMEOUT,
        )  # fmt: skip
        conn, proc = worker.hand_over(self.endpoint)
        self._conn, self._proc = conn, proc
        if not conn.poll(SERVICE_START_TIMEOUT) or conn.recv() != ("serving",):
            self._stop()
            raise EngineError("the speech service did not start listening")
        log.info("speech service ready at %s (pid %s)", self.endpoint.address, proc.pid)
        threading.Thread(target=self._watch, args=(proc,), name="speech-watch", daemon=True).start()

    def _watch(self, proc: Any) -> None:
        """Restart the service if it stops while in use (its callers wait and reconnect)."""
        proc.join()
        with self._lock:
            if self._proc is not proc:
                return  # closed or replaced on purpose
            log.error("the speech service stopped (exit code %s): restarting it", proc.exitcode)
            try:
                self._start()
            except TalkieError:
                log.exception("the speech service could not be restarted")

    def close(self) -> None:
        with self._lock:
            self._stop()
        shutil.rmtree(Path(self.endpoint.address).parent, ignore_errors=True)

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the service sees EOF and ends
        if self._proc is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
        self._conn, self._proc = None, None


_service: list[SpeechService] = []


def start_speech_service(voices: tuple[str, ...]) -> ServiceEndpoint:
    """The machine's speech service (started on first call, restarted if it stopped)."""
    with _lock:
        if not _service:
            _service.append(SpeechService(voices))
        service = _service[0]
    return service.ensure()


@atexit.register
def _close_service() -> None:
    with _lock:
        for service in _service:
            service.close()
