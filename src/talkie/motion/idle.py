"""Idle life: blinks, breathing, head drift, gaze shifts and the attentive "listening" mode.

Everything here is a small stateful process advanced one frame at a time, so a sequence of steps
of any size produces exactly the same frames (the generator relies on that: ``generate(240)``
equals 60 steps of 4). The per-frame work is a handful of float operations in plain Python, which
is cheaper than numpy for a few scalars. Random events (blinks, saccades, nods) each draw from their
own ``numpy.random.Generator`` stream in time order, so adding one kind of event never reshuffles
the others.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from talkie.messages import FaceParams

__all__ = ["IdleMotion", "IdleOptions", "Mode", "PARAM_INDEX", "blink_profile"]

Mode = Literal["idle", "listening"]

#: Column of each FaceParams field in the (n, 16) arrays used throughout motion.
PARAM_INDEX: dict[str, int] = {name: i for i, name in enumerate(FaceParams.names())}


@dataclass(frozen=True)
class IdleOptions:
    """Rates and amplitudes of idle behaviour (seconds, degrees, face-height fractions)."""

    blink_interval: float = 4.0  # mean start-to-start gap of the regular schedule (hints add ~10 %)
    blink_shape: float = 2.5  # gamma shape: > 1 makes very short gaps rare, as in people
    blink_min_gap: float = 0.6
    double_blink: float = 0.12  # probability that a blink is immediately repeated
    blink_duration: tuple[float, float] = (0.16, 0.24)
    breath_period: float = 4.2
    breath_dy: float = 0.003  # head rises this much (fraction of face height) on an inhale
    breath_pitch_deg: float = 0.3
    drift_deg: tuple[float, float, float] = (1.5, 1.0, 0.7)  # std of yaw, pitch, roll drift
    drift_tau: float = 2.5  # seconds: how slowly the drift wanders
    speaking_drift_gain: float = 1.6  # more head motion while speaking
    gaze_range: float = 0.3
    gaze_fixation: float = 1.8  # mean fixation time between saccades
    listening_gaze_range: float = 0.06
    listening_nod_interval: float = 5.0
    listening_nod_deg: float = 1.8
    head_follows_gaze_deg: float = 3.0  # the head turns a little towards where the eyes look


@dataclass
class _Event:
    start: float
    duration: float
    amplitude: float = 1.0


def blink_profile(u: float, duration: float, fps: float) -> float:
    """Lid closure 0..1 at ``u`` seconds into a blink of ``duration`` seconds.

    Close fast (ease-in), stay shut for just over one frame (so every blink shows a fully closed
    frame whatever the sampling phase), open about twice as slowly as it closed.
    """
    if u <= 0.0 or u >= duration:
        return 0.0
    hold = 1.05 / fps
    moving = max(duration - hold, 0.04)
    close = 0.32 * moving
    if u < close:
        return 0.5 * (1.0 - math.cos(math.pi * u / close))
    if u < close + hold:
        return 1.0
    v = min((u - close - hold) / (moving - close), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * v))


class _SmoothNoise:
    """Ornstein-Uhlenbeck noise through a one-pole low-pass: wanders slowly and has no corners.

    A bare OU process is continuous but jagged at frame scale; the low-pass rounds it off. The
    innovation is normalised so the output's stationary std equals ``std``.
    """

    def __init__(
        self, *, std: float, tau: float, smooth_tau: float, dt: float, rng: np.random.Generator
    ) -> None:
        self._a = math.exp(-dt / tau)
        self._b = math.exp(-dt / smooth_tau)
        a, b = self._a, self._b
        gain = (1 - b) ** 2 * (1 + a * b) / ((1 - b * b) * (1 - a * b))
        self._sigma = std / math.sqrt(gain)
        self._rng = rng
        # Start in the stationary distribution so the first seconds look like any others.
        self.x = float(rng.normal(0.0, self._sigma))
        self.y = self.x * math.sqrt(gain)

    def step(self, scale: float = 1.0) -> float:
        a = self._a
        self.x = a * self.x + math.sqrt(1 - a * a) * self._sigma * scale * float(
            self._rng.standard_normal()
        )
        self.y = self._b * self.y + (1 - self._b) * self.x
        return self.y


class IdleMotion:
    """Idle behaviour as an (n, 16) FaceParams-ordered array, advanced frame by frame.

    ``speaking`` (0..1 per frame, from the scheduled speech) boosts head motion, blinks a bit more
    and keeps the gaze nearer the viewer. ``set_mode("listening")`` fades into attentive behaviour.
    """

    def __init__(
        self,
        *,
        fps: float = 24.0,
        seed: int | np.random.SeedSequence = 0,
        options: IdleOptions | None = None,
    ) -> None:
        self.fps = float(fps)
        self.options = opts = options or IdleOptions()
        self._dt = 1.0 / self.fps
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        blink_ss, gaze_ss, head_ss, breath_ss, nod_ss = ss.spawn(5)
        self._blink_rng = np.random.default_rng(blink_ss)
        self._gaze_rng = np.random.default_rng(gaze_ss)
        self._nod_rng = np.random.default_rng(nod_ss)
        head_rng = np.random.default_rng(head_ss)
        self._drift = [
            _SmoothNoise(std=s, tau=opts.drift_tau, smooth_tau=0.35, dt=self._dt, rng=head_rng)
            for s in opts.drift_deg
        ]
        self._breath_rate = _SmoothNoise(
            std=0.12, tau=8.0, smooth_tau=1.0, dt=self._dt, rng=np.random.default_rng(breath_ss)
        )
        self._breath_phase = float(self._blink_rng.uniform(0.0, 2.0 * math.pi))
        self._mode: Mode = "idle"
        self._listen = 0.0  # 0 idle .. 1 listening, eased so mode changes never jump
        self._blinks: list[_Event] = []
        self._hints: list[float] = []
        self._last_blink = -math.inf
        self._next_blink = float(self._blink_rng.uniform(0.5, opts.blink_interval))
        self._nods: list[_Event] = []
        self._next_nod = math.inf
        self._gaze = [0.0, 0.0]
        self._gaze_target = [0.0, 0.0]
        self._next_saccade = float(self._gaze_rng.uniform(0.3, opts.gaze_fixation))
        self._follow = [0.0, 0.0]
        self._attention: tuple[float, float] | None = None

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode, now: float) -> None:
        """Switch between "idle" and "listening"; ``now`` is the media time of the switch."""
        if mode not in ("idle", "listening"):
            raise ValueError(f"unknown motion mode {mode!r}: use 'idle' or 'listening'")
        if mode == self._mode:
            return
        self._mode = mode
        if mode == "listening":
            # First acknowledgement nod comes soon, but not instantly (that looks robotic).
            self._next_nod = now + float(self._nod_rng.uniform(1.0, 3.0))
            self._next_saccade = min(self._next_saccade, now + 0.2)  # look back at the user
        else:
            self._next_nod = math.inf

    def attend(self, target: tuple[float, float] | None) -> None:
        """Look at ``target`` (gaze_x, gaze_y: where the user's face is) instead of roaming;
        None lets the gaze roam again. A target that moves is followed at once (smooth pursuit),
        with small fixational saccades around it."""
        if target is not None and self._attention is not None:
            moved = math.hypot(target[0] - self._attention[0], target[1] - self._attention[1])
            if moved > 0.03:
                self._gaze_target = [target[0], target[1]]
        elif target is not None:
            self._gaze_target = [target[0], target[1]]
        self._attention = target

    def hint_blink(self, t: float) -> None:
        """Suggest a blink at media time ``t`` (a phrase end, a big gaze shift).

        Honoured when the time comes unless a blink happened recently (half the mean interval) or
        the regular schedule has one due within 0.5 s; an honoured hint restarts the schedule, so
        hints make blinks well-timed rather than much more frequent.
        """
        bisect.insort(self._hints, float(t))

    def step(self, first_index: int, speaking: np.ndarray) -> np.ndarray:
        """Advance ``len(speaking)`` frames starting at frame ``first_index``; returns (n, 16)."""
        n = len(speaking)
        out = np.zeros((n, len(PARAM_INDEX)))
        opts = self.options
        dt = self._dt
        ease = 1.0 - math.exp(-dt / 0.5)
        follow_ease = 1.0 - math.exp(-dt / 0.35)
        col = PARAM_INDEX
        for k in range(n):
            t = (first_index + k) * dt
            talk = float(speaking[k])
            self._listen += ((1.0 if self._mode == "listening" else 0.0) - self._listen) * ease
            lw = self._listen * (1.0 - talk)

            blink = self._blink_value(t, talk)
            out[k, col["blink_left"]] = blink
            out[k, col["blink_right"]] = blink

            gx, gy = self._gaze_value(t, talk)
            out[k, col["gaze_x"]] = gx
            out[k, col["gaze_y"]] = gy

            scale = (1.0 + (opts.speaking_drift_gain - 1.0) * talk) * (1.0 - 0.4 * lw)
            yaw, pitch, roll = (d.step(scale) for d in self._drift)
            # The head lags behind the eyes and turns only part of the way.
            self._follow[0] += (opts.head_follows_gaze_deg * gx - self._follow[0]) * follow_ease
            self._follow[1] += (0.6 * opts.head_follows_gaze_deg * gy - self._follow[1]) * (
                follow_ease
            )

            rate = 1.0 + self._breath_rate.step()
            self._breath_phase += 2.0 * math.pi * dt / opts.breath_period * rate
            breath = 1.0 - 0.4 * talk
            s = math.sin(self._breath_phase)
            out[k, col["head_dy"]] = -opts.breath_dy * breath * s
            pitch -= opts.breath_pitch_deg * breath * math.sin(self._breath_phase - 0.6)

            pitch += self._nod_value(t)
            out[k, col["head_yaw"]] = yaw + self._follow[0]
            out[k, col["head_pitch"]] = pitch + self._follow[1]
            out[k, col["head_roll"]] = roll
            # Attentive listeners lift their brows and soften the mouth corners a touch.
            out[k, col["brow_raise"]] = 0.1 * lw
            out[k, col["smile"]] = 0.08 * lw
        return out

    # ------------------------------------------------------------------ processes

    def _blink_duration(self) -> float:
        lo, hi = self.options.blink_duration
        return float(self._blink_rng.uniform(lo, hi))

    def _blink_value(self, t: float, talk: float) -> float:
        opts = self.options
        while self._hints and t >= self._hints[0]:
            hint = self._hints.pop(0)
            since = t - self._last_blink
            if t - hint < 0.5 and since > 0.5 * opts.blink_interval and self._next_blink - t > 0.5:
                # The hinted blink takes the place of the next regular one: the schedule restarts
                # from here, so hints move blinks to good moments without adding many.
                end = self._start_blink(t)
                self._next_blink = t + self._blink_gap(end - t, talk)
        while t >= self._next_blink:
            start = self._next_blink
            end = self._start_blink(start)
            self._next_blink = start + self._blink_gap(end - start, talk)
        value = 0.0
        for b in self._blinks:
            value = max(value, blink_profile(t - b.start, b.duration, self.fps))
        self._blinks = [b for b in self._blinks if t < b.start + b.duration]
        return value

    def _blink_gap(self, busy: float, talk: float) -> float:
        """Start-to-start time to the next regular blink (gamma), after ``busy`` s of blinking."""
        opts = self.options
        # Attentive listeners blink less, talkers more (both well documented). Double blinks
        # count as extra events, so the gap mean is scaled to keep the overall rate on target.
        mean = opts.blink_interval * (1.0 + 0.15 * self._listen - 0.15 * talk)
        mean *= 1.0 + opts.double_blink
        shape = opts.blink_shape
        gap = float(self._blink_rng.gamma(shape, mean / shape))
        return max(gap, busy + opts.blink_min_gap)

    def _start_blink(self, start: float) -> float:
        """Schedule a blink (sometimes a double blink) at ``start``; returns when it ends."""
        first = _Event(start, self._blink_duration())
        self._blinks.append(first)
        self._last_blink = start
        end = start + first.duration
        if self._blink_rng.random() < self.options.double_blink:
            pause = float(self._blink_rng.uniform(0.04, 0.12))
            second = _Event(end + pause, self._blink_duration())
            self._blinks.append(second)
            end = second.start + second.duration
        return end

    def _gaze_value(self, t: float, talk: float) -> tuple[float, float]:
        opts = self.options
        if t >= self._next_saccade:
            rng = self._gaze_rng
            u, nx, ny, fix = (
                rng.random(),
                rng.standard_normal(),
                rng.standard_normal(),
                rng.gamma(2.0, opts.gaze_fixation / 2.0),
            )
            # Speakers and listeners keep coming back to the viewer's face; idle gaze roams.
            # A user seen by the camera is where the viewer's face is: eye contact, mostly.
            if self._attention is not None and u < 0.85:
                ax, ay = self._attention
                tx, ty = ax + 0.015 * nx, ay + 0.015 * ny
                self._gaze_target = [tx, ty]
                self._next_saccade = t + max(float(fix), 0.25)
                for i in (0, 1):
                    self._gaze[i] += (self._gaze_target[i] - self._gaze[i]) * 0.75
                return self._gaze[0], self._gaze[1]
            if self._mode == "listening" and talk < 0.5:
                rx = ry = opts.listening_gaze_range
                fix *= 1.3
            elif u < 0.35 + 0.35 * talk:
                rx = ry = 0.05
            else:
                rx, ry = opts.gaze_range, 0.6 * opts.gaze_range
            tx = max(-rx, min(rx, 0.5 * rx * nx))
            ty = max(-ry, min(ry, 0.5 * ry * ny))
            jump = math.hypot(tx - self._gaze_target[0], ty - self._gaze_target[1])
            self._gaze_target = [tx, ty]
            self._next_saccade = t + max(float(fix), 0.25)
            if jump > 0.25:
                self.hint_blink(t + 0.02)  # large gaze shifts often come with a blink
        # A saccade covers ~75 % of the distance per frame: a jump, then fixation.
        for i in (0, 1):
            self._gaze[i] += (self._gaze_target[i] - self._gaze[i]) * 0.75
        return self._gaze[0], self._gaze[1]

    def _nod_value(self, t: float) -> float:
        opts = self.options
        if self._mode == "listening" and t >= self._next_nod:
            rng = self._nod_rng
            amp = opts.listening_nod_deg * float(rng.uniform(0.6, 1.2))
            self._nods.append(_Event(t, float(rng.uniform(0.45, 0.7)), amp))
            if rng.random() < 0.3:  # "mm-hm": a second, smaller nod
                self._nods.append(_Event(t + 0.5, 0.45, 0.6 * amp))
            self._next_nod = t + max(float(rng.gamma(3.0, opts.listening_nod_interval / 3.0)), 1.5)
        value = 0.0
        for nod in self._nods:
            u = (t - nod.start) / nod.duration
            if 0.0 < u < 1.0:
                value += nod.amplitude * math.sin(math.pi * u) ** 2
        self._nods = [nd for nd in self._nods if t < nd.start + nd.duration]
        # Scaled by the eased mode weight so leaving "listening" mid-nod fades instead of jumping.
        return value * self._listen
