"""best_lag / lag_curve / correlation / blink_events on synthetic tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from talkie.quality import best_lag, blink_events, correlation, lag_curve


def smooth_noise(n: int, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    return gaussian_filter1d(np.random.default_rng(seed).standard_normal(n), sigma)


def delay(x: np.ndarray, frames: int) -> np.ndarray:
    """x delayed by ``frames`` (late if > 0): out[t] = x[t - frames], NaN where undefined."""
    out = np.full_like(x, np.nan)
    if frames >= 0:
        out[frames:] = x[: x.size - frames]
    else:
        out[:frames] = x[-frames:]
    return out


@pytest.mark.parametrize("shift", [2, -3, 0, 5])
def test_best_lag_recovers_a_known_shift(shift: int) -> None:
    ref = smooth_noise(240)
    sig = delay(ref, shift)
    lag, corr = best_lag(sig, ref, max_lag=8)
    assert lag == shift
    assert corr == pytest.approx(1.0, abs=1e-9)


def test_sign_convention_late_signal_is_positive() -> None:
    # A mouth that opens 2 frames after the sound asks for it: video late -> +2.
    sound = np.zeros(48)
    sound[10:14] = 1.0
    mouth = np.zeros(48)
    mouth[12:16] = 1.0
    assert best_lag(mouth, sound, 5)[0] == 2
    assert best_lag(sound, mouth, 5)[0] == -2


def test_best_lag_with_noise_and_nan() -> None:
    rng = np.random.default_rng(1)
    ref = smooth_noise(240, seed=2)
    sig = delay(ref, 3) + 0.05 * rng.standard_normal(240)
    sig[rng.choice(240, 30, replace=False)] = np.nan  # frames where no face was found
    ref_nan = ref.copy()
    ref_nan[[5, 50, 100]] = np.nan
    lag, corr = best_lag(sig, ref_nan, max_lag=10)
    assert lag == 3
    assert 0.9 < corr < 1.0


def test_best_lag_different_lengths_and_degenerate() -> None:
    ref = smooth_noise(200, seed=3)
    sig = delay(ref, -2)[:150]  # shorter, early
    assert best_lag(sig, ref, 6)[0] == -2
    lag, corr = best_lag(np.full(50, np.nan), ref[:50], 4)
    assert lag == 0 and math.isnan(corr)
    lag, corr = best_lag(np.ones(50), ref[:50], 4)  # constant: no correlation defined
    assert lag == 0 and math.isnan(corr)
    with pytest.raises(ValueError):
        best_lag(ref, ref, -1)


def test_lag_curve_shape_and_peak() -> None:
    ref = smooth_noise(120, seed=4)
    lags, corrs = lag_curve(delay(ref, 1), ref, 4)
    assert lags.tolist() == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert int(lags[np.nanargmax(corrs)]) == 1
    assert np.all(np.abs(corrs[np.isfinite(corrs)]) <= 1.0)
    # Lags with too little overlap are NaN rather than a spurious 3-sample correlation.
    lags, corrs = lag_curve(ref[:10], ref[:10], 8)
    assert np.isnan(corrs[0]) and np.isnan(corrs[-1]) and corrs[8] == pytest.approx(1.0)


def test_correlation() -> None:
    x = smooth_noise(100, seed=5)
    assert correlation(x, x) == pytest.approx(1.0)
    assert correlation(x, -2 * x + 3) == pytest.approx(-1.0)
    y = x.copy()
    y[::7] = np.nan
    assert correlation(x, y) == pytest.approx(1.0)
    assert math.isnan(correlation(x, np.ones_like(x)))
    assert math.isnan(correlation([1.0, np.nan], [np.nan, 2.0]))
    with pytest.raises(ValueError):
        correlation(x, x[:-1])


def test_blink_events() -> None:
    fps = 24.0
    x = np.full(120, 0.33)
    x[10:13] = [0.15, 0.05, 0.18]  # blink 1
    x[50:53] = [0.1, 0.25, 0.1]  # one-frame flicker inside a blink: still one blink
    x[80:84] = 0.02  # blink 3
    x[[30, 31, 82]] = np.nan  # missing frames: no event, and do not split blink 3
    assert blink_events(x, fps) == [10, 50, 80]
    assert blink_events(x, fps, threshold_ratio=0.2) == [11, 80]  # only the deep closures
    assert blink_events(x, fps, min_separation_s=0.0) == [10, 50, 52, 80]
    assert blink_events(np.full(10, np.nan), fps) == []
    assert blink_events(np.full(10, 0.3), fps) == []
    with pytest.raises(ValueError):
        blink_events(x, 0)
