"""Per-frame signal comparison: correlation, best lag (A/V offset) and blink events.

All functions accept 1-D float sequences that may contain NaN (frames where no face was found):
NaN samples are left out pairwise, never interpolated.

Lag sign convention, used by ``best_lag`` and ``lag_curve``::

    lag > 0  <=>  ``signal`` is LATE relative to ``reference``:  signal[t] ~ reference[t - lag]

e.g. mouth aperture measured on rendered frames vs. the phoneme-openness track: lag = +2 means
the mouth moves two frames after the sound asks for it (video late / audio early).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ArrayLike1D = Sequence[float] | np.ndarray


def _as_1d(x: ArrayLike1D, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a


def _pearson(a: np.ndarray, b: np.ndarray, min_count: int) -> float:
    """Pearson correlation over the pairs where both are finite; NaN if too few or flat."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < max(2, min_count):
        return math.nan
    x = a[ok] - a[ok].mean()
    y = b[ok] - b[ok].mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    if den <= 1e-12 * max(1.0, n):
        return math.nan
    return float(np.clip((x @ y) / den, -1.0, 1.0))


def correlation(a: ArrayLike1D, b: ArrayLike1D) -> float:
    """Pearson correlation of two equally long tracks, ignoring frames where either is NaN.

    Returns NaN when fewer than 2 valid pairs remain or either track is constant there.
    """
    x, y = _as_1d(a, "a"), _as_1d(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"length mismatch: {x.size} vs {y.size}")
    return _pearson(x, y, 2)


def lag_curve(
    signal: ArrayLike1D,
    reference: ArrayLike1D,
    max_lag: int,
    *,
    min_overlap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlation for every integer lag in [-max_lag, max_lag].

    For each lag, ``signal[t]`` is paired with ``reference[t - lag]`` over the overlap (the tracks
    may differ in length; both start at frame 0), NaN pairs are dropped and the rest z-scored,
    so each value is a Pearson correlation in [-1, 1]. Lags with fewer than ``min_overlap``
    valid pairs (default: max(3, half the shorter track)) give NaN.
    Returns ``(lags, corrs)``; see the module docstring for the sign convention.
    """
    s, r = _as_1d(signal, "signal"), _as_1d(reference, "reference")
    if max_lag < 0:
        raise ValueError("max_lag must be >= 0")
    if min_overlap is None:
        min_overlap = max(3, min(s.size, r.size) // 2)
    lags = np.arange(-max_lag, max_lag + 1)
    corrs = np.full(lags.size, np.nan)
    for k, lag in enumerate(lags):
        # t runs over indices valid in signal with t - lag valid in reference.
        t0 = max(0, int(lag))
        t1 = min(s.size, r.size + int(lag))
        if t1 - t0 < min_overlap:
            continue
        corrs[k] = _pearson(s[t0:t1], r[t0 - lag : t1 - lag], min_overlap)
    return lags, corrs


def best_lag(
    signal: ArrayLike1D,
    reference: ArrayLike1D,
    max_lag: int,
    *,
    min_overlap: int | None = None,
) -> tuple[int, float]:
    """The integer lag in [-max_lag, max_lag] that maximises the correlation, and that correlation.

    Positive lag = ``signal`` is LATE relative to ``reference`` (signal[t] ~ reference[t - lag]).
    Ties go to the smaller |lag|. Returns ``(0, nan)`` when no lag has enough valid overlap.
    """
    lags, corrs = lag_curve(signal, reference, max_lag, min_overlap=min_overlap)
    if not np.isfinite(corrs).any():
        return 0, math.nan
    best = np.nanmax(corrs)
    cand = lags[np.isclose(corrs, best, rtol=0.0, atol=1e-12)]
    lag = int(cand[np.argmin(np.abs(cand))])
    return lag, float(best)


def blink_events(
    eye_openness: ArrayLike1D,
    fps: float,
    threshold_ratio: float = 0.5,
    *,
    min_separation_s: float = 0.1,
) -> list[int]:
    """Frame indices where a blink starts: openness falls below threshold x the median level.

    The median of the finite samples stands for the open level (eyes are open most of the time).
    Each run of frames below the threshold is one event, reported at its first frame; a run
    starting within ``min_separation_s`` after the previous one ended is the same blink (a
    one-frame flicker of the re-detected lids must not count twice).
    NaN frames (no face) neither start nor end a blink.
    """
    x = _as_1d(eye_openness, "eye_openness")
    if fps <= 0:
        raise ValueError("fps must be > 0")
    finite = np.isfinite(x)
    if not finite.any():
        return []
    thr = threshold_ratio * float(np.median(x[finite]))
    min_gap = max(1, int(round(min_separation_s * fps)))
    events: list[int] = []
    closed = False
    last_closed = -(10**9)
    for i, v in enumerate(x):
        if not math.isfinite(v):
            continue
        if v < thr:
            if not closed and i - last_closed > min_gap:
                events.append(i)
            closed = True
            last_closed = i
        else:
            closed = False
    return events
