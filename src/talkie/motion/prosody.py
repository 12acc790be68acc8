"""Speech-linked face and head gestures from prosody (pitch and loudness) and stress marks.

People raise their brows on pitch accents, nod slightly on stressed syllables, settle the head at
phrase ends and tilt it up a little when their voice goes up. This module finds syllable nuclei
(vowel runs from the phoneme timeline, or loudness peaks when there is none), scores them by pitch
(YIN, numpy), loudness and lexical stress, and turns the best-scoring ones into smooth bumps on
``brow_raise`` / ``head_pitch`` / ``head_yaw``. Which candidates become gestures is drawn from a
seeded ``numpy.random.Generator``, so a clip's gestures are deterministic for a seed but do not
repeat mechanically on every accent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion.audio_features import pitch_track
from talkie.motion.visemes import is_vowel_viseme, viseme_for

__all__ = ["ProsodyOptions", "ProsodyTrack", "find_nuclei", "prosody_track"]


@dataclass(frozen=True)
class ProsodyOptions:
    """Strength and spacing of prosody-driven gestures (degrees, seconds, brow units 0..1)."""

    f0_min: float = 70.0
    f0_max: float = 400.0
    brow_gain: float = 0.35  # brow raise on a strong pitch accent
    brow_min_gap: float = 1.2  # at most one brow raise per this many seconds
    brow_probability: float = 0.75  # chance that a qualifying accent gets one
    nod_deg: float = 1.6  # small downward nod on a stressed syllable
    nod_min_gap: float = 0.7
    nod_probability: float = 0.6
    yaw_deg: float = 0.8  # a nod sometimes comes with a slight turn
    phrase_end_nod_deg: float = 1.8  # the head settles down at the end of a phrase
    phrase_pause: float = 0.25  # a silence at least this long ends a phrase
    pitch_follow_deg: float = 0.25  # head tilts up this much per semitone above the median


@dataclass(frozen=True, eq=False)
class ProsodyTrack:
    """Additive gesture tracks on the clip's frame grid, plus what was found.

    ``phrase_ends`` are clip times where a phrase ends (a good moment to blink).
    """

    brow_raise: np.ndarray
    head_pitch: np.ndarray
    head_yaw: np.ndarray
    f0: np.ndarray
    phrase_ends: np.ndarray


@dataclass(frozen=True)
class _Nucleus:
    start: float
    end: float
    stressed: bool


def find_nuclei(phonemes: Sequence[PhonemeTiming]) -> list[tuple[float, float, bool]]:
    """Syllable nuclei ``(start, end, stressed)`` from a phoneme timeline.

    A nucleus is a run of touching vowel phonemes (split diphthongs merge). It is stressed when an
    espeak primary stress mark (ˈ) appeared since the previous nucleus, either as its own symbol or
    glued to a phoneme.
    """
    items = sorted(
        (p for p in phonemes if p.end > p.start or "ˈ" in p.phoneme), key=lambda p: p.start
    )
    nuclei: list[tuple[float, float, bool]] = []
    pending_stress = False
    for p in items:
        if "ˈ" in p.phoneme:
            pending_stress = True
        if p.end <= p.start or not is_vowel_viseme(viseme_for(p.phoneme)):
            continue
        if nuclei and p.start - nuclei[-1][1] < 1e-3:
            s, _, st = nuclei[-1]
            nuclei[-1] = (s, p.end, st)
            continue
        nuclei.append((p.start, p.end, pending_stress))
        pending_stress = False
    return nuclei


def prosody_track(
    clip: SpeechClip,
    times: np.ndarray,
    *,
    energy: np.ndarray,
    presence: np.ndarray,
    rng: np.random.Generator,
    options: ProsodyOptions | None = None,
) -> ProsodyTrack:
    """Gesture tracks for ``clip`` at ``times`` (clip seconds, consecutive frame times).

    ``energy`` (loudness normalised to ~1 on loud speech) and ``presence`` (0..1 speech vs rest)
    come from the mouth track on the same grid, so loudness is computed once per clip.
    """
    opts = options or ProsodyOptions()
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    n = len(t)
    zeros = np.zeros(n)
    if n == 0:
        return ProsodyTrack(zeros, zeros, zeros, zeros, np.zeros(0))
    f0, _ = pitch_track(clip.audio, clip.sample_rate, t, f0_min=opts.f0_min, f0_max=opts.f0_max)
    voiced = np.isfinite(f0) & (presence > 0.3)
    semitones = np.zeros(n)
    if np.count_nonzero(voiced) >= 3:
        ref = float(np.median(f0[voiced]))
        semitones[voiced] = 12.0 * np.log2(f0[voiced] / ref)
        # Fill unvoiced frames inside speech by interpolation so the head doesn't twitch on
        # every consonant; silence stays at 0.
        idx = np.flatnonzero(voiced)
        semitones = np.interp(np.arange(n), idx, semitones[idx]) * (presence > 0.3).astype(float)
    level_db = 20.0 * np.log10(np.maximum(energy, 1e-4))

    if clip.phonemes:
        nuclei = [_Nucleus(s, e, st) for s, e, st in find_nuclei(clip.phonemes)]
        phrase_ends = _phrase_ends_from_phonemes(clip.phonemes, opts.phrase_pause)
    else:
        nuclei = _nuclei_from_energy(t, energy, presence)
        phrase_ends = _phrase_ends_from_presence(t, presence, opts.phrase_pause)

    brow = np.zeros(n)
    pitch = np.zeros(n)
    yaw = np.zeros(n)
    if nuclei:
        centres = np.array([0.5 * (nu.start + nu.end) for nu in nuclei])
        frame = np.clip(np.searchsorted(t, centres), 0, n - 1)
        st = semitones[frame]
        loud = level_db[frame]
        stressed: np.ndarray = np.array([nu.stressed for nu in nuclei], dtype=np.float64)
        z_pitch = _zscore(st, floor=1.5)
        z_loud = _zscore(loud, floor=3.0)
        score = 0.6 * z_pitch + 0.4 * z_loud + 0.8 * stressed
        # Random draws happen for every nucleus in a fixed order: the generator's stream does not
        # depend on which candidates qualify, only on the clip.
        u_brow = rng.random(len(nuclei))
        u_nod = rng.random(len(nuclei))
        u_yaw = rng.uniform(-1.0, 1.0, len(nuclei))

        accents = (z_pitch > 0.8) & (u_brow < opts.brow_probability)
        chosen = _greedy_spaced(centres, np.where(accents, score, -np.inf), opts.brow_min_gap)
        if chosen.size:
            amp = opts.brow_gain * np.clip(0.55 + 0.25 * z_pitch[chosen], 0.4, 1.0)
            brow += _bumps(t, centres[chosen], amp, rise=0.15, fall=0.5)

        stress_like = ((score > 0.5) | (stressed > 0)) & (u_nod < opts.nod_probability)
        chosen = _greedy_spaced(centres, np.where(stress_like, score, -np.inf), opts.nod_min_gap)
        if chosen.size:
            amp = opts.nod_deg * np.clip(0.6 + 0.3 * score[chosen], 0.5, 1.2)
            # The nod lands just after the vowel onset, where the beat is felt.
            pitch += _bumps(t, centres[chosen] + 0.03, amp, rise=0.15, fall=0.35)
            yaw += _bumps(t, centres[chosen], opts.yaw_deg * u_yaw[chosen], rise=0.2, fall=0.5)

    if len(phrase_ends):
        amp = np.full(len(phrase_ends), opts.phrase_end_nod_deg)
        pitch += _bumps(t, phrase_ends - 0.05, amp, rise=0.25, fall=0.6)

    follow = _smooth(np.clip(semitones, -6.0, 6.0), width=7)
    pitch -= opts.pitch_follow_deg * follow
    brow += 0.02 * np.clip(follow, 0.0, 6.0)
    return ProsodyTrack(
        brow_raise=brow, head_pitch=pitch, head_yaw=yaw, f0=f0, phrase_ends=phrase_ends
    )


def _zscore(x: np.ndarray, floor: float) -> np.ndarray:
    """Robust z-score (median / MAD), with a spread floor so a monotone clip scores ~0."""
    if len(x) == 0:
        return x
    med = float(np.median(x))
    spread = max(1.4826 * float(np.median(np.abs(x - med))), floor)
    return np.asarray((x - med) / spread)


def _greedy_spaced(centres: np.ndarray, score: np.ndarray, min_gap: float) -> np.ndarray:
    """Indices of the best-scoring candidates, no two closer than ``min_gap`` (sorted by time)."""
    taken: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        if not np.isfinite(score[i]):
            break
        if all(abs(centres[i] - centres[j]) >= min_gap for j in taken):
            taken.append(int(i))
    return np.array(sorted(taken), dtype=np.int64)


def _bumps(
    t: np.ndarray, centres: np.ndarray, amps: np.ndarray, *, rise: float, fall: float
) -> np.ndarray:
    """Sum of asymmetric raised-cosine bumps peaking at ``centres`` (vectorised over both)."""
    dt = t[:, None] - np.asarray(centres, dtype=np.float64)[None, :]
    x = np.where(dt < 0, dt / rise, dt / fall)
    shape = np.where(np.abs(x) < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.clip(x, -1.0, 1.0))), 0.0)
    return np.asarray(shape @ np.asarray(amps, dtype=np.float64))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Zero-phase Hann smoothing over ``width`` frames (edges use the available samples)."""
    if len(x) < 2 or width < 2:
        return x.copy()
    k = np.hanning(width + 2)[1:-1]
    num = np.convolve(x, k, mode="same")
    den = np.convolve(np.ones_like(x), k, mode="same")
    return np.asarray(num / den)


def _phrase_ends_from_phonemes(phonemes: Sequence[PhonemeTiming], pause: float) -> np.ndarray:
    spoken = sorted(
        (p for p in phonemes if p.end > p.start and viseme_for(p.phoneme) != "sil"),
        key=lambda p: p.start,
    )
    ends = [a.end for a, b in zip(spoken, spoken[1:], strict=False) if b.start - a.end >= pause]
    if spoken:
        ends.append(spoken[-1].end)
    return np.array(ends, dtype=np.float64)


def _phrase_ends_from_presence(t: np.ndarray, presence: np.ndarray, pause: float) -> np.ndarray:
    speaking = presence > 0.5
    if not np.any(speaking):
        return np.zeros(0)
    falls = np.flatnonzero(speaking[:-1] & ~speaking[1:])
    ends = []
    for i in falls:
        later = np.flatnonzero(speaking[i + 1 :])
        gap = (t[i + 1 + later[0]] - t[i]) if later.size else np.inf
        if gap >= pause:
            ends.append(t[i])
    return np.array(ends, dtype=np.float64)


def _nuclei_from_energy(t: np.ndarray, energy: np.ndarray, presence: np.ndarray) -> list[_Nucleus]:
    """Loudness peaks inside speech stand in for syllable nuclei when there are no phonemes."""
    if len(t) < 3:
        return []
    e = _smooth(energy, width=3)
    peak = (e[1:-1] >= e[:-2]) & (e[1:-1] > e[2:]) & (presence[1:-1] > 0.5) & (e[1:-1] > 0.3)
    half = 0.5 / max(len(t) - 1, 1) * (t[-1] - t[0])
    return [
        _Nucleus(float(t[i + 1] - half), float(t[i + 1] + half), False)
        for i in np.flatnonzero(peak)
    ]
