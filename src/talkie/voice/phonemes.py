"""Phoneme timeline helpers shared by the TTS engines and the aligner.

Engines report phonemes in slightly different shapes (Piper: one symbol per code point with stress
marks, length marks, pauses and BOS/EOS as separate timed tokens; espeak-ng: phoneme names with
pause events). Everything leaving ``talkie.voice`` is normalised here to the same form: a tuple of
``PhonemeTiming`` that tiles the clip, with IPA phoneme labels and ``""`` for silence.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from talkie.messages import PhonemeTiming

SILENCE = ""
STRESS_MARKS = frozenset("ˈˌ")
# Piper's sentence markers and padding; they carry samples but are not speech.
_MARKER_SYMBOLS = frozenset({"^", "$", "_"})
_TIE_BARS = frozenset("\u0361\u035c")

# Typical phoneme durations (seconds) at a normal speaking rate. Only their ratios matter: they
# decide how a known time span is shared among the phonemes inside it.
_VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪʉʊʌʏøœɶᵻ")
_STOPS = frozenset("pbtdkgɡcɟqɢʔ")
_FRICATIVES = frozenset("fvθðszʃʒçʝxɣχʁħʕɸβ")
_NASALS = frozenset("mnŋɲɴɱ")
_APPROXIMANTS = frozenset("lɫɬɮɹɻrjwʋɰʎʟɭ")
_DURATION_VOWEL = 0.085
_DURATION_LONG_VOWEL = 0.13
_DURATION_STOP = 0.06
_DURATION_AFFRICATE = 0.09
_DURATION_FRICATIVE = 0.085
_DURATION_NASAL = 0.065
_DURATION_APPROXIMANT = 0.06
_DURATION_H = 0.055
_DURATION_FLAP = 0.03
_DURATION_OTHER = 0.07


def is_pause_symbol(symbol: str) -> bool:
    """True for tokens that take time but are not speech: space, punctuation, BOS/EOS/padding."""
    if symbol in _MARKER_SYMBOLS or symbol.isspace() or symbol == "":
        return True
    return all(unicodedata.category(ch).startswith("P") for ch in symbol)


def _is_modifier(symbol: str) -> bool:
    """Length marks, aspiration, combining diacritics: they belong to the phoneme before them."""
    return (
        len(symbol) == 1
        and symbol not in STRESS_MARKS
        and unicodedata.category(symbol) in ("Lm", "Mn", "Sk")
    )


def clean_phoneme_counts(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Normalise engine phoneme tokens with sample counts into clean (phoneme, samples) runs.

    Stress marks give their samples to the next phoneme (a stress mark is a property of the
    syllable that follows, and its time is that vowel's onset); modifiers (``ː``, ``ʰ``, combining
    marks) join the phoneme before them; pauses (space, punctuation, BOS/EOS) become silence ``""``
    and adjacent silences merge. The total number of samples is preserved exactly.
    """
    labels: list[str] = []
    counts: list[int] = []
    pending = 0  # samples of stress marks waiting for the next phoneme

    for raw_symbol, raw_samples in pairs:
        samples = int(raw_samples)
        symbol = "".join(ch for ch in raw_symbol if ch not in STRESS_MARKS)
        if raw_symbol and not symbol:
            pending += samples
            continue
        if is_pause_symbol(symbol):
            # A stress mark right before a pause has nothing to attach to: keep its time as pause.
            samples += pending
            pending = 0
            if labels and labels[-1] == SILENCE:
                counts[-1] += samples
            else:
                labels.append(SILENCE)
                counts.append(samples)
            continue
        joins_previous = (
            bool(labels)
            and labels[-1] != SILENCE
            and (_is_modifier(symbol) or labels[-1][-1] in _TIE_BARS)
        )
        if joins_previous:
            labels[-1] += symbol
            counts[-1] += samples + pending
        else:
            labels.append(symbol)
            counts.append(samples + pending)
        pending = 0
    if pending:
        if labels:
            counts[-1] += pending
        else:
            labels.append(SILENCE)
            counts.append(pending)
    out: list[tuple[str, int]] = []
    for label, n in zip(labels, counts, strict=True):
        if n <= 0:
            continue
        if out and label == SILENCE and out[-1][0] == SILENCE:
            out[-1] = (SILENCE, out[-1][1] + n)
        else:
            out.append((label, n))
    return out


def counts_to_timings(
    pairs: Sequence[tuple[str, int]], sample_rate: int, total_samples: int
) -> tuple[PhonemeTiming, ...]:
    """Turn (phoneme, sample count) runs into timings that tile ``total_samples`` exactly.

    Boundaries are computed from integer sample positions, so each phoneme's ``end`` is the very
    same float as the next one's ``start``. If the counts do not add up to the audio (a trimmed
    clip), the timeline is cut or padded with silence at the end.
    """
    timings: list[PhonemeTiming] = []
    position = 0
    for label, count in pairs:
        if position >= total_samples:
            break
        end = min(position + int(count), total_samples)
        if end > position:
            timings.append(PhonemeTiming(label, position / sample_rate, end / sample_rate))
        position = end
    if position < total_samples:
        timings.append(PhonemeTiming(SILENCE, position / sample_rate, total_samples / sample_rate))
    return merge_silences(timings)


def merge_silences(timings: Iterable[PhonemeTiming]) -> tuple[PhonemeTiming, ...]:
    """Merge adjacent silences and drop empty spans."""
    out: list[PhonemeTiming] = []
    for t in timings:
        if t.end <= t.start:
            continue
        if out and t.phoneme == SILENCE and out[-1].phoneme == SILENCE:
            out[-1] = PhonemeTiming(SILENCE, out[-1].start, t.end)
        else:
            out.append(t)
    return tuple(out)


def fill_silences(timings: Iterable[PhonemeTiming], duration: float) -> tuple[PhonemeTiming, ...]:
    """Clamp sorted timings to ``[0, duration]`` and fill every gap with silence so they tile it.

    Overlaps (possible in noisy event streams) are resolved by starting each phoneme no earlier
    than the end of the previous one.
    """
    out: list[PhonemeTiming] = []
    cursor = 0.0
    for t in sorted(timings, key=lambda p: p.start):
        start = min(max(t.start, cursor), duration)
        end = min(max(t.end, start), duration)
        if end <= start:
            continue
        if start > cursor:
            out.append(PhonemeTiming(SILENCE, cursor, start))
        out.append(PhonemeTiming(t.phoneme, start, end))
        cursor = end
    if cursor < duration:
        out.append(PhonemeTiming(SILENCE, cursor, duration))
    return merge_silences(out)


def typical_duration(phoneme: str) -> float:
    """A typical duration in seconds for an IPA phoneme (vowels long, flaps and stops short)."""
    if phoneme == SILENCE:
        return 0.1
    base = "".join(ch for ch in phoneme if not _is_modifier(ch) and ch not in STRESS_MARKS)
    if not base:
        return _DURATION_OTHER
    first = base[0]
    long_mark = "ː" in phoneme
    if first in _VOWELS:
        vowels = sum(ch in _VOWELS for ch in base)
        # Long vowels and diphthongs ("ɑː", "aɪ") take about one and a half short vowels.
        return _DURATION_LONG_VOWEL if (long_mark or vowels > 1) else _DURATION_VOWEL
    if len(base) > 1 and first in _STOPS and base[-1] in _FRICATIVES:
        return _DURATION_AFFRICATE
    if first in _STOPS:
        return _DURATION_STOP
    if first in _FRICATIVES:
        return _DURATION_FRICATIVE
    if first in _NASALS:
        return _DURATION_NASAL
    if first in _APPROXIMANTS:
        return _DURATION_APPROXIMANT
    if first == "h":
        return _DURATION_H
    if first == "ɾ":
        return _DURATION_FLAP
    return _DURATION_OTHER


def spread_phonemes(phonemes: Sequence[str], start: float, end: float) -> list[PhonemeTiming]:
    """Share the span ``[start, end)`` among ``phonemes`` in proportion to typical durations."""
    if not phonemes or end <= start:
        return []
    weights = np.array([typical_duration(p) for p in phonemes], dtype=np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    edges[-1] = end  # no rounding drift at the end of the span
    return [PhonemeTiming(p, float(edges[i]), float(edges[i + 1])) for i, p in enumerate(phonemes)]


def frame_energy_db(
    audio: np.ndarray, sample_rate: int, hop: float = 0.01, window: float = 0.02
) -> np.ndarray:
    """Short-time RMS level in dB (one value per ``hop`` seconds, frame i centred at i*hop)."""
    hop_n = max(1, int(round(hop * sample_rate)))
    win_n = max(hop_n, int(round(window * sample_rate)))
    x = np.asarray(audio, dtype=np.float64)
    n_frames = max(1, int(np.ceil(len(x) / hop_n)))
    padded = np.pad(x, (win_n // 2, win_n + n_frames * hop_n))
    power = np.convolve(padded * padded, np.ones(win_n) / win_n, mode="valid")
    rms = np.sqrt(np.maximum(power[::hop_n][:n_frames], 0.0))
    return 20.0 * np.log10(rms + 1e-10)


def speech_mask(
    audio: np.ndarray, sample_rate: int, hop: float = 0.01, floor_db: float = -35.0
) -> np.ndarray:
    """Per-``hop`` frames that carry speech: louder than ``floor_db`` below the loud frames.

    The reference level is a high percentile of the frame levels, so the threshold adapts to
    the recording's gain; frames under -60 dBFS never count as speech.
    """
    db = frame_energy_db(audio, sample_rate, hop=hop)
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    reference = float(np.percentile(db, 95))
    return (db > reference + floor_db) & (db > -60.0)


def speech_bounds(audio: np.ndarray, sample_rate: int) -> tuple[float, float] | None:
    """Start and end time (seconds) of the audible part of ``audio``; None if it is silent."""
    hop = 0.01
    mask = speech_mask(audio, sample_rate, hop=hop)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    duration = len(audio) / sample_rate
    return max(0.0, idx[0] * hop - hop / 2), min(duration, (idx[-1] + 1) * hop + hop / 2)


def distribute_phonemes(
    tokens: Sequence[str], audio: np.ndarray, sample_rate: int
) -> tuple[PhonemeTiming, ...]:
    """Timings for engine tokens without alignments: spread over the audible part by typical
    durations, with pause tokens kept as (shorter) silences between the spoken phonemes."""
    duration = len(audio) / sample_rate
    # Reuse the token cleaner so stress/length marks and pauses are treated as with alignments:
    # every token gets a nominal weight of one sample here, only the labels are used.
    labels = [label for label, _ in clean_phoneme_counts((t, 1) for t in tokens)]
    spoken = [label for label in labels if label != SILENCE]
    if not spoken:
        return (PhonemeTiming(SILENCE, 0.0, duration),) if duration > 0 else ()
    bounds = speech_bounds(audio, sample_rate) or (0.0, duration)
    # Interior pauses are weighted like a short phoneme; leading/trailing ones are the silence
    # outside the audible bounds.
    while labels and labels[0] == SILENCE:
        labels.pop(0)
    while labels and labels[-1] == SILENCE:
        labels.pop()
    weights = np.array(
        [0.06 if label == SILENCE else typical_duration(label) for label in labels], dtype=float
    )
    start, end = bounds
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    timings = [
        PhonemeTiming(label, float(edges[i]), float(edges[i + 1])) for i, label in enumerate(labels)
    ]
    return fill_silences(timings, duration)
