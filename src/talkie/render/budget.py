"""What video a new session can afford on this machine: full 720p24, or less when the CPU is
already spoken for.

A talking 720p24 session costs about 0.75 of a core on the 2-core reference machine (render,
H.264, WebRTC, ears; bench/sessions.py on 2026-12-04: 75 % of a core for one talking session
in-process, 139-164 % for two on the process host; 0.45 was an older, faster host's figure).
When the cores are busy, a session started at full quality would make every
session's frames late (video is paced by the clock: late frames are skipped, the picture
stutters for everyone). Instead, a NEW session gets the best step of a ladder (smaller frames,
then fewer of them) that fits in what is left; sessions already running keep theirs. Audio is
never touched: the voice and the user's speech do not depend on the video's quality.

The measure is the machine's, from ``/proc/stat`` (busy cores since the previous reading, or
the 1-minute load average when there is no recent reading), so it holds whatever process the
sessions run in and counts the speech models' workers too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FULL_SIZE = (1280, 720)
FULL_FPS = 24.0
# Smaller frames first (a 960x540 picture upscaled by the page still looks like the
# character), then half the frame rate.
LADDER: tuple[tuple[tuple[int, int], float], ...] = (
    ((1280, 720), 24.0),
    ((960, 540), 24.0),
    ((960, 540), 12.0),
    ((640, 360), 12.0),
)


@dataclass(frozen=True)
class VideoQuality:
    """A session's video: output ``size`` and ``fps``; ``reason`` says why it is below what was
    asked for (empty when it is not)."""

    size: tuple[int, int]
    fps: float
    reason: str = ""

    @property
    def reduced(self) -> bool:
        return bool(self.reason)


def session_cost(size: tuple[int, int], fps: float, *, full_cost: float) -> float:
    """Cores a talking session at ``size`` and ``fps`` takes, from what one at 720p24 takes:
    the video work scales with pixels per second; a fifth of it (ears, audio, the page's data
    channel) does not."""
    share = (size[0] * size[1] * fps) / (FULL_SIZE[0] * FULL_SIZE[1] * FULL_FPS)
    return full_cost * (0.2 + 0.8 * share)


def choose_quality(
    requested: VideoQuality, *, busy_cores: float, cores: float, full_cost: float,
    headroom: float,
) -> VideoQuality:  # fmt: skip
    """The first step of ``LADDER`` (no better than ``requested``) whose session cost fits in
    ``cores * headroom - busy_cores``; the last step when none does (admission is decided
    elsewhere: a session that is let in gets the cheapest video rather than none)."""
    free = cores * headroom - busy_cores
    if session_cost(requested.size, requested.fps, full_cost=full_cost) <= free:
        return requested
    area = requested.size[0] * requested.size[1]
    steps = [
        (size, fps) for size, fps in LADDER
        if size[0] * size[1] <= area and fps <= requested.fps
        and (size, fps) != (requested.size, requested.fps)
    ]  # fmt: skip
    if not steps:
        return requested
    why = f"the machine is busy ({busy_cores:.1f} of {cores:g} cores in use)"
    for size, fps in steps:
        if session_cost(size, fps, full_cost=full_cost) <= free:
            return VideoQuality(size, fps, why)
    size, fps = steps[-1]
    return VideoQuality(size, fps, why)


class MachineLoad:
    """Busy cores of the whole machine, from ``/proc/stat``: averaged since the previous
    reading when that is at least ``min_window`` s old (and at most ``max_window`` s), else
    the 1-minute load average (capped at the core count)."""

    def __init__(
        self, *, stat_path: Path = Path("/proc/stat"), min_window: float = 0.5,
        max_window: float = 30.0, clock: Callable[[], float] = time.monotonic,
        loadavg: Callable[[], float] = lambda: os.getloadavg()[0], cores: float | None = None,
    ) -> None:  # fmt: skip
        self.stat_path = stat_path
        self.min_window, self.max_window = min_window, max_window
        self._clock, self._loadavg = clock, loadavg
        self.cores = float(cores or os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._last: tuple[float, int, int] | None = None  # (time, busy ticks, total ticks)
        self._last_busy = 0.0
        self.sample()

    def _ticks(self) -> tuple[int, int] | None:
        try:
            first = self.stat_path.read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        if not first or first[0] != "cpu" or len(first) < 5:
            return None
        values = [int(v) for v in first[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        # guest time is already counted in user/nice
        total = sum(values[:8])
        return total - idle, total

    def sample(self) -> None:
        """Take a reading now (so a later ``busy_cores`` can average from here)."""
        ticks = self._ticks()
        if ticks is not None:
            with self._lock:
                self._last = (self._clock(), *ticks)

    def busy_cores(self) -> float:
        now, ticks = self._clock(), self._ticks()
        with self._lock:
            last = self._last
            if ticks is None:
                return min(self._loadavg(), self.cores)
            if last is not None and now - last[0] < self.min_window:
                return self._last_busy if self._last_busy else min(self._loadavg(), self.cores)
            self._last = (now, *ticks)
            if last is None or now - last[0] > self.max_window or ticks[1] <= last[2]:
                busy = min(self._loadavg(), self.cores)
            else:
                busy = self.cores * (ticks[0] - last[1]) / (ticks[1] - last[2])
            self._last_busy = busy
            return busy


@dataclass
class VideoBudget:
    """Decides a new session's video (``plan``). ``full_cost``: cores a talking 720p24 session
    takes (see the module docstring); ``headroom``: the share of the cores sessions may fill
    (the rest absorbs speech synthesis bursts, which take a core for ~0.2 s per clause)."""

    full_cost: float = 0.75
    headroom: float = 0.9
    load: MachineLoad | None = None

    def plan(self, requested: VideoQuality) -> VideoQuality:
        load = self.load or _machine_load()
        quality = choose_quality(
            requested, busy_cores=load.busy_cores(), cores=load.cores,
            full_cost=self.full_cost, headroom=self.headroom,
        )  # fmt: skip
        if quality.reduced:
            log.warning(
                "new session's video lowered to %dx%d at %g fps: %s",
                *quality.size, quality.fps, quality.reason,
            )  # fmt: skip
        return quality


_SHARED: MachineLoad | None = None
_SHARED_LOCK = threading.Lock()


def _machine_load() -> MachineLoad:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = MachineLoad()
        return _SHARED


def video_budget_from_env() -> VideoBudget | None:
    """The budget when ``TALKIE_VIDEO_BUDGET=1``; otherwise every session at full quality.

    Off by default: the measure is the whole machine's, and when the browser runs on the same
    2-core machine (``make run``) or the warm pool is still loading models, the FIRST session
    already starts on "busy" cores and was lowered to 640x360 at 12 fps (seen in Chromium).
    Turn it on for a server whose cores serve only sessions."""
    if os.environ.get("TALKIE_VIDEO_BUDGET", "0").strip().lower() not in ("1", "on", "true", "yes"):
        return None
    return VideoBudget()
