"""IPA phonemes -> 15 visemes -> target mouth parameters, and the reference openness track.

The viseme set is the common 15-class one (sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, ih,
oh, ou). Phonemes arrive as espeak-style IPA from Piper or espeak-ng, sometimes with stress marks,
length marks, tie bars or diphthongs glued into one symbol; :func:`viseme_for` normalises all of
that and never raises: anything it cannot place becomes a neutral, slightly open consonant
(``DD``) if it looks like a letter, else silence. :func:`viseme_timeline` also folds the stress and
length marks that Piper times as separate tokens into their neighbours.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from talkie.messages import PhonemeTiming

__all__ = [
    "MOUTH_PARAMS",
    "OPENNESS",
    "VISEMES",
    "VISEME_SHAPES",
    "MouthShape",
    "is_bilabial",
    "is_vowel_viseme",
    "phoneme_openness_track",
    "viseme_for",
    "viseme_timeline",
]

VISEMES: tuple[str, ...] = (
    "sil",
    "PP",
    "FF",
    "TH",
    "DD",
    "kk",
    "CH",
    "SS",
    "nn",
    "RR",
    "aa",
    "E",
    "ih",
    "oh",
    "ou",
)

#: The FaceParams fields the mouth track drives, in the column order used by lipsync arrays.
MOUTH_PARAMS: tuple[str, ...] = (
    "jaw_open",
    "lip_width",
    "lip_round",
    "lip_press",
    "upper_lip_raise",
    "tongue",
    "lip_close",
)


@dataclass(frozen=True)
class MouthShape:
    """Target mouth pose of one viseme (same meaning and ranges as the FaceParams fields)."""

    jaw_open: float = 0.0
    lip_width: float = 0.0
    lip_round: float = 0.0
    lip_press: float = 0.0
    upper_lip_raise: float = 0.0
    tongue: float = 0.0  # tongue tip up at (or between) the teeth: l, n, t, d, th
    lip_close: float = 0.0  # lips meet, relaxed (pauses); lip_press also presses them

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in MOUTH_PARAMS], dtype=np.float64)


# Targets are deliberately moderate: the renderer exaggerates nothing, and a mouth that hits its
# extremes on every syllable looks like a puppet. Vowels carry the jaw; consonants shape the lips.
VISEME_SHAPES: dict[str, MouthShape] = {
    "sil": MouthShape(),
    "PP": MouthShape(lip_press=1.0),  # p b m: lips sealed, jaw closed
    "FF": MouthShape(jaw_open=0.08, lip_width=0.1, upper_lip_raise=0.55),  # lower lip to teeth
    # th: the tongue's tip between the teeth; l, n (nn), t, d: up at the ridge behind them
    "TH": MouthShape(jaw_open=0.2, lip_width=0.15, upper_lip_raise=0.2, tongue=1.0),
    "DD": MouthShape(jaw_open=0.25, lip_width=0.15, upper_lip_raise=0.05, tongue=0.6),
    "kk": MouthShape(jaw_open=0.3, lip_width=0.1),
    "CH": MouthShape(jaw_open=0.18, lip_width=-0.35, lip_round=0.55, upper_lip_raise=0.25),
    "SS": MouthShape(jaw_open=0.1, lip_width=0.35, upper_lip_raise=0.1),  # teeth almost together
    "nn": MouthShape(jaw_open=0.18, lip_width=0.1, tongue=0.85),
    "RR": MouthShape(jaw_open=0.22, lip_width=-0.25, lip_round=0.45, upper_lip_raise=0.05),
    "aa": MouthShape(jaw_open=0.85, lip_width=0.15, upper_lip_raise=0.1),
    "E": MouthShape(jaw_open=0.55, lip_width=0.4, upper_lip_raise=0.1),
    "ih": MouthShape(jaw_open=0.35, lip_width=0.5, upper_lip_raise=0.05),
    "oh": MouthShape(jaw_open=0.6, lip_width=-0.35, lip_round=0.6),
    "ou": MouthShape(jaw_open=0.3, lip_width=-0.6, lip_round=0.9),
}

#: Visible lip aperture of each viseme, 0 closed .. 1 widest. This is the reference the lip-sync
#: tests and benchmarks correlate the rendered (re-detected) mouth opening against.
OPENNESS: dict[str, float] = {
    "sil": 0.0,
    "PP": 0.0,
    "FF": 0.1,
    "TH": 0.25,
    "DD": 0.3,
    "kk": 0.35,
    "CH": 0.25,
    "SS": 0.15,
    "nn": 0.2,
    "RR": 0.3,
    "aa": 1.0,
    "E": 0.7,
    "ih": 0.45,
    "oh": 0.75,
    "ou": 0.35,
}

_VOWEL_VISEMES = frozenset({"aa", "E", "ih", "oh", "ou"})

# Multi-character symbols first (affricates, r-coloured vowels); single characters below.
_MULTI: dict[str, str] = {
    "tʃ": "CH",
    "dʒ": "CH",
    "ts": "SS",
    "dz": "SS",
    "tɕ": "CH",
    "dʑ": "CH",
    "pf": "FF",
    "ɚ": "RR",
    "ɝ": "RR",
    "əɹ": "RR",
    "ɜɹ": "RR",
}

_SINGLE: dict[str, str] = {
    # bilabials
    "p": "PP",
    "b": "PP",
    "m": "PP",
    "ɸ": "PP",
    "β": "PP",
    "ʙ": "PP",
    # labiodentals
    "f": "FF",
    "v": "FF",
    "ɱ": "FF",
    "ʋ": "FF",
    # dentals
    "θ": "TH",
    "ð": "TH",
    # alveolar stops/flaps/laterals
    "t": "DD",
    "d": "DD",
    "ɾ": "DD",
    "ʈ": "DD",
    "ɖ": "DD",
    "ɫ": "nn",
    "l": "nn",
    "ɬ": "nn",
    "ɮ": "nn",
    "ʎ": "nn",
    "ɭ": "nn",
    # velars, uvulars, glottals: the mouth is set by the neighbours, so a mid-open neutral shape
    "k": "kk",
    "g": "kk",
    "ɡ": "kk",
    "x": "kk",
    "ɣ": "kk",
    "q": "kk",
    "ɢ": "kk",
    "χ": "kk",
    "h": "kk",
    "ɦ": "kk",
    "ħ": "kk",
    "ʕ": "kk",
    "c": "kk",
    "ɟ": "kk",
    # postalveolars (lips protrude)
    "ʃ": "CH",
    "ʒ": "CH",
    "ʧ": "CH",
    "ʤ": "CH",
    "ç": "CH",
    "ɕ": "CH",
    "ʑ": "CH",
    "ʂ": "CH",
    "ʐ": "CH",
    # sibilants
    "s": "SS",
    "z": "SS",
    # nasals other than m
    "n": "nn",
    "ŋ": "nn",
    "ɲ": "nn",
    "ɳ": "nn",
    "ɴ": "nn",
    # rhotics
    "ɹ": "RR",
    "r": "RR",
    "ɻ": "RR",
    "ʁ": "RR",
    "ʀ": "RR",
    "ɽ": "RR",
    # open vowels
    "a": "aa",
    "ɑ": "aa",
    "ɐ": "aa",
    "æ": "aa",
    "ä": "aa",
    "ʌ": "aa",
    "ɶ": "aa",
    # mid front / central vowels
    "e": "E",
    "ɛ": "E",
    "ə": "E",
    "ɜ": "E",
    "ɘ": "E",
    "ɞ": "E",
    # close front vowels and the palatal glide
    "i": "ih",
    "ɪ": "ih",
    "ɨ": "ih",
    "j": "ih",
    "y": "ou",
    "ʏ": "ou",
    "ɥ": "ou",
    # rounded mid/back vowels
    "o": "oh",
    "ɔ": "oh",
    "ɒ": "oh",
    "ø": "oh",
    "œ": "oh",
    "ɵ": "oh",
    # close back rounded vowels and w
    "u": "ou",
    "ʊ": "ou",
    "ɯ": "ou",
    "ɤ": "oh",
    "w": "ou",
    "ʍ": "ou",
    "ʉ": "ou",
    # glottal stop: no articulation of its own; treated as a silence (a short one holds the shape)
    "ʔ": "sil",
}

# Marks that carry no articulation of their own (stress, length, tie bars, syllable breaks) and
# Piper's control symbols (pad, begin/end of sentence). Stripped before lookup.
_STRIP = frozenset("ˈˌːˑ͜͡‿.|‖_^$#-'")


@lru_cache(maxsize=1024)
def viseme_for(phoneme: str) -> str:
    """The viseme of one IPA phoneme symbol ("" and pauses/punctuation -> ``"sil"``).

    Never raises: unknown letters map to ``"DD"`` (a neutral, slightly open consonant), unknown
    non-letters to ``"sil"``. Diphthongs given as one symbol ("aɪ", "oʊ") map by their first vowel.
    """
    if not isinstance(phoneme, str):
        return "sil"
    # NFD splits precomposed letters (e.g. "ã") into base + combining marks we can drop.
    decomposed = unicodedata.normalize("NFD", phoneme.strip())
    chars = "".join(ch for ch in decomposed if ch not in _STRIP and not unicodedata.combining(ch))
    if not chars:
        return "sil"
    if chars[:2] in _MULTI:
        return _MULTI[chars[:2]]
    if chars[:1] in _MULTI:
        return _MULTI[chars[:1]]
    first = chars[0]
    if first in _SINGLE:
        return _SINGLE[first]
    lower = first.lower()
    if lower in _SINGLE:
        return _SINGLE[lower]
    # Later characters may still be known (e.g. an unknown modifier letter before a vowel).
    for ch in chars[1:]:
        if ch in _SINGLE:
            return _SINGLE[ch]
    if any(unicodedata.category(ch).startswith("L") for ch in chars):
        return "DD"
    return "sil"


_LENGTH_MARKS = frozenset("ːˑ")
_STRESS_MARKS = frozenset("ˈˌ͜͡‿")


def _token_kind(phoneme: str) -> str:
    """ "length"/"stress" for a bare modifier token (Piper times them separately), else "phone"."""
    chars = phoneme.strip() if isinstance(phoneme, str) else ""
    if chars and all(ch in _LENGTH_MARKS for ch in chars):
        return "length"
    if chars and all(ch in _STRESS_MARKS for ch in chars):
        return "stress"
    return "phone"


def viseme_timeline(phonemes: Sequence[PhonemeTiming]) -> list[tuple[str, float, float]]:
    """Normalise a raw timeline into sorted ``(viseme, start, end)`` spans ("sil" for silence).

    Piper times modifier tokens as if they were phonemes. A bare length mark (ː) is more of the
    previous sound, so it extends it. A bare stress mark (ˈ, ˌ) joins the phoneme after it: on
    Piper (en_US-joe) speech that placement correlates best with the audio envelope (0.58 vs 0.44
    when given to the previous phoneme; the stressed vowel's energy sits in the mark's span).
    Without this a long stressed vowel would read as a pause and the mouth would shut.
    Zero-length and reversed entries are dropped.
    """
    items = sorted((p for p in phonemes if p.end > p.start), key=lambda p: (p.start, p.end))
    out: list[list[Any]] = []  # [viseme, start, end]
    pending: tuple[float, float] | None = None  # a stress mark's span waiting for its phoneme

    def touching_speech(t: float) -> list[Any] | None:
        if out and out[-1][0] != "sil" and t - out[-1][2] < 1e-3:
            return out[-1]
        return None

    for p in items:
        kind = _token_kind(p.phoneme)
        if kind == "length":
            prev = touching_speech(float(p.start))
            if prev is not None:
                prev[2] = max(prev[2], float(p.end))
            else:
                out.append(["sil", float(p.start), float(p.end)])
            continue
        if kind == "stress":
            pending = (float(p.start), float(p.end)) if pending is None else (pending[0], p.end)
            continue
        vis = viseme_for(p.phoneme)
        start = float(p.start)
        if pending is not None:
            s0, e0 = pending
            pending = None
            if vis != "sil" and start - e0 < 1e-3:
                start = s0
            else:
                prev = touching_speech(s0)
                if prev is not None:
                    prev[2] = e0
        out.append([vis, start, float(p.end)])
    if pending is not None:
        prev = touching_speech(pending[0])
        if prev is not None:
            prev[2] = pending[1]
    return [(str(v), float(s), float(e)) for v, s, e in out]


def is_bilabial(viseme: str) -> bool:
    """True for the viseme that must seal the lips (p, b, m)."""
    return viseme == "PP"


def is_vowel_viseme(viseme: str) -> bool:
    """True for the five vowel visemes (syllable nuclei)."""
    return viseme in _VOWEL_VISEMES


def phoneme_openness_track(
    phonemes: Sequence[PhonemeTiming], fps: float, n_frames: int
) -> np.ndarray:
    """Reference openness per frame: ``OPENNESS`` of the phoneme active at ``t_i = i / fps``.

    A phoneme is active on ``[start, end)`` after :func:`viseme_timeline` normalisation (so a
    separately timed length mark extends its vowel); frames in silence or beyond the timeline get
    0. This is the "phoneme openness track" that lip-sync tests and benchmarks correlate mouth
    opening with.
    """
    n = max(int(n_frames), 0)
    track = np.zeros(n, dtype=np.float64)
    if n == 0 or not phonemes:
        return track
    times = np.arange(n, dtype=np.float64) / float(fps)
    spans = viseme_timeline(phonemes)
    if not spans:
        return track
    starts = np.array([s for _, s, _ in spans], dtype=np.float64)
    ends = np.array([e for _, _, e in spans], dtype=np.float64)
    values = np.array([OPENNESS[v] for v, _, _ in spans], dtype=np.float64)
    # The last phoneme that started at or before t is the only candidate (timelines don't overlap).
    idx = np.searchsorted(starts, times, side="right") - 1
    valid = idx >= 0
    safe = np.clip(idx, 0, len(starts) - 1)
    active = valid & (times < ends[safe])
    track[active] = values[safe[active]]
    return track
