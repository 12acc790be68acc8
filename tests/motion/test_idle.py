"""Idle life: blinks, head drift limits, gaze, breathing, listening mode."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.motion import MotionGenerator
from talkie.motion.idle import IdleMotion, blink_profile

FPS = 24.0
NAMES = FaceParams.names()


def col(frames: np.ndarray, name: str) -> np.ndarray:
    return frames[:, NAMES.index(name)]


def run(seed: int, seconds: float, mode: str = "idle") -> np.ndarray:
    gen = MotionGenerator(fps=FPS, seed=seed)
    gen.set_mode(mode)  # type: ignore[arg-type]
    return np.array([f.params.as_array() for f in gen.generate(int(seconds * FPS))])


def blink_starts(lid: np.ndarray) -> np.ndarray:
    """Frames where the lid leaves the open state (a double blink counts twice)."""
    moving = lid > 0.02
    return np.flatnonzero(moving[1:] & ~moving[:-1]) + 1


@pytest.mark.parametrize("seed", range(5))
def test_blink_count_per_minute_is_natural(seed: int) -> None:
    frames = run(seed, 60.0)
    lid = col(frames, "blink_left")
    np.testing.assert_array_equal(lid, col(frames, "blink_right"))  # both eyes together
    assert 8 <= len(blink_starts(lid)) <= 30


def test_mean_blink_interval_over_ten_minutes() -> None:
    starts = blink_starts(col(run(11, 600.0), "blink_left"))
    mean_interval = 600.0 / len(starts)
    assert 3.0 <= mean_interval <= 4.5
    gaps = np.diff(starts) / FPS
    assert gaps.min() > 0.15  # double blinks are close, but never overlapping
    assert np.mean(gaps < 0.6) < 0.25  # most blinks are well apart (doubles are occasional)
    assert np.mean(gaps < 0.6) > 0.0  # ... but double blinks do happen


def test_every_blink_closes_fully_and_opens_slower_than_it_closes() -> None:
    lid = col(run(5, 120.0), "blink_left")
    starts = blink_starts(lid)
    assert len(starts) > 15
    for s in starts:
        segment = lid[s : s + 8]
        assert segment.max() == pytest.approx(1.0)
    # Sample the profile finely: time to close < time to open; 150-250 ms in all.
    for duration in (0.16, 0.2, 0.24):
        u = np.linspace(0.0, duration, 2001)
        v = np.array([blink_profile(x, duration, FPS) for x in u])
        closed = np.flatnonzero(v >= 1.0)
        closing = u[closed[0]]
        opening = duration - u[closed[-1]]
        assert closing < opening
        assert 0.15 <= duration <= 0.25
        assert u[closed[-1]] - u[closed[0]] >= 1.0 / FPS  # every sampling phase sees it shut


@pytest.mark.parametrize("mode", ["idle", "listening"])
def test_head_stays_within_limits_and_moves_smoothly_for_five_minutes(mode: str) -> None:
    frames = run(2, 300.0, mode)
    for name, limit in (("head_yaw", 10.0), ("head_pitch", 8.0), ("head_roll", 6.0)):
        angle = col(frames, name)
        assert np.abs(angle).max() < limit
        assert angle.std() > 0.2  # alive, never frozen
        assert np.abs(np.diff(angle)).max() < 1.0  # degrees per frame: no jumps
    assert np.abs(col(frames, "head_yaw")).max() < 6.0  # "a few degrees" of drift
    for name in ("gaze_x", "gaze_y"):
        assert np.abs(col(frames, name)).max() <= 0.35
    dy = col(frames, "head_dy")
    assert 0.001 < np.abs(dy).max() < 0.01  # breathing: tiny but present
    mouth = frames[:, [NAMES.index(n) for n in ("jaw_open", "lip_press")]]
    assert np.all(mouth == 0.0)  # idle never moves the mouth


def test_breathing_is_slow() -> None:
    dy = col(run(4, 60.0), "head_dy")
    crossings = np.flatnonzero(np.diff(np.sign(dy)) != 0)
    breaths = len(crossings) / 2
    assert 8 <= breaths <= 25  # 3-5 s per breath


def test_listening_keeps_gaze_near_centre_and_nods() -> None:
    idle, listening = run(7, 120.0, "idle"), run(7, 120.0, "listening")
    settled = slice(int(2 * FPS), None)
    gx_idle = col(idle, "gaze_x")[settled]
    gx_listen = col(listening, "gaze_x")[settled]
    assert np.abs(gx_listen).max() <= 0.08
    assert gx_listen.std() < 0.6 * gx_idle.std()
    # Nods: brief downward head-pitch excursions well above the slow drift.
    pitch = col(listening, "head_pitch")
    fast = pitch - np.convolve(pitch, np.ones(49) / 49, mode="same")
    nods = np.flatnonzero((fast[1:] > 0.7) & (fast[:-1] <= 0.7))
    assert 8 <= len(nods) <= 60
    assert col(listening, "brow_raise")[settled].mean() > col(idle, "brow_raise")[settled].mean()


def test_mode_switch_is_eased_and_invalid_mode_rejected() -> None:
    gen = MotionGenerator(fps=FPS, seed=0)
    before = gen.generate(48)
    gen.set_mode("listening")
    after = gen.generate(48)
    arr = np.array([f.params.as_array() for f in before + after])
    brow = col(arr, "brow_raise")
    assert np.abs(np.diff(brow)).max() < 0.02
    with pytest.raises(ValueError):
        gen.set_mode("dancing")  # type: ignore[arg-type]


def test_idle_motion_is_chunk_independent() -> None:
    a = IdleMotion(fps=FPS, seed=9)
    b = IdleMotion(fps=FPS, seed=9)
    whole = a.step(0, np.zeros(240))
    parts = np.concatenate([b.step(i, np.zeros(k)) for i, k in ((0, 7), (7, 100), (107, 133))])
    np.testing.assert_array_equal(whole, parts)
