"""Coarticulated mouth tracks for a speech clip, sampled at frame presentation times.

With phoneme timings (the normal case) the track is a dominance blend in the spirit of Cohen &
Massaro: every viseme segment has a weight that is flat over its phoneme and falls off smoothly
before (anticipation, ~60 ms) and after (carry-over) it; the mouth is the weight-normalised mix of
the segments' target shapes. Normalisation gives the required behaviour for free: in a short gap no
segment is present, so the neighbours' shapes are held; long pauses get an explicit rest segment
that first relaxes and then closes the mouth. Two rules are then enforced exactly on top:
bilabials (p, b, m) seal the lips at their centre however short they are, and no parameter shows a
one-frame extremum followed by the opposite one (the "flicker" a viewer sees as chattering).

Without phonemes (audio of unknown content) the opening follows the loudness envelope and a crude
spectral-centroid cue chooses between spread and rounded lips.

Sampling: frame ``i`` at clip time ``t_i`` shows the mouth for the audio playing at ``t_i``; all
audio features use windows centred on ``t_i``, so the track has no built-in A/V offset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion.audio_features import rms_envelope, spectral_centroid
from talkie.motion.visemes import MOUTH_PARAMS, VISEME_SHAPES, viseme_timeline

__all__ = ["LipSyncOptions", "MouthTrack", "mouth_track", "suppress_flicker"]

_JAW, _WIDTH, _ROUND, _PRESS, _RAISE, _TONGUE, _CLOSE = range(len(MOUTH_PARAMS))
_NEAR_ZERO = 1e-6
# Lips slightly parted: the relaxed mouth right after speaking, before it closes. Closed: the lips
# meet (on a photo that shows its teeth too: a pause in speech closes the mouth; the photo's own
# mouth returns once the speech is over, see _close_window).
_REST = np.array([0.06, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6])
_CLOSED = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])

# How strongly each viseme claims the mouth against its neighbours. Vowels and lip consonants are
# what a viewer checks; tongue consonants (t, k, n, s) are mostly invisible, so they only pull the
# jaw part-way and the vowels dominate (this is also what keeps the jaw from chattering).
_DOMINANCE: dict[str, float] = {
    "sil": 1.0,
    "PP": 1.0,
    "FF": 0.9,
    "TH": 0.6,
    "DD": 0.5,
    "kk": 0.45,
    "CH": 0.8,
    "SS": 0.6,
    "nn": 0.5,
    "RR": 0.7,
    "aa": 1.0,
    "E": 1.0,
    "ih": 0.9,
    "oh": 1.0,
    "ou": 1.0,
}


@dataclass(frozen=True)
class LipSyncOptions:
    """Timing and strength knobs of the mouth track (seconds unless noted)."""

    # Ramps and holds are as short as looks smooth at 24 fps: every millisecond a shape spills
    # into its neighbours is a frame whose mouth disagrees with the sound (measured on rendered
    # frames, bench/lipsync.py: 60/70 ms ramps and 50 ms closure ramps around the seal gave a
    # correlation of 0.56 with the phoneme openness on a closed-mouth photo, these 0.72).
    ramp_in: float = 0.04  # a viseme starts forming this long before its phoneme
    ramp_out: float = 0.045  # ... and lingers this long after it
    hold_gap: float = 0.12  # silences shorter than this hold the surrounding shape
    pause_hold: float = 0.04  # in a long pause the last shape is held this long, then relaxes
    pause_relax: float = 0.12  # ... to slightly parted lips, then closes
    speech_lead: float = 0.03  # the mouth leaves rest this long before speech resumes
    bilabial_closure: float = 0.05  # minimum sealed time at a p/b/m centre (one frame or more)
    closure_ramp: float = 0.025  # sealing/unsealing time around that plateau
    flicker_eps: float = 0.004  # changes smaller than this don't count as a reversal
    energy_gain: float = 0.3  # loudness modulation of the opening (0 = off)
    envelope_window: float = 0.042  # RMS window, ~one frame at 24 fps
    silence_db: float = -35.0  # energy-only path: below this (re the loud parts) is silence
    # Shift of the phoneme timeline (s, negative = mouth earlier) for a TTS whose alignments are
    # biased. Sound leading the picture is noticed at ~45 ms, picture leading sound only at
    # ~125 ms, so if in doubt err negative. (Piper en_US-joe alignments trail its audio envelope
    # by ~20-30 ms; that bias is best corrected where the alignments are made.)
    timing_offset: float = 0.0


# What the product uses (offline render and live sessions, via MotionOptions.lip_lead): the
# whole speech track plays slightly ahead of its audio. Measured on rendered frames against the
# speech envelope (bench/engine.py): no shift -> mouth 46 ms late, -60 ms -> 13 ms early.
# Piper's alignments trail its audio; and lips lead sound in natural speech.
RENDERED_LIP_LEAD = -0.05


@dataclass(frozen=True, eq=False)
class MouthTrack:
    """Mouth parameters of one clip on a frame grid.

    ``params`` columns follow :data:`talkie.motion.visemes.MOUTH_PARAMS`; ``presence`` (0..1) says
    how much the frame shows speech rather than rest, and lets overlapping clips cross-fade;
    ``energy`` is the normalised loudness (~1 on loud speech) that prosody reuses.
    """

    times: np.ndarray
    params: np.ndarray
    presence: np.ndarray
    energy: np.ndarray


def mouth_track(
    clip: SpeechClip, times: np.ndarray, *, options: LipSyncOptions | None = None
) -> MouthTrack:
    """Compute the mouth track of ``clip`` at ``times`` (seconds from the clip start, ascending,
    normally consecutive frame presentation times; times before/after the clip are rest).

    Uses the phoneme timeline when the clip has one, else the audio alone. Vectorised over frames.
    """
    opts = options or LipSyncOptions()
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if len(t) == 0:
        empty = np.zeros((0, len(MOUTH_PARAMS)))
        return MouthTrack(times=t, params=empty, presence=np.zeros(0), energy=np.zeros(0))
    rms = rms_envelope(clip.audio, clip.sample_rate, t, opts.envelope_window)
    if clip.phonemes:
        params, presence, closure = _phoneme_track(clip.phonemes, t - opts.timing_offset, opts)
        energy = _normalised_energy(rms, presence > 0.5)
        if opts.energy_gain > 0 and np.any(rms > 0):
            # Louder speech opens a little wider; the gain is centred so a typical loud syllable
            # keeps its viseme target, and bounded so a shout never breaks the shapes.
            gain = 1.0 + opts.energy_gain * (np.clip(energy, 0.0, 1.5) - 0.8)
            params[:, _JAW] *= np.clip(gain, 0.75, 1.2)
        params = _apply_closure(params, closure)
    else:
        params, presence, energy = _energy_track(clip, t, rms, opts)
        closure = np.zeros(len(t))
    params[:, _CLOSE] *= _close_window(clip, t)
    params = suppress_flicker(
        params,
        protected=closure >= 0.999,
        protected_cols=(_JAW, _PRESS, _RAISE),
        eps=opts.flicker_eps,
    )
    params = _clamp(params)
    return MouthTrack(times=t, params=params, presence=np.clip(presence, 0.0, 1.0), energy=energy)


# --------------------------------------------------------------------------- phoneme path


@dataclass(frozen=True)
class _Segments:
    start: np.ndarray
    end: np.ndarray
    tau_before: np.ndarray
    tau_after: np.ndarray
    weight: np.ndarray
    shape: np.ndarray  # (k, len(MOUTH_PARAMS))
    is_speech: np.ndarray  # bool
    bilabial_lo: np.ndarray  # sealed plateau of each bilabial run
    bilabial_hi: np.ndarray


# add(start, end, tau_before, tau_after, weight, shape, is_speech)
_AddSegment = Callable[[float, float, float, float, float, np.ndarray, bool], None]


def _speech_runs(phonemes: Sequence[PhonemeTiming]) -> list[tuple[str, float, float]]:
    """Non-silent viseme runs (viseme, start, end), sorted, with touching equal visemes merged."""
    runs: list[tuple[str, float, float]] = []
    for vis, start, end in viseme_timeline(phonemes):
        if vis == "sil":
            continue
        if runs and runs[-1][0] == vis and start - runs[-1][2] < 1e-3:
            # "m m" or a split long vowel is one gesture, not two (else the lips would pulse).
            runs[-1] = (vis, runs[-1][1], max(end, runs[-1][2]))
        else:
            runs.append((vis, start, end))
    return runs


def _build_segments(phonemes: Sequence[PhonemeTiming], opts: LipSyncOptions) -> _Segments:
    runs = _speech_runs(phonemes)
    # Gaussian fall-off exp(-(d/tau)^2) is ~0.1 at d = 1.5 tau: ramps end at the stated times.
    tau_in, tau_out = opts.ramp_in / 1.5, opts.ramp_out / 1.5
    tau_relax = max(opts.pause_relax / 3.0, 1e-3)
    start: list[float] = []
    end: list[float] = []
    before: list[float] = []
    after: list[float] = []
    weight: list[float] = []
    shapes: list[np.ndarray] = []
    speech: list[bool] = []

    def add(
        s: float, e: float, tb: float, ta: float, w: float, shape: np.ndarray, sp: bool
    ) -> None:
        start.append(s)
        end.append(e)
        before.append(tb)
        after.append(ta)
        weight.append(w)
        shapes.append(shape)
        speech.append(sp)

    # A vanishing background rest everywhere keeps the normalisation finite far from speech.
    add(-np.inf, np.inf, 1.0, 1.0, 1e-9, _CLOSED, False)
    inf = float("inf")
    for i, (vis, s, e) in enumerate(runs):
        prev_end = runs[i - 1][2] if i > 0 else -inf
        next_start = runs[i + 1][1] if i + 1 < len(runs) else inf
        long_before = s - prev_end >= opts.hold_gap
        long_after = next_start - e >= opts.hold_gap
        # Before a long pause the last shape is held briefly (speech doesn't snap shut).
        e_plateau = e + opts.pause_hold if long_after else e
        add(s, e_plateau, tau_in, tau_out, _DOMINANCE[vis], VISEME_SHAPES[vis].as_array(), True)
        if long_before:
            lead_end = s - opts.speech_lead
            if i == 0:
                add(-inf, lead_end, tau_relax, tau_in, 1.0, _CLOSED, False)
            else:
                _add_pause(add, prev_end, lead_end, opts, tau_relax, tau_in)
        if long_after and i + 1 == len(runs):
            _add_pause(add, e, inf, opts, tau_relax, tau_in)
    if not runs:
        add(-inf, inf, 1.0, 1.0, 1.0, _CLOSED, False)

    # Sealed from the first bilabial's middle to the last one's (a merged "m p" stays shut
    # throughout), and bilabial_closure around each middle, so the frame nearest it is shut. No
    # longer: a seal spilling into the next vowel shows a shut mouth while the vowel is heard.
    # With an anticipating timing_offset the seal starts early but is never released before the
    # audio's own release (a /p/ burst heard after the lips opened looks dubbed).
    late = max(-opts.timing_offset, 0.0)
    half = 0.5 * opts.bilabial_closure
    middles = [0.5 * (a + b) for vis, a, b in viseme_timeline(phonemes) if vis == "PP"]
    lo: list[float] = []
    hi: list[float] = []
    for vis, s, e in runs:
        if vis == "PP":
            inside = [m for m in middles if s - 1e-6 <= m <= e + 1e-6] or [0.5 * (s + e)]
            lo.append(min(inside) - half)
            hi.append(max(inside) + half + late)
    return _Segments(
        start=np.array(start),
        end=np.array(end),
        tau_before=np.array(before),
        tau_after=np.array(after),
        weight=np.array(weight),
        shape=np.array(shapes),
        is_speech=np.array(speech, dtype=bool),
        bilabial_lo=np.array(lo),
        bilabial_hi=np.array(hi),
    )


def _add_pause(
    add: _AddSegment,
    speech_end: float,
    lead_end: float,
    opts: LipSyncOptions,
    tau_relax: float,
    tau_in: float,
) -> None:
    """Rest segments for a long pause: relax to slightly parted lips, then close."""
    relax_start = speech_end + opts.pause_hold
    close_start = relax_start + opts.pause_relax
    if close_start < lead_end:
        add(relax_start, close_start, tau_relax, tau_relax, 1.0, _REST, False)
        add(close_start, lead_end, tau_relax, tau_in, 1.0, _CLOSED, False)
    else:
        # Too short to relax first: just close, centred in the pause.
        mid = 0.5 * (relax_start + max(lead_end, relax_start))
        add(min(relax_start, mid), max(lead_end, mid), tau_relax, tau_in, 1.0, _CLOSED, False)


def _phoneme_track(
    phonemes: Sequence[PhonemeTiming], t: np.ndarray, opts: LipSyncOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seg = _build_segments(phonemes, opts)
    tt = t[:, None]
    with np.errstate(invalid="ignore"):
        d_before = np.maximum(seg.start[None, :] - tt, 0.0) / seg.tau_before[None, :]
        d_after = np.maximum(tt - seg.end[None, :], 0.0) / seg.tau_after[None, :]
    dist2 = np.nan_to_num(d_before, nan=0.0, posinf=1e6) ** 2
    dist2 += np.nan_to_num(d_after, nan=0.0, posinf=1e6) ** 2
    dom = seg.weight[None, :] * np.exp(-np.minimum(dist2, 700.0))
    total = dom.sum(axis=1)
    params = (dom @ seg.shape) / total[:, None]
    presence = (dom[:, seg.is_speech].sum(axis=1)) / total
    closure = _closure_envelope(t, seg.bilabial_lo, seg.bilabial_hi, opts.closure_ramp)
    return params, presence, closure


def _closure_envelope(t: np.ndarray, lo: np.ndarray, hi: np.ndarray, ramp: float) -> np.ndarray:
    """1 while the lips must be sealed (``lo``..``hi`` per bilabial), raised-cosine ramps around."""
    if len(lo) == 0:
        return np.zeros(len(t))
    dist = np.maximum(lo[None, :] - t[:, None], t[:, None] - hi[None, :])
    x = np.clip(dist / max(ramp, 1e-6), 0.0, 1.0)
    env = 0.5 * (1.0 + np.cos(np.pi * x))
    return np.asarray(env.max(axis=1))


def _apply_closure(params: np.ndarray, closure: np.ndarray) -> np.ndarray:
    out = params.copy()
    open_part = 1.0 - closure
    out[:, _JAW] *= open_part
    out[:, _RAISE] *= open_part
    out[:, _TONGUE] *= open_part
    out[:, _CLOSE] *= open_part  # the seal presses instead
    out[:, _PRESS] = np.maximum(out[:, _PRESS], closure)
    return out


def _close_window(clip: SpeechClip, t: np.ndarray) -> np.ndarray:
    """Where pauses may close the lips: from just before the first phoneme to shortly after the
    last (a photo smiling with its teeth eases shut as speech starts, and back to its own smile
    once it is over, never snapping at a clip's edges)."""
    spoken = [p for p in clip.phonemes if p.end > p.start and p.phoneme.strip()]
    if not spoken:
        return np.zeros(len(t))
    first, last = spoken[0].start, spoken[-1].end
    rise = np.clip((t - (first - 0.22)) / 0.12, 0.0, 1.0)
    fall = 1.0 - np.clip((t - (last + 0.2)) / 0.25, 0.0, 1.0)
    return np.asarray(rise * rise * (3 - 2 * rise) * fall * fall * (3 - 2 * fall))


def _normalised_energy(rms: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """RMS divided by the clip's loud-speech level (90th percentile of speech frames)."""
    pool = rms[speech] if np.any(speech) else rms
    ref = float(np.percentile(pool, 90)) if len(pool) else 0.0
    if ref <= 1e-9:
        return np.zeros_like(rms)
    return np.asarray(rms / ref)


# --------------------------------------------------------------------------- audio-only path


def _energy_track(
    clip: SpeechClip, t: np.ndarray, rms: np.ndarray, opts: LipSyncOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(t)
    params = np.zeros((n, len(MOUTH_PARAMS)))
    peak = float(np.max(rms)) if n else 0.0
    if peak <= 1e-6:
        return params, np.zeros(n), np.zeros(n)
    # Reference = loud-speech level; robust to a single click by using a high percentile.
    audible = rms > peak * 10.0 ** (opts.silence_db / 20.0)
    ref = float(np.percentile(rms[audible], 90)) if np.any(audible) else peak
    db = 20.0 * np.log10(np.maximum(rms, 1e-9) / max(ref, 1e-9))
    # Map [silence_db + 5, -4] dB onto 0..1: quiet tails of syllables barely open the mouth.
    lo = opts.silence_db + 5.0
    openness = np.clip((db - lo) / (-4.0 - lo), 0.0, 1.0) ** 1.3
    openness = _smooth3(openness)
    openness[~audible] = 0.0  # silence always closes, whatever the smoothing leaked in

    centroid = spectral_centroid(clip.audio, clip.sample_rate, t)
    log_c = np.log(np.maximum(centroid, 1.0))
    voiced = openness > 0.2
    median = float(np.median(log_c[voiced])) if np.any(voiced) else float(np.median(log_c))
    z = _smooth3((log_c - median) / 0.25)
    params[:, _JAW] = 0.75 * openness
    params[:, _WIDTH] = np.clip(0.3 * z, -0.4, 0.45) * np.sqrt(openness)
    params[:, _ROUND] = np.clip(-0.45 * z, 0.0, 0.6) * np.sqrt(openness)
    energy = rms / max(ref, 1e-9)
    presence = np.clip(openness * 3.0, 0.0, 1.0)
    return params, presence, energy


def _smooth3(x: np.ndarray) -> np.ndarray:
    """Zero-phase [1, 2, 1] / 4 smoothing (keeps A/V alignment; edges replicate)."""
    if len(x) < 3:
        return x.copy()
    padded = np.concatenate([x[:1], x, x[-1:]])
    return np.asarray(0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:])


# --------------------------------------------------------------------------- shared rules


def suppress_flicker(
    params: np.ndarray,
    *,
    protected: np.ndarray | None = None,
    protected_cols: Sequence[int] | None = None,
    eps: float = 0.004,
) -> np.ndarray:
    """Remove one-frame extrema that reverse on the very next frame (up-down-up or down-up-down).

    Such a pattern shows a shape for a single frame (< 70 ms at 24 fps): it reads as chattering.
    The unprotected frame of the pair is replaced by the mean of its neighbours, which makes the
    run monotonic there. ``protected`` frames (sealed bilabials) are kept in ``protected_cols``
    (all columns if None). Detection is vectorised; fixes are sparse and local. Works column by
    column on an (n, k) array.
    """
    out = np.array(params, dtype=np.float64, copy=True)
    n = out.shape[0]
    if n < 4:
        return out
    mask = np.zeros(n, dtype=bool) if protected is None else np.asarray(protected, dtype=bool)
    free = np.zeros(n, dtype=bool)
    cols = range(out.shape[1]) if protected_cols is None else set(protected_cols)
    for col in range(out.shape[1]):
        keep = mask if col in cols else free
        y = out[:, col]
        for _ in range(16):
            d = np.diff(y)
            s = np.where(d > eps, 1, np.where(d < -eps, -1, 0))
            bad = (s[:-2] != 0) & (s[1:-1] == -s[:-2]) & (s[2:] == -s[1:-1])
            ks = np.flatnonzero(bad)
            if ks.size == 0:
                break
            last = -10
            for k in ks:
                if k <= last + 2:
                    continue  # overlaps the previous fix: re-examined next pass
                a, b = k + 1, k + 2
                dev_a = abs(y[a] - 0.5 * (y[a - 1] + y[a + 1]))
                dev_b = abs(y[b] - 0.5 * (y[b - 1] + y[b + 1]))
                if keep[a] and keep[b]:
                    continue
                i = b if keep[a] or (not keep[b] and dev_b < dev_a) else a
                y[i] = 0.5 * (y[i - 1] + y[i + 1])
                last = k
        out[:, col] = y
    return out


def _clamp(params: np.ndarray) -> np.ndarray:
    out = params.copy()
    out[:, _JAW] = np.clip(out[:, _JAW], 0.0, 1.0)
    out[:, _WIDTH] = np.clip(out[:, _WIDTH], -1.0, 1.0)
    closed_range = [_ROUND, _PRESS, _RAISE, _TONGUE, _CLOSE]
    out[:, closed_range] = np.clip(out[:, closed_range], 0.0, 1.0)
    # Values within float noise of zero are exactly zero (a closed mouth is a closed mouth).
    out[np.abs(out) < _NEAR_ZERO] = 0.0
    return out
