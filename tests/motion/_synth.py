"""Synthetic speech clips for the motion tests: a phoneme timeline plus matching audio.

Voiced phonemes become a harmonic tone (pitch contour given per clip) whose loudness follows the
phoneme's openness; voiceless fricatives become noise; silence is silence. Good enough for the
features motion uses (loudness, pitch, spectral balance) and fully deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion.visemes import OPENNESS, viseme_for

SR = 16000
_VOICELESS = set("ptkfsθʃh") | {"tʃ"}


def timeline(spec: Sequence[tuple[str, float]], t0: float = 0.0) -> tuple[PhonemeTiming, ...]:
    """[(phoneme, duration_s), ...] -> contiguous PhonemeTiming tuple starting at ``t0``."""
    out = []
    t = t0
    for ph, dur in spec:
        out.append(PhonemeTiming(ph, round(t, 6), round(t + dur, 6)))
        t += dur
    return tuple(out)


def words(text: str, dur: float = 0.08) -> list[tuple[str, float]]:
    """Space-separated IPA symbols, each ``dur`` long; "_" is a 0.3 s pause, "," a 0.1 s gap."""
    spec: list[tuple[str, float]] = []
    for sym in text.split():
        if sym == "_":
            spec.append(("", 0.3))
        elif sym == ",":
            spec.append(("", 0.1))
        else:
            vowel = viseme_for(sym) in {"aa", "E", "ih", "oh", "ou"}
            spec.append((sym, dur * (1.4 if vowel else 1.0)))
    return spec


def make_clip(
    spec: Sequence[tuple[str, float]],
    *,
    f0: float | Callable[[np.ndarray], np.ndarray] = 130.0,
    seed: int = 0,
    with_phonemes: bool = True,
    lead: float = 0.0,
) -> SpeechClip:
    """Build a SpeechClip whose audio matches the timeline ``spec`` (after ``lead`` s silence)."""
    phonemes = timeline(spec, t0=lead)
    duration = phonemes[-1].end if phonemes else lead
    n = int(round(duration * SR))
    t = np.arange(n) / SR
    amp = np.zeros(n)
    voiced = np.zeros(n)
    noise_amp = np.zeros(n)
    for p in phonemes:
        i0, i1 = int(round(p.start * SR)), int(round(p.end * SR))
        if not p.phoneme:
            continue
        openness = OPENNESS[viseme_for(p.phoneme)]
        if p.phoneme in _VOICELESS:
            noise_amp[i0:i1] = 0.05
        else:
            amp[i0:i1] = 0.08 + 0.25 * openness
            voiced[i0:i1] = 1.0
    # Soften edges (5 ms) so the envelope has no clicks.
    k = np.hanning(int(0.01 * SR))
    k /= k.sum()
    amp = np.convolve(amp, k, mode="same")
    noise_amp = np.convolve(noise_amp, k, mode="same")
    freq = f0(t) if callable(f0) else np.full(n, float(f0))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    tone = sum(np.sin(h * phase) / h for h in range(1, 6))
    rng = np.random.default_rng(seed)
    audio = amp * tone * 0.6 + noise_amp * rng.standard_normal(n)
    return SpeechClip(
        audio=audio.astype(np.float32),
        sample_rate=SR,
        phonemes=phonemes if with_phonemes else (),
        text="",
    )


def reversals(y: np.ndarray, eps: float = 0.01) -> np.ndarray:
    """Frames k where y goes up-down-up or down-up-down over frames k..k+3 (a 1-frame shape)."""
    d = np.diff(np.asarray(y, dtype=np.float64))
    s = np.where(d > eps, 1, np.where(d < -eps, -1, 0))
    return np.flatnonzero((s[:-2] != 0) & (s[1:-1] == -s[:-2]) & (s[2:] == -s[1:-1]))


def best_lag(reference: np.ndarray, signal: np.ndarray, max_lag: int = 6) -> int:
    """Lag (frames) maximising the correlation of signal[i + lag] with reference[i]."""
    ref = reference - reference.mean()
    sig = signal - signal.mean()
    n = len(ref)
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            a, b = ref[: n - lag], sig[lag:]
        else:
            a, b = ref[-lag:], sig[: n + lag]
        scores.append(float(np.dot(a, b)) / max(len(a), 1))
    return int(np.argmax(scores)) - max_lag


SENTENCE = (
    "h ə l o ʊ , m a ɪ n e ɪ m ɪ z b ɑ b _ a ɪ l ʌ v p ɪ p ə z _ "
    "ð ɪ s ɪ z ə t ɛ s t ʌ v ð ə m a ʊ θ , æ n d p æ m p ɚ ð ɛ m"
)
