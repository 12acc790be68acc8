"""Speech fixtures for the hearing tests, generated at test time with Piper and espeak-ng.

Imported by module name (tests have no packages). Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from talkie.hearing import AsrResult, Hearing, HearingEvent
from talkie.messages import AudioChunk
from talkie.voice.base import TextToSpeech

RATE = 16_000
SILENCE = ""


@dataclass(frozen=True)
class Utterance:
    """16 kHz speech with the true start/end of the words (from the TTS phoneme timings)."""

    audio: np.ndarray
    start: float
    end: float
    text: str

    @property
    def duration(self) -> float:
        return len(self.audio) / RATE


def speak(tts: TextToSpeech, text: str) -> Utterance:
    """Synthesise ``text`` (all clauses) at 16 kHz with the true speech start and end."""
    parts: list[np.ndarray] = []
    start = end = None
    offset = 0.0
    for clip in tts.synthesize(text):
        voiced = [p for p in clip.phonemes if p.phoneme.strip() not in (SILENCE, "_")]
        if voiced:
            start = offset + voiced[0].start if start is None else start
            end = offset + voiced[-1].end
        parts.append(resample_poly(clip.audio, RATE, clip.sample_rate).astype(np.float32))
        offset += clip.duration
    assert start is not None and end is not None
    return Utterance(np.concatenate(parts), start, end, text)


def scene(
    utterance: Utterance,
    *,
    before: float = 0.6,
    after: float = 1.2,
    snr_db: float | None = 20.0,
    level_dbfs: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, float, float]:
    """Pad with silence, optionally set the speech level and add white noise at ``snr_db``
    (relative to the speech's active level). Returns (audio, true start, true end) in seconds."""
    speech = utterance.audio.copy()
    active = _active_rms(speech)
    if level_dbfs is not None:
        speech *= 10 ** (level_dbfs / 20) / active
        active = _active_rms(speech)
    audio = np.concatenate(
        [
            np.zeros(round(before * RATE), np.float32),
            speech,
            np.zeros(round(after * RATE), np.float32),
        ]
    )
    if snr_db is not None:
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * active / 10 ** (snr_db / 20)
    return audio.astype(np.float32), before + utterance.start, before + utterance.end


def _active_rms(audio: np.ndarray) -> float:
    """RMS over the 20 ms windows that carry speech (within 30 dB of the loudest)."""
    n = len(audio) // 320 * 320
    windows = np.sqrt(np.mean(audio[:n].reshape(-1, 320).astype(np.float64) ** 2, axis=1))
    active = windows[windows > windows.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(active**2)))


def frames(audio: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """Consecutive 512-sample frames with their start times."""
    return [(audio[i : i + 512], i / RATE) for i in range(0, len(audio) - 511, 512)]


def level_db(frame: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(frame.astype(np.float64) ** 2)) + 1e-12))


def to_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    return resample_poly(audio, rate, RATE).astype(np.float32) if rate != RATE else audio


async def stream(
    hearing: Hearing,
    audio: np.ndarray,
    *,
    rate: int = RATE,
    chunk_s: float = 0.02,
    speed: float | None = 2.0,
    start_pts: float = 0.0,
) -> None:
    """Push ``audio`` (already at ``rate``) in WebRTC-like chunks, ``speed`` x real time
    (None: as fast as possible)."""
    step = round(chunk_s * rate)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(0, len(audio), step):
        hearing.push(AudioChunk(audio[i : i + step], rate, pts=start_pts + i / rate))
        if speed is not None:
            due = t0 + (i + step) / rate / speed
            await asyncio.sleep(max(0.0, due - loop.time()))


async def collect(hearing: Hearing) -> list[HearingEvent]:
    """All events until the hearing is closed."""
    return [event async for event in hearing]


class FakeRecognizer:
    """A scripted recogniser: the "text" names the seconds of audio it saw, e.g. "audio 1.23"."""

    name = "fake"

    def __init__(self, *, delay_s: float = 0.0, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error
        self.calls: list[float] = []

    def load(self) -> None:
        pass

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult:
        import time

        if self.error is not None:
            raise self.error
        time.sleep(self.delay_s)
        seconds = len(audio) / RATE
        self.calls.append(seconds)
        return AsrResult(f"audio {seconds:.2f}", seconds, self.delay_s * 1000, 10.0)
