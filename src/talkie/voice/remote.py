"""Voices from a speech server the operator runs: OpenAI-compatible ``/v1/audio/speech``, and real
voice cloning on servers that take a reference recording (self-hosted XTTS, F5, Chatterbox...).

The server is the operator's, set in the environment (never by an API caller, so a voice cannot
make Talkie call an arbitrary address): ``TALKIE_TTS_URL`` (e.g. ``http://gpu-box:4123/v1``),
``TALKIE_TTS_MODEL`` (default ``tts-1``) and ``TALKIE_TTS_API_KEY`` (sent as a bearer token).

- ``remote:NAME``: one of the server's own voices (``POST {url}/audio/speech`` with
  ``{"model", "input", "voice": NAME, "response_format": "wav"}``, the OpenAI convention).
- ``clone:PATH``: a cloned voice from the reference recording at PATH (written by Talkie when the
  voice was created). The recording is uploaded once to the server's voice library,
  ``POST {url}/voices`` (multipart ``voice_name`` + ``voice_file``, the convention of the popular
  self-hosted Chatterbox and XTTS servers), under a name derived from its content; speech then
  uses that name as the ``voice``. A server that already has the name answers 409, which is fine.

Such servers return audio without timings: each clause's phonemes come from the aligner
(``talkie.voice.align``: Whisper word timings of the known text, phonemes spread in each word).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError
from talkie.messages import AudioChunk, SpeechClip
from talkie.voice.text import clauses_for_speech, prepare_for_tts

__all__ = ["RemoteTTS", "remote_settings"]

log = logging.getLogger(__name__)

_TIMEOUT = 60.0
_MAX_AUDIO_BYTES = 50 * 1024 * 1024


def remote_settings() -> tuple[str, str, str]:
    """(url, model, api key) of the operator's speech server; raises if none is configured."""
    url = os.environ.get("TALKIE_TTS_URL", "").strip().rstrip("/")
    if not url:
        raise MissingDependencyError(
            "no speech server is configured: set TALKIE_TTS_URL (e.g. http://host:4123/v1) to "
            "an OpenAI-compatible /audio/speech server"
        )
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"TALKIE_TTS_URL must be an http(s) URL, not {url!r}")
    model = os.environ.get("TALKIE_TTS_MODEL", "").strip() or "tts-1"
    return url, model, os.environ.get("TALKIE_TTS_API_KEY", "").strip()


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of a PCM WAV answer."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise EngineError(f"the speech server did not answer with WAV audio ({exc})") from exc
    if width != 2:
        raise EngineError(f"the speech server sent {8 * width}-bit WAV; 16-bit PCM is expected")
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm, rate


class RemoteTTS:
    """``TextToSpeech`` over the operator's speech server (a stock or a cloned voice)."""

    def __init__(self, *, voice: str = "", reference: str | Path | None = None) -> None:
        self.url, self.model, self._key = remote_settings()
        self.reference = Path(reference) if reference else None
        if self.reference is not None:
            if not self.reference.is_file():
                raise InvalidInputError(f"the cloned voice's recording is missing: {reference}")
            digest = hashlib.sha256(self.reference.read_bytes()).hexdigest()
            voice = f"talkie-{digest[:16]}"
        if not voice:
            raise InvalidInputError("a remote voice needs a voice name or a reference recording")
        self.voice = voice
        self.name: str = f"clone:{voice}" if self.reference else f"remote:{voice}"
        self.sample_rate: int = 24000  # until the first answer tells
        self._uploaded = self.reference is None
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def load(self) -> None:
        """Upload the reference recording (once) so the first clause does not wait for it."""
        self._ensure_uploaded()

    def _ensure_uploaded(self) -> None:
        import httpx

        with self._lock:
            if self._uploaded or self.reference is None:
                return
            files = {"voice_file": (self.reference.name, self.reference.read_bytes(), "audio/wav")}
            try:
                r = httpx.post(
                    f"{self.url}/voices",
                    data={"voice_name": self.voice},
                    files=files,
                    headers=self._headers(),
                    timeout=_TIMEOUT,
                )
            except httpx.HTTPError as exc:
                raise EngineError(f"the speech server is unreachable ({exc})") from exc
            if r.status_code not in (200, 201, 409):
                raise EngineError(
                    f"the speech server refused the voice sample (HTTP {r.status_code}); "
                    "check that it supports voice cloning (POST /voices)"
                )
            self._uploaded = True
            log.info("uploaded cloned voice %s to the speech server", self.voice)

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        clauses = clauses_for_speech(text)
        return (self.synthesize_clause(c) for c in clauses)

    def synthesize_clause(self, clause: str) -> SpeechClip:
        import httpx

        from talkie.voice.align import align_speech

        self._ensure_uploaded()
        body = {
            "model": self.model,
            "input": prepare_for_tts(clause),
            "voice": self.voice,
            "response_format": "wav",
        }
        try:
            r = httpx.post(
                f"{self.url}/audio/speech", json=body, headers=self._headers(), timeout=_TIMEOUT
            )
        except httpx.HTTPError as exc:
            raise EngineError(f"the speech server is unreachable ({exc})") from exc
        if r.status_code != 200:
            raise EngineError(f"the speech server answered HTTP {r.status_code}: {r.text[:200]}")
        if len(r.content) > _MAX_AUDIO_BYTES:
            raise EngineError("the speech server's answer is too large")
        audio, rate = decode_wav(r.content)
        self.sample_rate = rate
        clip = align_speech(AudioChunk(audio, rate), transcript=clause)
        return SpeechClip(audio=clip.audio, sample_rate=rate, phonemes=clip.phonemes, text=clause)
