"""What the user said while the page was connecting, heard before the live microphone.

WebRTC carries the microphone only once the connection is up: about a second after the click,
20-40 s when a fresh session worker has to start. A user who says "Hi! How far away is the
Moon?" as soon as they pick a character lost those words. So the page records the microphone
from the moment it opens it until the connection is up, and sends that recording (the
"preroll") on the events channel before anything else:

1. the offer says one is coming (``"preroll": true`` in its body; ``WebRtcOptions.mic_preroll``);
2. on the events channel, first a JSON header ``{"type": "preroll", "sample_rate": R,
   "samples": N}``, then binary messages of 16-bit little-endian mono PCM, N samples in all
   (N may be 0: nothing worth sending, e.g. only silence was recorded).

``MicSplice`` sits between the live microphone and the conversation. While a promised preroll
has not fully arrived it holds the live audio back (nothing is dropped); then the conversation
hears the preroll, the held audio and, from then on, the live audio as it comes. If the client
breaks its promise (no header within ``header_wait_s`` of the connection, or the data stops
coming for ``data_wait_s``), what arrived is heard and the splice opens anyway, so the live
microphone is never held for long.

The seam: the page cannot know the moment its microphone's stream started flowing, so it goes on
recording a little after the connection is up (a gap would lose syllables), and the server finds
where the live audio's beginning repeats the preroll's end (cross-correlation of the two,
``repeated_tail``) and cuts that much off the preroll. Heard twice, "Hello there" became "the
long mirror". Where the two cannot be matched (silence at the seam) nothing is cut: silence
heard twice is harmless.

Timing: the preroll is stamped as ending where the live audio begins, so it usually starts
before the conversation's clock did (at a negative media time: the clock starts when the offer
is answered). That is the truth, and it matters: the character's greeting starts at time 0, and
the echo gate must not take words said before it for its echo.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import signal

from talkie.messages import AudioChunk
from talkie.session.timeline import resample

PREROLL_RATES = (8_000, 16_000, 24_000, 48_000)
MAX_PREROLL_S = 30.0  # the page keeps at most this much (its newest part)
MAX_HELD_S = 30.0  # live audio held back while a preroll arrives; older audio beyond this is heard
_CHUNK_S = 0.2  # preroll audio is handed to the conversation in pieces of this length
SEAM_SEARCH_S = 1.0  # the longest repeat looked for where the preroll meets the live audio
SEAM_MIN_S = 0.03  # shorter repeats cannot be told from chance
SEAM_MATCH = 0.6  # normalised correlation a repeat must reach
SEAM_QUIET_RMS = 0.002  # (of the differentiated signal) below this, the seam is silence


class MicSplice:
    """Orders the preroll before the live microphone (see the module docstring).

    ``push`` is the conversation's ``push_audio``; ``media_now`` its clock. Every method runs
    on the event loop.
    ``header`` and ``data`` raise ``ValueError`` with a message for the client when what it
    sent breaks the protocol (the preroll is then given up; the live audio flows on).
    """

    def __init__(
        self,
        push: Callable[[AudioChunk], None],
        *,
        expected: bool,
        header_wait_s: float = 3.0,
        data_wait_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        media_now: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._push = push
        self._clock = clock
        self._media_now = media_now  # the conversation's clock (where live audio would begin)
        self.header_wait_s = header_wait_s
        self.data_wait_s = data_wait_s
        self._open = not expected  # live audio passes straight through
        self._held: list[AudioChunk] = []
        self._held_s = 0.0
        self._rate = 0
        self._wanted = 0  # samples the header announced
        self._parts: list[np.ndarray] = []
        self._received = 0
        self._connected_at: float | None = None
        self._last_data: float | None = None
        self.heard_s = 0.0  # preroll audio handed to the conversation
        self.repeated_s = 0.0  # cut off its end: the live audio's beginning repeated it
        self.outcome = "none" if not expected else "waiting"

    @property
    def waiting(self) -> bool:
        """Live audio is being held for a preroll."""
        return not self._open

    @property
    def takes_binary(self) -> bool:
        """A header came: binary messages are its samples (late ones, after the splice gave
        up waiting, are dropped quietly)."""
        return self._rate > 0

    def connected(self) -> None:
        """The connection is up: the header's wait starts now."""
        if self._connected_at is None:
            self._connected_at = self._clock()

    def live(self, chunk: AudioChunk) -> None:
        """Live microphone audio (in order)."""
        if self._open:
            self._push(chunk)
            return
        self._held.append(chunk)
        self._held_s += chunk.duration
        while self._held_s > MAX_HELD_S and len(self._held) > 1:
            # A client that never finishes must not grow this without bound; the oldest held
            # audio is heard now (out of order with a preroll that may still come, not lost).
            oldest = self._held.pop(0)
            self._held_s -= oldest.duration
            self._push(oldest)

    def header(self, event: dict[str, Any]) -> None:
        """The client's ``{"type": "preroll", ...}`` event."""
        if self._open or self._rate:
            raise ValueError("a preroll can only come first, once, after the offer asked for it")
        rate, samples = event.get("sample_rate"), event.get("samples")
        if rate not in PREROLL_RATES:
            self.give_up("bad header")
            raise ValueError(f"preroll sample_rate must be one of {list(PREROLL_RATES)}")
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
            self.give_up("bad header")
            raise ValueError("preroll samples must be a whole number >= 0")
        if samples > MAX_PREROLL_S * rate:
            self.give_up("bad header")
            raise ValueError(f"a preroll holds at most {MAX_PREROLL_S:g} s of audio")
        self._rate, self._wanted = rate, samples
        self._last_data = self._clock()
        if samples == 0:
            self._release("empty")

    def data(self, payload: bytes) -> None:
        """One binary message of the preroll's samples (16-bit little-endian)."""
        if not self._rate:
            raise ValueError("binary data is only accepted for a preroll, after its header")
        if self._open:
            return  # too late: the live audio already went on
        if len(payload) % 2:
            self.give_up("bad data")
            raise ValueError("preroll data must be whole 16-bit samples")
        samples = np.frombuffer(payload, dtype="<i2")
        if self._received + len(samples) > self._wanted:
            self.give_up("bad data")
            raise ValueError(f"the preroll sent more than the {self._wanted} samples it announced")
        self._parts.append(samples)
        self._received += len(samples)
        self._last_data = self._clock()
        if self._received == self._wanted:
            self._release("complete")

    def check(self) -> None:
        """Open the splice if the client let its promise lapse (call every few hundred ms)."""
        if self._open:
            return
        now = self._clock()
        if self._rate == 0:
            if self._connected_at is not None and now - self._connected_at > self.header_wait_s:
                self._release("no header")
        elif self._last_data is not None and now - self._last_data > self.data_wait_s:
            self._release("incomplete")

    def give_up(self, why: str) -> None:
        """Stop waiting: what arrived of the preroll is heard, then the live audio."""
        if not self._open:
            self._release(why)

    def _release(self, outcome: str) -> None:
        self._open = True
        self.outcome = outcome
        if self._parts:
            audio = np.concatenate(self._parts).astype(np.float32) / 32768.0
            self._parts = []
            self._hear_preroll(audio)
        held, self._held, self._held_s = self._held, [], 0.0
        for chunk in held:
            self._push(chunk)

    def _hear_preroll(self, audio: np.ndarray) -> None:
        rate = self._rate
        repeated = repeated_tail(audio, self._held, rate)
        if repeated:
            audio = audio[: len(audio) - repeated]
        self.repeated_s = repeated / rate
        duration = len(audio) / rate
        # It ends where the live audio begins (see the module docstring).
        live_from = self._held[0].pts if self._held else self._media_now()
        start = live_from - duration
        step = max(1, int(_CHUNK_S * rate))
        for i in range(0, len(audio), step):
            self._push(AudioChunk(audio[i : i + step], rate, start + i / rate))
        self.heard_s = duration


def repeated_tail(preroll: np.ndarray, live: list[AudioChunk], rate: int) -> int:
    """How many samples at the end of ``preroll`` (at ``rate``) the beginning of the ``live``
    chunks repeats: the overlap where the two correlate best, if they clearly do (0 otherwise:
    no overlap, silence at the seam, or no clear match).

    For each overlap d up to ``SEAM_SEARCH_S``, the live audio's beginning is laid at d before
    the preroll's end and the two are compared where they meet (d samples, or all the live
    audio there is when less was held: it may lie wholly inside the preroll), normalised. Both
    are differentiated first (a constant offset or hum matches anything); Opus, the codec
    between the page and the server, keeps speech well above ``SEAM_MATCH``."""
    if not live or len(preroll) < 2:
        return 0
    longest = int(SEAM_SEARCH_S * rate)
    tail = np.diff(np.asarray(preroll[-(longest + 1) :], np.float64))
    head = np.diff(_live_head(live, rate, longest + 1))
    shortest = max(2, int(SEAM_MIN_S * rate))
    t, m = len(tail), len(head)
    if m < shortest or t < shortest:
        return 0
    # full[k] = sum(tail[i + k - (m - 1)] * head[i]): head[0] laid at tail[k - (m - 1)]
    full = signal.correlate(tail, head, mode="full", method="fft")
    d = np.arange(1, t + 1)  # head[0] at tail[t - d]: the last d samples of the preroll repeat
    meet = np.minimum(d, m)  # how many samples the two have in common there
    tail_cum = np.concatenate([[0.0], np.cumsum(tail**2)])
    head_cum = np.concatenate([[0.0], np.cumsum(head**2)])
    tail_energy = tail_cum[t - d + meet] - tail_cum[t - d]
    head_energy = head_cum[meet]
    quiet = SEAM_QUIET_RMS**2 * meet
    usable = (meet >= shortest) & (tail_energy > quiet) & (head_energy > quiet)
    score = np.where(
        usable, full[t - d + m - 1] / np.sqrt(np.maximum(tail_energy * head_energy, 1e-20)), 0.0
    )
    best = int(np.argmax(score))
    return best + 1 if score[best] >= SEAM_MATCH else 0


def _live_head(live: list[AudioChunk], rate: int, samples: int) -> np.ndarray:
    """The first ``samples`` of the live chunks (those at the first one's rate), at ``rate``."""
    source = int(live[0].sample_rate)
    parts, have, wanted = [], 0, math.ceil(samples * source / rate)
    for chunk in live:
        if chunk.sample_rate != source or have >= wanted:
            break
        parts.append(np.asarray(chunk.samples, np.float32))
        have += len(parts[-1])
    # resampled as one piece: per-chunk filtering would ring at every seam
    return resample(np.concatenate(parts), source, rate)[:samples].astype(np.float64)
