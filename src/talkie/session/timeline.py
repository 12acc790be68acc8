"""The media clock and the audio the character will say, placed on that clock.

One clock per conversation: video frames, audio frames, scheduled speech and latency traces all
use its seconds. Speech is scheduled as clips at start times; the audio track reads 20 ms frames
from the timeline (silence between clips), and barge-in cuts everything after "now".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import resample_poly

from talkie.messages import SpeechClip


class MediaClock:
    """Seconds since the conversation started.

    ``time`` is the source (default ``time.monotonic``, which is also what asyncio's loop clock
    reads). Tests pass a virtual event loop's ``loop.time`` (``tests/session/virtual_time.py``):
    then every sleep of the session is virtual and a minute of conversation runs in seconds,
    the same way every time.
    """

    def __init__(self, time_source: Callable[[], float] | None = None) -> None:
        self._time = time_source or time.monotonic
        self._t0 = self._time()

    def now(self) -> float:
        return self._time() - self._t0

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class ScheduledSpeech:
    """A clip placed on the clock: ``start``/``end`` in media seconds."""

    clip: SpeechClip
    start: float
    generation: int
    audio: np.ndarray = field(repr=False)  # at the timeline's sample rate

    @property
    def end(self) -> float:
        return self.start + self.clip.duration

    def heard_text(self, until: float) -> str:
        """The words of this clip the listener heard before ``until`` (whole words only)."""
        if until >= self.end:
            return self.clip.text
        if until <= self.start:
            return ""
        spoken = until - self.start
        words = self.clip.text.split()
        if not words:
            return ""
        # Words end where the phonemes say; fall back to proportional time without timings.
        voiced = [p for p in self.clip.phonemes if p.phoneme]
        if voiced:
            share = sum(1 for p in voiced if p.end <= spoken) / len(voiced)
        else:
            share = spoken / max(1e-6, self.clip.duration)
        return " ".join(words[: int(len(words) * share)])


class SpeechTimeline:
    """Scheduled speech at ``sample_rate`` (48 kHz for WebRTC), read in fixed-size frames."""

    def __init__(self, *, sample_rate: int = 48_000) -> None:
        self.sample_rate = sample_rate
        self.items: list[ScheduledSpeech] = []

    @property
    def end(self) -> float:
        """When the last scheduled speech ends (0 if none); a clip cut short ends at its cut."""
        return max((s.start + len(s.audio) / self.sample_rate for s in self.items), default=0.0)

    def speaking_at(self, t: float) -> bool:
        return any(s.start <= t < s.end for s in self.items)

    def schedule(
        self, clip: SpeechClip, *, start: float, generation: int, audio: np.ndarray | None = None
    ) -> ScheduledSpeech:
        """Place ``clip`` at ``start``; ``audio`` is the clip already resampled to this
        timeline's rate (do that off the event loop for long clips)."""
        if audio is None:
            audio = resample(clip.audio, clip.sample_rate, self.sample_rate)
        item = ScheduledSpeech(clip, start, generation, audio)
        self.items.append(item)
        return item

    def read(self, start: float, n_samples: int) -> np.ndarray:
        """Mixed audio for [start, start + n_samples / rate), silence where nothing plays."""
        out = np.zeros(n_samples, np.float32)
        rate = self.sample_rate
        first = int(round(start * rate))
        for item in self.items:
            offset = first - int(round(item.start * rate))
            if offset >= len(item.audio) or offset + n_samples <= 0:
                continue
            lo, hi = max(0, offset), min(len(item.audio), offset + n_samples)
            out[lo - offset : hi - offset] += item.audio[lo:hi]
        return out

    def cut(self, at: float) -> list[ScheduledSpeech]:
        """Barge-in: nothing plays after ``at``. Returns the clips that were cut or dropped."""
        cut: list[ScheduledSpeech] = []
        kept: list[ScheduledSpeech] = []
        rate = self.sample_rate
        for item in self.items:
            if item.end <= at:
                kept.append(item)
                continue
            cut.append(item)
            if item.start < at:
                # Keep what was already heard; fade the last 10 ms so the cut does not click.
                n = max(0, int(round((at - item.start) * rate)))
                audio = item.audio[:n].copy()
                fade = min(len(audio), int(0.01 * rate))
                if fade:
                    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
                kept.append(ScheduledSpeech(item.clip, item.start, item.generation, audio))
        self.items = kept
        return cut

    def forget_before(self, t: float) -> None:
        """Drop clips that finished before ``t`` (keeps the list short in long conversations)."""
        self.items = [s for s in self.items if s.start + len(s.audio) / self.sample_rate > t]


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling of float32 mono audio (exact for rational rate ratios)."""
    audio = audio.astype(np.float32)
    if rate_in == rate_out:
        return audio
    g = np.gcd(rate_in, rate_out)
    return resample_poly(audio, rate_out // g, rate_in // g).astype(np.float32)
