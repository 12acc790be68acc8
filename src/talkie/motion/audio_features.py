"""Cheap, vectorised audio features sampled at video frame times (numpy only).

Every function takes the clip's audio plus ``times`` (seconds from the clip start, usually frame
presentation times) and returns one value per time, computed on a window *centred* on that time so
that features line up with what is audible at the frame's presentation time (no A/V lag).
Samples outside the audio count as silence.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "frame_windows",
    "pitch_track",
    "rms_envelope",
    "spectral_centroid",
]


def frame_windows(
    audio: np.ndarray, sample_rate: int, times: np.ndarray, length: int
) -> np.ndarray:
    """Stack windows of ``length`` samples centred on ``times`` (zero outside the audio)."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    length = max(int(length), 1)
    half = length // 2
    padded = np.zeros(len(x) + 2 * length, dtype=np.float32)
    padded[length : length + len(x)] = x
    centres = np.rint(times * sample_rate).astype(np.int64)
    # Indices beyond the padding are clamped onto a padding zero, i.e. silence.
    starts = np.clip(centres - half + length, 0, len(padded) - length)
    outside = (centres + half < 0) | (centres - half >= len(x))
    idx = starts[:, None] + np.arange(length)[None, :]
    windows = padded[idx]
    windows[outside] = 0.0
    return windows


def rms_envelope(
    audio: np.ndarray, sample_rate: int, times: np.ndarray, window: float = 0.042
) -> np.ndarray:
    """Hann-weighted RMS of the audio around each time (``window`` seconds, ~1 frame at 24 fps)."""
    length = max(int(round(window * sample_rate)), 8)
    frames = frame_windows(audio, sample_rate, times, length).astype(np.float64)
    w = np.hanning(length)
    energy = (frames**2 @ (w**2)) / max(float(np.sum(w**2)), 1e-12)
    return np.sqrt(np.maximum(energy, 0.0))


def spectral_centroid(
    audio: np.ndarray,
    sample_rate: int,
    times: np.ndarray,
    window: float = 0.04,
    band: tuple[float, float] = (150.0, 4000.0),
) -> np.ndarray:
    """Spectral centroid (Hz) within ``band`` around each time: a crude second-formant proxy.

    Rounded vowels (u, o) concentrate energy low, spread ones (i, e) push it up; that is all the
    no-phoneme lip-sync path needs. Silent windows return the band centre.
    """
    length = max(int(round(window * sample_rate)), 16)
    n_fft = 1 << int(np.ceil(np.log2(length)))
    frames = frame_windows(audio, sample_rate, times, length).astype(np.float64)
    spec = np.abs(np.fft.rfft(frames * np.hanning(length), n=n_fft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    keep = (freqs >= band[0]) & (freqs <= band[1])
    power = spec[:, keep]
    total = power.sum(axis=1)
    centre = 0.5 * (band[0] + band[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (power @ freqs[keep]) / total
    return np.where(total > 1e-12, centroid, centre)


def pitch_track(
    audio: np.ndarray,
    sample_rate: int,
    times: np.ndarray,
    *,
    f0_min: float = 70.0,
    f0_max: float = 400.0,
    threshold: float = 0.2,
    silence_db: float = -40.0,
) -> tuple[np.ndarray, np.ndarray]:
    """YIN fundamental frequency around each time, vectorised over all times at once.

    Returns ``(f0_hz, periodicity)``: ``f0_hz`` is NaN where the window is unvoiced (no dip of the
    cumulative-mean-normalised difference below ``threshold``, or quieter than ``silence_db``
    relative to the loudest window); ``periodicity`` is ``1 - min CMNDF`` in 0..1.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    n = len(times)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    max_lag = int(np.ceil(sample_rate / f0_min))
    min_lag = max(int(np.floor(sample_rate / f0_max)), 2)
    width = max_lag  # integration window: at least one period of the lowest pitch
    seg = width + max_lag
    x = frame_windows(audio, sample_rate, times, seg).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)

    # r(tau) = sum_{j<W} x[j] x[j+tau] for all lags via one FFT pair (no wrap-around: N >= W+L).
    n_fft = 1 << int(np.ceil(np.log2(seg + 1)))
    a = np.fft.rfft(x[:, :width], n=n_fft, axis=1)
    b = np.fft.rfft(x, n=n_fft, axis=1)
    r = np.fft.irfft(np.conj(a) * b, n=n_fft, axis=1)[:, : max_lag + 1]
    cs = np.concatenate([np.zeros((n, 1)), np.cumsum(x**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    e0 = cs[:, width][:, None]
    e_tau = cs[:, lags + width] - cs[:, lags]
    d = np.maximum(e0 + e_tau - 2.0 * r, 0.0)

    # Cumulative mean normalised difference (YIN step 3).
    cum = np.cumsum(d[:, 1:], axis=1)
    cmndf = np.ones_like(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        cmndf[:, 1:] = np.where(cum > 1e-12, d[:, 1:] * lags[1:] / cum, 1.0)
    cmndf[:, :min_lag] = np.inf

    # First dip below threshold, then the minimum of that dip (YIN step 4), all rows at once.
    below = cmndf < threshold
    voiced = below.any(axis=1)
    first = np.argmax(below, axis=1)
    after_first = lags[None, :] >= first[:, None]
    still_in_dip = np.logical_and.accumulate(np.where(after_first, below, True), axis=1)
    dip = still_in_dip & after_first
    masked = np.where(dip, cmndf, np.inf)
    best = np.argmin(masked, axis=1)
    # If nothing dips below the threshold, the global minimum still yields a periodicity value.
    global_best = np.argmin(cmndf, axis=1)
    best = np.where(voiced, best, global_best)
    rows = np.arange(n)
    periodicity = np.clip(1.0 - cmndf[rows, best], 0.0, 1.0)

    # Parabolic interpolation around the chosen lag for sub-sample period accuracy.
    lo = np.clip(best - 1, 0, max_lag)
    hi = np.clip(best + 1, 0, max_lag)
    y0, y1, y2 = cmndf[rows, lo], cmndf[rows, best], cmndf[rows, hi]
    finite = np.isfinite(y0) & np.isfinite(y2) & (lo < best) & (hi > best)
    denom = y0 - 2.0 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(finite & (np.abs(denom) > 1e-12), 0.5 * (y0 - y2) / denom, 0.0)
    period = best + np.clip(shift, -1.0, 1.0)

    energy = e0[:, 0] / width
    loud = energy > (np.max(energy) * 10.0 ** (silence_db / 10.0) + 1e-12)
    voiced &= loud & (period > 0)
    with np.errstate(divide="ignore"):
        f0 = np.where(voiced, sample_rate / np.maximum(period, 1e-9), np.nan)
    return f0, periodicity
