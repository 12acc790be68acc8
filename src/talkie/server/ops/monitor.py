"""What the machine and the live sessions are doing, sampled every two seconds.

Every sample reads the live sessions' frame counters (frames handed out, frames late or
skipped), whether each is idle or in a turn, and the CPU time this process used plus that of
the sessions that run in their own worker process (which this process's CPU time cannot see:
without it, a session on the default process host would seem to cost nothing). From these it
keeps

- the frame pacing of the last seconds (the share of late frames: the first sign that the
  machine is out of headroom, and what admission control looks at);
- the measured cost of a session: CPU cores used per idle session and per talking one, learned
  from the samples (the server's own cost with no session is measured first and subtracted);
- a history of ten minutes for the admin page's plots.

Nothing here blocks: a sample is arithmetic on counters the sessions keep anyway.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SAMPLE_SECONDS = 2.0
HISTORY_SAMPLES = 300  # ten minutes at one sample per 2 s
PACING_WINDOW = 5  # samples (10 s) the late-frame share is judged over
IDLE_AFTER = 5.0  # seconds without a turn event after which a listening session counts as idle
COST_SMOOTHING = 0.3  # weight of the newest sample in the cost estimates (EWMA)


@dataclass(frozen=True)
class SessionSample:
    """One live session's counters at one moment (cumulative since it started)."""

    session_id: str
    frames: int  # video frames handed to the transport
    late_frames: int  # frames handed out late or skipped because their moment had passed
    talking: bool  # in a turn (the user speaking, the character thinking or speaking)
    cpu_seconds: float | None = None  # known when the session runs in its own process
    # of ``frames``, those that showed the previous picture again (the renderer was behind)
    repeated_frames: int = 0


@dataclass(frozen=True)
class Sample:
    """One point of the history (what the admin page plots)."""

    at: float  # wall clock
    live: int
    talking: int
    limit: int  # sessions admission would allow now
    frames: int  # frames handed out since the previous sample (all sessions)
    late_frames: int
    cpu_cores: float  # CPU use (this process and the sessions' own) since the previous sample
    machine_busy: float | None  # share of the whole machine's CPU in use (0..1)

    @property
    def late_ratio(self) -> float | None:
        total = self.frames + self.late_frames
        return self.late_frames / total if total else None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3), "live": self.live, "talking": self.talking,
            "limit": self.limit, "frames": self.frames, "late_frames": self.late_frames,
            "late_ratio": _round(self.late_ratio), "cpu_cores": round(self.cpu_cores, 4),
            "machine_busy": _round(self.machine_busy),
        }  # fmt: skip


@dataclass
class SessionCost:
    """CPU cores one session costs, measured (``None`` until samples have shown it)."""

    server: float | None = None  # the server alone, no session live
    idle: float | None = None  # per idle session, above the server's own
    talking: float | None = None  # per session in a turn

    def update(self, cores: float, idle: int, talking: int) -> None:
        if idle == 0 and talking == 0:
            self.server = _ewma(self.server, cores)
            return
        base = self.server or 0.0
        if talking == 0:
            self.idle = _ewma(self.idle, max(0.0, (cores - base) / idle))
            return
        rest = cores - base - idle * (self.idle or 0.0)
        self.talking = _ewma(self.talking, max(0.0, rest / talking))


def _ewma(old: float | None, new: float) -> float:
    return new if old is None else old + COST_SMOOTHING * (new - old)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class MachineCpu:
    """The whole machine's busy share between two reads (``/proc/stat``; ``None`` elsewhere).
    Worker processes and other programs count too: they take the same cores."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self.path = path
        self._last: tuple[float, float] | None = None

    def read(self) -> float | None:
        try:
            with open(self.path, encoding="ascii") as f:
                fields = [float(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        total = sum(fields)
        last, self._last = self._last, (idle, total)
        if last is None or total <= last[1]:
            return None
        return max(0.0, min(1.0, 1.0 - (idle - last[0]) / (total - last[1])))


@dataclass
class Monitor:
    """Samples the live sessions (``sessions()``) and the CPU time of this process and of the
    sessions' own processes.

    ``sessions`` returns the live sessions' counters (see ``SessionSample``); ``limit`` says
    how many sessions admission would allow now (plotted as capacity). ``cpu_time`` and
    ``clock`` are injectable so the estimates can be checked on given numbers.
    """

    sessions: Callable[[], list[SessionSample]]
    limit: Callable[[], int] = lambda: 0
    cpu_time: Callable[[], float] = time.process_time
    clock: Callable[[], float] = time.monotonic
    machine: MachineCpu = field(default_factory=MachineCpu)
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    history: deque[Sample] = field(default_factory=lambda: deque(maxlen=HISTORY_SAMPLES))
    cost: SessionCost = field(default_factory=SessionCost)
    frames_total: int = 0  # every frame handed out by any session of this server
    late_frames_total: int = 0
    repeated_frames_total: int = 0
    # CPU seconds of sessions in their own processes, counted between two of their reports
    # (a worker's first report also holds its start-up: that is not the session's cost)
    session_cpu_total: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, SessionSample] = {}  # last counters of each live session
        # (frames, late, repeated) of each live session at its recent samples, oldest first:
        # pacing is judged on the sessions live now (one that ended is no evidence of overload)
        self._windows: dict[str, deque[tuple[int, int, int]]] = {}
        self._session_cpu = 0.0  # session_cpu_total at the previous sample
        self._last_cpu = self.cpu_time()
        self._last_at = self.clock()
        self.machine.read()
        self.latest: list[SessionSample] = []

    def count_frames(self) -> list[SessionSample]:
        """Read the sessions' counters and add what they did since the last read to the
        totals (a session that ended keeps what it counted: the totals never go down)."""
        current = self.sessions()
        with self._lock:
            for s in current:
                before = self._seen.get(s.session_id)
                self.frames_total += max(0, s.frames - (before.frames if before else 0))
                self.late_frames_total += max(
                    0, s.late_frames - (before.late_frames if before else 0)
                )
                self.repeated_frames_total += max(
                    0, s.repeated_frames - (before.repeated_frames if before else 0)
                )
                if s.cpu_seconds is not None and before and before.cpu_seconds is not None:
                    self.session_cpu_total += max(0.0, s.cpu_seconds - before.cpu_seconds)
            self._seen = {s.session_id: s for s in current}
            self.latest = current
        return current

    def sample(self) -> Sample:
        """Take one sample: frame pacing, CPU, the cost estimates and the history."""
        frames_before, late_before = self.frames_total, self.late_frames_total
        current = self.count_frames()
        now, cpu = self.clock(), self.cpu_time()
        elapsed = max(1e-6, now - self._last_at)
        sessions_cpu = self.session_cpu_total - self._session_cpu
        cores = max(0.0, (cpu - self._last_cpu + sessions_cpu) / elapsed)
        self._last_at, self._last_cpu, self._session_cpu = now, cpu, self.session_cpu_total
        for s in current:
            window = self._windows.setdefault(
                s.session_id, deque([(0, 0, 0)], maxlen=PACING_WINDOW + 1)
            )
            window.append((s.frames, s.late_frames, s.repeated_frames))
        live = {s.session_id for s in current}
        self._windows = {k: v for k, v in self._windows.items() if k in live}
        talking = sum(1 for s in current if s.talking)
        self.cost.update(cores, idle=len(current) - talking, talking=talking)
        point = Sample(
            at=time.time(), live=len(current), talking=talking, limit=self.limit(),
            frames=self.frames_total - frames_before,
            late_frames=self.late_frames_total - late_before,
            cpu_cores=cores, machine_busy=self.machine.read(),
        )  # fmt: skip
        self.history.append(point)
        return point

    def late_ratio(self) -> tuple[float | None, int]:
        """The share of late frames of the sessions live now over the last ``PACING_WINDOW``
        samples (10 s), and how many frames that share is judged on."""
        frames = late = 0
        for window in self._windows.values():
            (f0, l0, _), (f1, l1, _) = window[0], window[-1]
            frames += max(0, f1 - f0) + max(0, l1 - l0)
            late += max(0, l1 - l0)
        return (late / frames if frames else None), frames

    def repeat_ratio(self) -> tuple[float | None, int]:
        """The share of frames handed out that repeated the previous picture (the renderer
        was behind: on time, at a reduced frame rate), over the same window as ``late_ratio``."""
        frames = repeated = 0
        for window in self._windows.values():
            (f0, _, r0), (f1, _, r1) = window[0], window[-1]
            frames += max(0, f1 - f0)
            repeated += max(0, r1 - r0)
        return (repeated / frames if frames else None), frames

    def machine_busy(self, window: int = PACING_WINDOW) -> float | None:
        """The machine's mean busy share over the last samples (``None``: not measurable)."""
        values = [p.machine_busy for p in list(self.history)[-window:]]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None
