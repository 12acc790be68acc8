"""Admission control: a new session starts only when the machine has room for it.

A fixed ``max_sessions`` cannot know how heavy the sessions are (a talking 720p session costs
many times an idle one; the renderer may be faster next release; other programs share the
cores). So besides the cap, admission looks at what is measured (``Monitor``):

1. **frame pacing**: when the live sessions already hand out more than ``max_late_ratio`` of
   their frames late, the machine is out of headroom: a new session would make every session
   worse. This is the signal that matters to users, and it is measured on this server's own
   sessions, so other load on the box counts exactly as much as it hurts. A renderer that
   falls behind first shows the previous picture again rather than come late (on time, at a
   reduced frame rate): more than ``max_repeat_ratio`` of such frames is the same signal,
   given before anyone sees a late frame.
2. **CPU** (``cpu_limit``, off by default): refuse when the machine is busier than that share
   of its cores, or would be with one more talking session at its measured cost.

A refused session gets ``503`` with ``Retry-After`` and an error body that says why, how many
sessions are live, the current limit and its place in the line, e.g.
``{"error": {"code": "busy", "reason": "frames_late", "live": 3, "limit": 3,
"queue": {"ticket": "q_...", "position": 2}, ...}}``.

**The line:** while anyone waits, sessions are given first come, first served. A refused
client that comes back with its ticket (header ``Talkie-Queue-Ticket``) within twice the
Retry-After keeps its place; newcomers queue behind it. Someone admitted from the line holds a
slot for ``queue_hold`` seconds, the time to send the WebRTC offer, so the next in line cannot
take it meanwhile. Without contention nobody queues and nothing is held.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from talkie.server.errors import ApiError
from talkie.server.ops.monitor import Monitor


@dataclass(frozen=True)
class AdmissionOptions:
    """``max_late_ratio``: refuse while this share of the live sessions' frames is late (over
    the last 10 s, judged on at least ``min_frames`` frames: 4 s of one session); ``None``
    turns the check off. ``max_repeat_ratio``: likewise for frames that repeated the previous
    picture (the renderer behind). ``cpu_limit``: refuse above this busy share of the
    machine's cores (``None``: off, the default: a shared machine's load is not ours to judge
    by).
    ``retry_after``: seconds a refused client is told to wait. ``queue_size``: how many may
    wait in line (0: no line); ``queue_hold``: seconds a slot is kept for someone admitted from
    the line."""

    max_late_ratio: float | None = 0.05
    max_repeat_ratio: float | None = 0.10
    min_frames: int = 96
    cpu_limit: float | None = None
    retry_after: int = 10
    queue_size: int = 100
    queue_hold: float = 15.0


class WaitingLine:
    """Tickets of the people waiting for a session, first come first served. A ticket stays
    while its holder comes back within ``keep`` seconds; ``held()`` counts the slots kept for
    those admitted from the line in the last ``hold`` seconds."""

    def __init__(
        self, *, size: int, keep: float, hold: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.size, self.keep, self.hold, self.clock = size, keep, hold, clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # ticket -> last time it came
        self._holds: list[float] = []  # when each kept slot is released

    def __len__(self) -> int:
        self._forget()
        return len(self._seen)

    def held(self) -> int:
        self._forget()
        return len(self._holds)

    def join(self, ticket: str | None) -> tuple[str, int] | None:
        """Keep ``ticket``'s place (or queue a new ticket at the end): (ticket, position from
        1), or ``None`` when the line is full."""
        self._forget()
        if ticket is None or ticket not in self._seen:
            if len(self._seen) >= self.size:
                return None
            ticket = "q_" + secrets.token_hex(8)
        self._seen[ticket] = self.clock()
        return ticket, list(self._seen).index(ticket) + 1

    def admit(self, ticket: str) -> None:
        """``ticket`` leaves the line with a session; its slot is held for a while."""
        self._seen.pop(ticket, None)
        self._holds.append(self.clock() + self.hold)

    def _forget(self) -> None:
        now = self.clock()
        for ticket, seen in list(self._seen.items()):
            if now - seen > self.keep:  # gone: did not come back in time
                del self._seen[ticket]
        self._holds = [t for t in self._holds if t > now]


@dataclass(frozen=True)
class Decision:
    admitted: bool
    reason: str  # "ok", "max_sessions", "frames_late", "frames_repeated", "cpu"
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitor = monitor
        self._occupied = occupied  # sessions live or starting now
        self.max_sessions = max_sessions
        self.options = opts = options or AdmissionOptions()
        self.refused: dict[str, int] = {}  # reason -> count, for the metrics
        self.line = WaitingLine(
            size=opts.queue_size, keep=2.0 * opts.retry_after + 5.0, hold=opts.queue_hold,
            clock=clock,
        )  # fmt: skip

    def occupied(self) -> int:
        """Sessions live or starting, and slots held for people admitted from the line."""
        return self._occupied() + self.line.held()

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
        pacing = self._pacing_exhausted()
        if pacing is not None:
            reason, share = pacing
            what = "drop" if reason == "frames_late" else "repeat"
            return self._refuse(
                reason,
                f"Talkie is busy: the {live} live sessions already {what} {share:.0%} of their "
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

    def check(self, ticket: str | None = None) -> Decision:
        """Admit a new session, or raise ``ApiError(503)`` with ``Retry-After`` and the place
        in the line (``ticket``: the one a refused client got, to keep its place)."""
        decision = self.decide()
        if decision.admitted and not len(self.line):
            return decision  # nobody waits: no line
        free = max(0, decision.limit - decision.live) if decision.admitted else 0
        joined = self.line.join(ticket)
        if joined is None:
            return self._raise(decision, f"{self.options.queue_size} people are already waiting")
        ticket, position = joined
        if position <= free:
            self.line.admit(ticket)
            return decision
        ahead = position - 1
        why = decision.message if not decision.admitted else (
            f"Talkie is busy: {ahead} {'person is' if ahead == 1 else 'people are'} "
            "waiting before you"
        )  # fmt: skip
        return self._raise(decision, why, queue={"ticket": ticket, "position": position})

    def _raise(
        self, decision: Decision, message: str, queue: dict[str, object] | None = None
    ) -> NoReturn:
        reason = decision.reason if not decision.admitted else "queue"
        self.refused[reason] = self.refused.get(reason, 0) + 1
        seconds = self.options.retry_after
        details: dict[str, object] = {
            "reason": reason, "live": decision.live, "limit": decision.limit,
            "retry_after": seconds,
        }  # fmt: skip
        if queue is not None:
            details["queue"] = queue
        raise ApiError(
            503, "busy", (message or decision.message) + f"; try again in {seconds} s"
            + (" with your queue ticket" if queue else ""),
            headers={"Retry-After": str(seconds)}, details=details,
        )  # fmt: skip

    def _pacing_exhausted(self) -> tuple[str, float] | None:
        """("frames_late" or "frames_repeated", the share) when the live sessions' frames are
        over a limit (judged on enough frames), else ``None``."""
        if self.occupied() == 0:
            # No session left to spoil: the late frames were those of sessions that have ended
            # (a burst that is over), and refusing would turn the next visitor away for nothing.
            return None
        checks = (
            ("frames_late", self.options.max_late_ratio, self.monitor.late_ratio),
            ("frames_repeated", self.options.max_repeat_ratio, self.monitor.repeat_ratio),
        )
        for reason, limit, measure in checks:
            if limit is None:
                continue
            ratio, frames = measure()
            if ratio is not None and frames >= self.options.min_frames and ratio > limit:
                return reason, ratio
        return None

    def _refuse(self, reason: str, message: str, live: int, limit: int) -> Decision:
        return Decision(False, reason, message, live, limit, self.options.retry_after)
