"""Admission control: a new session starts only when the machine has room for it.

A fixed ``max_sessions`` cannot know how heavy the sessions are (a talking 720p session costs
many times an idle one; the renderer may be faster next release; other programs share the
cores). So besides the cap, admission looks at what is measured (``Monitor``):

1. **frame pacing**: when the live sessions already hand out more than ``max_late_ratio`` of
   their frames late, the machine is out of headroom: a new session would make every session
   worse. This is the signal that matters to users, and it is measured on this server's own
   sessions, so other load on the box counts exactly as much as it hurts.
2. **CPU** (``cpu_limit``, off by default): refuse when the machine is busier than that share
   of its cores, or would be with one more talking session at its measured cost.

A refused session gets ``503`` with ``Retry-After`` and an error body that says why, how many
sessions are live, and the current limit, e.g.
``{"error": {"code": "busy", "reason": "frames_late", "live": 3, "limit": 3, ...}}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from talkie.server.errors import ApiError
from talkie.server.ops.monitor import Monitor


@dataclass(frozen=True)
class AdmissionOptions:
    """``max_late_ratio``: refuse while this share of the live sessions' frames is late (over
    the last 10 s, judged on at least ``min_frames`` frames: 4 s of one session); ``None``
    turns the check off. ``cpu_limit``: refuse above this busy share of the machine's cores
    (``None``: off, the default: a shared machine's load is not ours to judge by).
    ``retry_after``: seconds a refused client is told to wait."""

    max_late_ratio: float | None = 0.05
    min_frames: int = 96
    cpu_limit: float | None = None
    retry_after: int = 10


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str  # "ok", "max_sessions", "frames_late", "cpu"
    message: str
    live: int  # sessions live or starting
    limit: int  # sessions that may be live now
    retry_after: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "admitted": self.admitted, "reason": self.reason, "live": self.live,
            "limit": self.limit, "retry_after": self.retry_after,
        }  # fmt: skip


class Admission:
    """Decides whether a new session may start (``check`` raises the 503)."""

    def __init__(
        self,
        *,
        monitor: Monitor,
        occupied: Callable[[], int],
        max_sessions: Callable[[], int],
        options: AdmissionOptions | None = None,
    ) -> None:
        self.monitor = monitor
        self.occupied = occupied  # sessions live or starting now
        self.max_sessions = max_sessions
        self.options = options or AdmissionOptions()
        self.refused: dict[str, int] = {}  # reason -> count, for the metrics

    def limit(self) -> int:
        """How many sessions may be live now: the cap, lowered to what is live while the
        measurements say there is no headroom, or to what the measured cost of a talking
        session leaves room for under ``cpu_limit``."""
        cap = self.max_sessions()
        live = self.occupied()
        if self._pacing_exhausted() is not None:
            return min(cap, live)
        opts, cost = self.options, self.monitor.cost
        if opts.cpu_limit is not None and cost.talking:
            room = opts.cpu_limit * self.monitor.cores - (cost.server or 0.0)
            cap = min(cap, max(0, math.floor(room / cost.talking)))
        return cap

    def decide(self) -> Decision:
        opts = self.options
        live, cap = self.occupied(), self.max_sessions()
        if live >= cap:
            return self._refuse(
                "max_sessions", f"Talkie is busy: all {cap} sessions are in use", live, cap
            )
        late = self._pacing_exhausted()
        if late is not None:
            return self._refuse(
                "frames_late",
                f"Talkie is busy: the {live} live sessions already drop {late:.0%} of their "
                "video frames, a new one would make every session worse",
                live, live,
            )  # fmt: skip
        busy = self.monitor.machine_busy()
        if opts.cpu_limit is not None and busy is not None:
            need = (self.monitor.cost.talking or 0.0) / self.monitor.cores
            if busy + need > opts.cpu_limit:
                return self._refuse(
                    "cpu", f"Talkie is busy: the machine's CPU is {busy:.0%} in use", live, live
                )
        return Decision(True, "ok", "", live, self.limit())

    def check(self) -> Decision:
        """Raise ``ApiError(503)`` with ``Retry-After`` when a new session may not start."""
        decision = self.decide()
        if not decision.admitted:
            self.refused[decision.reason] = self.refused.get(decision.reason, 0) + 1
            raise ApiError(
                503, "busy", decision.message + f"; try again in {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
                details={
                    "reason": decision.reason, "live": decision.live, "limit": decision.limit,
                    "retry_after": decision.retry_after,
                },
            )  # fmt: skip
        return decision

    def _pacing_exhausted(self) -> float | None:
        """The late share if it is over the limit (on enough frames), else ``None``."""
        limit = self.options.max_late_ratio
        if limit is None:
            return None
        ratio, frames = self.monitor.late_ratio()
        if ratio is None or frames < self.options.min_frames or ratio <= limit:
            return None
        return ratio

    def _refuse(self, reason: str, message: str, live: int, limit: int) -> Decision:
        return Decision(False, reason, message, live, limit, self.options.retry_after)
