"""Operations: metrics, traces, admission control, the admin page's data and exports.

``Ops`` is the one object the rest of the server talks to (``svc.ops``):

- ``ops.admit()`` before a session is created (503 + Retry-After when there is no headroom);
- ``ops.on_event(session, event)`` for every event of every live session (metrics, spans,
  whether the session is idle or in a turn);
- ``ops.start()`` / ``await ops.stop()`` with the app (the 2 s sampler; flushing spans).

The live sessions are read through ``sessions`` (a function returning ``SessionSample``s): the
in-process registry by default (``registry_sessions``); a session host that runs sessions
elsewhere passes its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from talkie.errors import InvalidInputError
from talkie.server.ops.admission import Admission, AdmissionOptions, Decision
from talkie.server.ops.metrics import HttpMetrics, OpsCollector, TalkieMetrics
from talkie.server.ops.monitor import IDLE_AFTER, SAMPLE_SECONDS, Monitor, SessionSample
from talkie.server.ops.telemetry import TurnTracer
from talkie.session.events import (
    SessionEvent,
    StateChanged,
    TurnFinished,
    UserTranscript,
)
from talkie.store import SessionRecord, Store

__all__ = ["AdmissionOptions", "HttpMetrics", "Ops", "OpsOptions", "registry_sessions"]

log = logging.getLogger(__name__)
RECENT_TURNS = 200  # latencies kept for the admin page


@dataclass(frozen=True)
class OpsOptions:
    """``metrics_token``: a bearer token that may read ``/metrics`` (besides admin keys;
    default ``$TALKIE_METRICS_TOKEN``). ``otlp_endpoint``: where OpenTelemetry spans go
    (default ``$OTEL_EXPORTER_OTLP_ENDPOINT``; none: no spans)."""

    admission: AdmissionOptions = field(default_factory=AdmissionOptions)
    metrics_token: str | None = None
    otlp_endpoint: str | None = None
    sample_seconds: float = SAMPLE_SECONDS

    @classmethod
    def from_env(cls) -> OpsOptions:
        """The defaults, with admission tuned by ``$TALKIE_ADMISSION_MAX_LATE`` (share of late
        frames, e.g. ``0.05``, or ``off``), ``$TALKIE_ADMISSION_MAX_REPEATED`` (share of frames
        that repeated the previous picture, e.g. ``0.1``), ``$TALKIE_ADMISSION_CPU`` (busy share
        of the machine, e.g. ``0.85``, or ``off``) and ``$TALKIE_ADMISSION_RETRY_AFTER``
        (seconds)."""
        base = AdmissionOptions()
        admission = AdmissionOptions(
            max_late_ratio=_share("TALKIE_ADMISSION_MAX_LATE", base.max_late_ratio),
            max_repeat_ratio=_share("TALKIE_ADMISSION_MAX_REPEATED", base.max_repeat_ratio),
            min_frames=base.min_frames,
            cpu_limit=_share("TALKIE_ADMISSION_CPU", base.cpu_limit),
            retry_after=int(_number("TALKIE_ADMISSION_RETRY_AFTER", base.retry_after, 1, 3600)),
        )  # fmt: skip
        return cls(admission=admission)


def _share(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("off", "none", "0"):
        return None
    return _number(name, default, 0.0, 1.0) if raw else default


def _number(name: str, default: float | None, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        assert default is not None
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise InvalidInputError(f"${name}: {raw[:40]!r} is not a number from {low:g} to {high:g}")
    return value


class _Activity:
    """Whether a live session is in a turn, from its events."""

    def __init__(self) -> None:
        self.state = "listening"
        self.changed = time.monotonic()

    def talking(self, now: float) -> bool:
        return self.state != "listening" or now - self.changed < IDLE_AFTER


def registry_sessions(registry: Any, activity: Callable[[str], bool]) -> list[SessionSample]:
    """The live sessions' counters, as their hosts report them (``HostedSession.stats``):
    frames the transport sent, and the conversation's own count of frames late or skipped
    (``late_frames``; 0 for one that does not keep it). A worker process reports its
    session's counters every ``STATS_EVERY`` seconds (``talkie.server.hosts``)."""
    samples = []
    for peer in registry.peers():
        stats = peer.stats()
        late = stats.get("late_frames") or 0
        repeated = stats.get("repeated_frames") or 0
        cpu = stats.get("cpu_seconds")
        samples.append(
            SessionSample(
                session_id=peer.session_id, frames=int(stats.get("video_frames") or 0),
                late_frames=int(late) if isinstance(late, int | float) else 0,
                talking=activity(peer.session_id),
                repeated_frames=int(repeated) if isinstance(repeated, int | float) else 0,
                cpu_seconds=float(cpu) if isinstance(cpu, int | float) else None,
            )
        )  # fmt: skip
    return samples


class Ops:
    def __init__(
        self,
        *,
        store: Store,
        registry: Any,
        max_sessions: Callable[[], int],
        options: OpsOptions | None = None,
        sessions: Callable[[], list[SessionSample]] | None = None,
        tracer: TurnTracer | None = None,
    ) -> None:
        self.options = opts = options or OpsOptions()
        self.store = store
        self.registry = registry
        self._activity: dict[str, _Activity] = {}
        source = sessions or (lambda: registry_sessions(registry, self.is_talking))
        self.monitor = Monitor(sessions=source)
        self.admission = Admission(
            monitor=self.monitor, occupied=self._occupied, max_sessions=max_sessions,
            options=opts.admission,
        )  # fmt: skip
        self.monitor.limit = self.admission.limit
        self.metrics = TalkieMetrics()
        self._counts: dict[str, int] = {}
        self.metrics.registry.register(
            OpsCollector(
                monitor=self.monitor, counts=lambda: dict(self._counts),
                capacity=self.admission.limit, max_sessions=max_sessions,
                waiting=lambda: len(self.admission.line),
                refused=lambda: dict(self.admission.refused),
            )
        )  # fmt: skip
        self.tracer = tracer or TurnTracer(endpoint=opts.otlp_endpoint)
        self.turns: deque[dict[str, Any]] = deque(maxlen=RECENT_TURNS)
        self._samplers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    # -- hooks --

    def admit(self, queue_ticket: str | None = None) -> Decision:
        """Before creating a session: raises ``ApiError(503)`` (Retry-After, the place in the
        line) without room. ``queue_ticket``: the ticket of an earlier refusal."""
        return self.admission.check(queue_ticket)

    def on_event(self, session: SessionRecord, event: SessionEvent) -> None:
        """Every event of every live session (called on the event loop; cheap)."""
        if isinstance(event, StateChanged | UserTranscript):
            activity = self._activity.setdefault(session.id, _Activity())
            if isinstance(event, StateChanged):
                activity.state = event.state
            activity.changed = time.monotonic()
        self.metrics.observe_event(event)
        if isinstance(event, TurnFinished):
            self.turns.append({
                "at": event.ended_at, "session_id": session.id, "turn": event.turn,
                "latency": event.trace.get("latency"), "interrupted": event.interrupted,
                "relative": _relative(event.trace.get("marks") or {}),
            })  # fmt: skip
            try:
                self.tracer.record(
                    event, session_id=session.id, character_id=session.character_id,
                    tenant=session.tenant,
                )  # fmt: skip
            except Exception:  # tracing must never cost a turn
                log.exception("recording the turn's spans failed")

    def is_talking(self, session_id: str) -> bool:
        activity = self._activity.get(session_id)
        return activity is not None and activity.talking(time.monotonic())

    # -- lifecycle --

    def start(self) -> None:
        """Start sampling on the running loop. One app may be served by several loops in turn
        (tests open a second client on the same app): each gets its own sampler."""
        loop = asyncio.get_running_loop()
        if loop not in self._samplers:
            self._samplers[loop] = loop.create_task(
                self._sample_forever(), name="talkie-ops-sampler"
            )

    async def stop(self) -> None:
        task = self._samplers.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._samplers:  # the last loop serving the app: send the buffered spans
            await asyncio.to_thread(self.tracer.shutdown)

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.sample_seconds)
            try:
                self.sample()
            except Exception:
                log.exception("sampling the sessions failed")

    def sample(self) -> None:
        """One sample (the sampler calls it every 2 s; tests call it directly)."""
        self.monitor.sample()
        live = {s.session_id for s in self.monitor.latest}
        for session_id in list(self._activity):
            if session_id not in live:
                del self._activity[session_id]

    # -- reading --

    async def scrape(self) -> bytes:
        """The Prometheus text exposition (the database is read in a worker thread)."""
        from prometheus_client import generate_latest

        from talkie.store.export import count_sessions_by_status

        self.monitor.count_frames()  # on the loop: the sessions' counters are the loop's
        self._counts = await asyncio.to_thread(count_sessions_by_status, self.store)
        return await asyncio.to_thread(generate_latest, self.metrics.registry)

    def dashboard(self) -> dict[str, Any]:
        """What the admin page plots (and the newest numbers)."""
        m = self.monitor
        latest = m.count_frames()
        late, frames = m.late_ratio()
        return {
            "now": time.time(),
            "sample_seconds": self.options.sample_seconds,
            "capacity": {
                "live": len(latest), "talking": sum(1 for s in latest if s.talking),
                "limit": self.admission.limit(), "max": self.admission.max_sessions(),
                "admission": self.admission.decide().to_json(),
                "waiting": len(self.admission.line), "held": self.admission.line.held(),
            },
            "pacing": {"late_ratio": late, "repeat_ratio": m.repeat_ratio()[0], "frames": frames},
            "cost": {"server_cores": m.cost.server, "idle_session_cores": m.cost.idle,
                     "talking_session_cores": m.cost.talking, "cores": m.cores},
            "samples": [p.to_json() for p in m.history],
            "turns": list(self.turns),
            "sessions": [
                {"session_id": s.session_id, "frames": s.frames, "late_frames": s.late_frames,
                 "talking": s.talking}
                for s in latest
            ],
        }  # fmt: skip

    def _occupied(self) -> int:
        reserved = getattr(self.registry, "_reserved", 0)
        return len(self.registry) + (reserved if isinstance(reserved, int) else 0)


def _relative(marks: dict[str, Any]) -> dict[str, float]:
    base = marks.get("speech_end")
    if not isinstance(base, int | float):
        return {}
    return {k: round(float(v) - base, 4) for k, v in marks.items() if isinstance(v, int | float)}
