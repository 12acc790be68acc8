"""Pitch and formant shifting of speech, licence-clean (numpy/scipy only), timing-exact.

The method is the classic "change gender": resample the sound by the formant ratio (every
frequency, formants included, moves by that ratio and the sound gets shorter), then put it back to
its exact length and give it the wanted pitch contour with TD-PSOLA (pitch-synchronous overlap-add
of two-period grains). The output has exactly the input's number of samples and time maps
linearly onto it, so phoneme timings stay valid to within a grain (a few ms).

``estimate_f0`` is a normalised-autocorrelation pitch tracker (60-500 Hz, 10 ms frames) and
``formant_frequencies`` an LPC formant estimate; both also measure voice samples for matching.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, resample_poly

__all__ = [
    "F0_HOP",
    "ShiftSettings",
    "estimate_f0",
    "formant_frequencies",
    "median_f0",
    "shift_voice",
]

F0_HOP = 0.01
F0_MIN, F0_MAX = 60.0, 500.0
_VOICING = 0.45  # normalised autocorrelation a voiced frame reaches
_F0_RATE = 8000


@dataclass(frozen=True)
class ShiftSettings:
    """``pitch``: ratio of the new median F0 to the old; ``pitch_range``: how far the intonation
    swings around the median (1 as spoken, <1 flatter, >1 livelier); ``formant``: ratio that moves
    every formant (vocal-tract length: ~1.15-1.2 from a man's to a woman's)."""

    pitch: float = 1.0
    pitch_range: float = 1.0
    formant: float = 1.0

    @property
    def identity(self) -> bool:
        return self.pitch == 1.0 and self.pitch_range == 1.0 and self.formant == 1.0


def estimate_f0(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 in Hz per 10 ms frame (0 where unvoiced), from normalised autocorrelation."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if sample_rate > _F0_RATE:  # 8 kHz is plenty below 500 Hz, and 3x cheaper
        g = np.gcd(int(sample_rate), _F0_RATE)
        x = resample_poly(x, _F0_RATE // g, int(sample_rate) // g)
        sample_rate = _F0_RATE
    hop = int(round(F0_HOP * sample_rate))
    win = int(round(0.04 * sample_rate))
    n_frames = max(0, 1 + (len(x) - win) // hop) if len(x) >= win else 0
    if n_frames == 0:
        return np.zeros(0)
    frames = x[np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    n_fft = 1 << int(np.ceil(np.log2(2 * win)))
    spec = np.fft.rfft(frames * np.hanning(win), n_fft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, n_fft, axis=1)[:, :win]
    # Divide by the window's own autocorrelation so long lags are not penalised.
    wac = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(win), n_fft)) ** 2, n_fft)[:win]
    ac = ac / np.maximum(wac, 1e-9) * wac[0]
    energy = ac[:, 0]
    lo = int(sample_rate / F0_MAX)
    hi = min(win - 2, int(sample_rate / F0_MIN))
    norm = ac[:, lo:hi] / np.maximum(energy[:, None], 1e-12)
    best = np.argmax(norm, axis=1)
    peak = norm[np.arange(n_frames), best]
    lag = (best + lo).astype(np.float64)
    # Octave check: a peak at half the lag nearly as strong means the true period is shorter.
    half = np.round(lag / 2).astype(int)
    ok_half = half >= lo
    half_val = np.where(ok_half, ac[np.arange(n_frames), np.clip(half, 0, win - 1)], 0.0) / (
        np.maximum(energy, 1e-12)
    )
    lag = np.where(ok_half & (half_val > 0.9 * peak), half, lag)
    # Parabolic refinement of the lag.
    i = np.clip(lag.astype(int), 1, win - 2)
    y0, y1, y2 = (ac[np.arange(n_frames), i + d] for d in (-1, 0, 1))
    denom = y0 - 2 * y1 + y2
    lag = i + np.where(np.abs(denom) > 1e-12, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0)
    loud = energy > 1e-4 * np.percentile(energy, 95)
    f0 = np.where((peak > _VOICING) & loud, sample_rate / lag, 0.0)
    return _clean_octave_jumps(f0)


def _running_median(values: np.ndarray, radius: int) -> np.ndarray:
    """Median over ``values[i - radius : i + radius + 1]`` (NaN ignored), for every i."""
    padded = np.pad(values, radius, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    with warnings.catch_warnings():  # an all-NaN window (unvoiced stretch) is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmedian(windows, axis=1))


def _clean_octave_jumps(f0: np.ndarray) -> np.ndarray:
    """Fold octave errors towards the local median, drop isolated voiced frames, and smooth each
    voiced run with a 5-frame median (a tracker's jitter is not intonation)."""
    out = f0.copy()
    voiced = np.flatnonzero(out > 0)
    if voiced.size < 3:
        return out
    values = out[voiced]
    for _ in range(2):
        ratio = values / _running_median(values, 12)
        values = np.where(ratio > 1.6, values / 2, np.where(ratio < 0.625, values * 2, values))
    out[voiced] = values
    is_voiced = out > 0
    out[is_voiced & ~np.roll(is_voiced, 1) & ~np.roll(is_voiced, -1)] = 0.0
    smoothed = _running_median(np.where(out > 0, out, np.nan), 2)
    return np.where(out > 0, smoothed, 0.0)


def median_f0(audio: np.ndarray, sample_rate: int) -> float:
    """Median F0 of the voiced frames (0.0 if nothing is voiced)."""
    f0 = estimate_f0(audio, sample_rate)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else 0.0


def formant_frequencies(audio: np.ndarray, sample_rate: int, count: int = 3) -> np.ndarray:
    """Median F1..F``count`` (Hz) over voiced frames, from LPC roots (order 2 + rate/1 kHz)."""
    rate = 11025
    g = np.gcd(int(sample_rate), rate)
    x = resample_poly(np.asarray(audio, dtype=np.float64), rate // g, int(sample_rate) // g)
    x = lfilter([1.0, -0.63], [1.0], x)  # pre-emphasis: formants above 1 kHz stand out
    f0 = estimate_f0(x, rate)
    hop, win = int(F0_HOP * rate), int(0.025 * rate)
    order = 2 + rate // 1000
    window = np.hamming(win)
    found: list[list[float]] = []
    for k in np.flatnonzero(f0 > 0):
        frame = x[k * hop + int(0.0075 * rate) : k * hop + int(0.0075 * rate) + win]
        if len(frame) < win:
            break
        a = _lpc(frame * window, order)
        roots = np.roots(a)
        roots = roots[np.imag(roots) > 0]
        freqs = np.angle(roots) * rate / (2 * np.pi)
        bands = -np.log(np.abs(roots)) * rate / np.pi
        keep = np.sort(freqs[(freqs > 90) & (bands < 400)])
        if len(keep) >= count:
            found.append(list(keep[:count]))
    if not found:
        return np.zeros(count)
    return np.median(np.array(found), axis=0)


def _lpc(frame: np.ndarray, order: int) -> np.ndarray:
    r = np.correlate(frame, frame, "full")[len(frame) - 1 : len(frame) + order]
    r[0] *= 1.0 + 1e-9
    a = np.zeros(order + 1)
    a[0] = 1.0
    err = r[0] if r[0] > 0 else 1e-12
    for i in range(1, order + 1):  # Levinson-Durbin
        k = -(r[i] + np.dot(a[1:i], r[i - 1 : 0 : -1])) / err
        a[1 : i + 1] = a[1 : i + 1] + k * np.concatenate([a[i - 1 : 0 : -1], [1.0]])
        err *= 1.0 - k * k
        if err <= 0:
            break
    return a


def _analysis_marks(
    x: np.ndarray, sample_rate: int, f0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch marks (sample positions) and the local period at each: one per glottal period on the
    waveform's peaks where voiced, every 10 ms where not."""
    hop = F0_HOP * sample_rate
    marks: list[int] = []
    periods: list[float] = []
    t = 0.0
    n = len(x)
    while t < n:
        frame = min(int(t / hop), len(f0) - 1) if len(f0) else -1
        f = f0[frame] if frame >= 0 else 0.0
        if f > 0:
            period = sample_rate / f
            lo, hi = int(t), min(n, int(t + period))
            if hi > lo:
                t = float(lo + int(np.argmax(x[lo:hi])))
        else:
            period = hop
        marks.append(int(t))
        periods.append(period)
        t += period
    return np.array(marks, dtype=np.int64), np.array(periods)


def shift_voice(audio: np.ndarray, sample_rate: int, settings: ShiftSettings) -> np.ndarray:
    """The same speech with new pitch, intonation range and formants; same length, same timing.

    Every pitch is multiplied by ``settings.pitch``; the intonation range is scaled (in log
    frequency) around the clip's own median, so the median moves by exactly that ratio whatever
    the range, and clause-to-clause differences (a question's higher clause) are kept.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if settings.identity or len(x) < sample_rate * 0.05:
        return np.asarray(audio, dtype=np.float32)
    f0_in = estimate_f0(x, sample_rate)
    voiced = f0_in > 0
    centre = float(np.median(f0_in[voiced])) if voiced.any() else 120.0
    # 1) Formants: resample so every frequency moves by the formant ratio.
    alpha = settings.formant
    up, down = _ratio(alpha)
    y = resample_poly(x, down, up) if (up, down) != (1, 1) else x
    # y's pitch is the input's, time-compressed and raised by the formant ratio.
    frames_y = np.minimum(
        (np.arange(int(len(f0_in) / alpha) + 1) * alpha).astype(int), len(f0_in) - 1
    )
    marks, periods = _analysis_marks(y, sample_rate, f0_in[frames_y] * alpha)
    # 2) Target contour on the output's time axis, from the input's own intonation.
    target = np.where(
        voiced,
        centre * settings.pitch * (np.maximum(f0_in, 1.0) / centre) ** settings.pitch_range,
        0.0,
    )
    out = np.zeros(len(x) + 2 * sample_rate // 50)
    norm = np.zeros_like(out)
    stretch = len(y) / len(x)
    hop = F0_HOP * sample_rate
    t = 0.0
    while t < len(x):
        frame = min(int(t / hop), len(target) - 1)
        f = target[frame] if frame >= 0 else 0.0
        k = int(np.searchsorted(marks, t * stretch))
        k = min(max(k, 0), len(marks) - 1)
        if k > 0 and abs(marks[k - 1] - t * stretch) < abs(marks[k] - t * stretch):
            k -= 1
        centre_y, period_y = int(marks[k]), periods[k]
        half = int(min(period_y, 0.025 * sample_rate))
        lo, hi = max(0, centre_y - half), min(len(y), centre_y + half)
        grain = y[lo:hi] * np.hanning(2 * half + 1)[lo - centre_y + half : hi - centre_y + half]
        start = int(t) - (centre_y - lo)
        if start >= 0:
            out[start : start + len(grain)] += grain
            norm[start : start + len(grain)] += np.hanning(2 * half + 1)[
                lo - centre_y + half : hi - centre_y + half
            ]
        t += sample_rate / f if f > 0 else hop
    shifted = out[: len(x)] / np.maximum(norm[: len(x)], 0.5)
    peak = float(np.max(np.abs(shifted))) if shifted.size else 0.0
    level = float(np.max(np.abs(x)))
    if peak > 0:
        shifted *= level / peak
    return shifted.astype(np.float32)


def _ratio(alpha: float) -> tuple[int, int]:
    """A small integer fraction up/down ~= alpha (resample_poly needs integers)."""
    from fractions import Fraction

    fraction = Fraction(alpha).limit_denominator(50)
    return fraction.numerator, fraction.denominator
