"""Prometheus metrics of one server (its own ``CollectorRegistry``, never the global one: two
apps in one process, as in the tests, keep separate counts).

Names (all prefixed ``talkie_``):

- ``sessions{state}``: sessions by state in the database (pending, live, ended);
  ``sessions_live``: live in this server; ``sessions_live_by_activity{activity}``: idle or in a
  turn; ``sessions_capacity``: sessions admission allows now; ``sessions_max``: the fixed cap;
  ``admission_refused_total{reason}``; ``admission_waiting``: people in the line.
- ``turn_latency_seconds``: end of the user's speech -> first answer audio (histogram);
  ``turn_stage_seconds{stage}``: end of speech -> each stage (histogram); ``asr_seconds``,
  ``llm_first_token_seconds``, ``tts_first_audio_seconds``: the time of each provider in the
  turn; ``tool_seconds{kind}``, ``tool_calls_total{kind,ok}``; ``turns_total{interrupted}``;
  ``errors_total{stage}``: errors the page was told of, by what failed (``llm``: the brain;
  ``tts``: speech synthesis; ``asr``: hearing; ``video``: the frames; ``session``: anything
  else).
- ``video_frames_total``, ``video_late_frames_total``: frames handed out by every session, and
  those late or skipped (frame pacing); ``video_repeated_frames_total``: those that showed the
  previous picture again because the renderer was behind (on time, at a reduced frame rate).
- ``process_cpu_cores``: CPU use (cores) over the last sample of this process and of the
  sessions in their own worker processes;
  ``machine_cpu_busy_ratio``; ``session_cpu_cores{activity}``: measured CPU cost of ONE idle
  session and of one talking session (above the server's own ``server_cpu_cores``);
  ``session_cpu_seconds_total``: CPU of sessions that run in their own process.
- ``http_requests_total{method,route,status}``, ``http_request_seconds{method,route}``.
- ``process_threads``; plus the process collector (``process_*``: memory, open files) under
  no prefix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkie.server.ops.monitor import Monitor
from talkie.session.events import SessionError, SessionEvent, TurnFinished
from talkie.session.trace import STAGES

LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)
STAGE_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Label values come from these sets only: a client inventing methods or paths must not be able
# to create time series without end.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# what an error event can name as failed (``SessionError.stage``); anything else is "session"
ERROR_STAGES = ("llm", "tts", "asr", "video", "session")
# component times: (metric, from mark, to mark)
COMPONENTS = (
    ("asr", "speech_end", "asr_final"),
    ("llm_first_token", "asr_final", "brain_first_token"),
    ("tts_first_audio", "first_clause", "tts_first_audio"),
)


class TalkieMetrics:
    """The metrics of one app. ``observe_event`` takes the sessions' events; ``gauges`` is
    read at every scrape (see ``OpsCollector``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        self.turn_latency = Histogram(
            "talkie_turn_latency_seconds", "End of user speech -> first answer audio",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.stage = Histogram(
            "talkie_turn_stage_seconds", "End of user speech -> each stage of the turn",
            ["stage"], buckets=STAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.components = {
            name: Histogram(
                f"talkie_{name}_seconds",
                f"{name.replace('_', ' ')} time in a turn ({start} -> {end})",
                buckets=STAGE_BUCKETS,
                registry=r,
            )  # fmt: skip
            for name, start, end in COMPONENTS
        }
        self.tool_seconds = Histogram(
            "talkie_tool_seconds", "Tool call time", ["kind"], buckets=STAGE_BUCKETS, registry=r
        )
        self.tool_calls = Counter("talkie_tool_calls", "Tool calls", ["kind", "ok"], registry=r)
        self.turns = Counter("talkie_turns", "Finished turns", ["interrupted"], registry=r)
        self.errors = Counter("talkie_errors", "Errors by stage", ["stage"], registry=r)
        self.http_requests = Counter(
            "talkie_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "talkie_http_request_seconds", "HTTP request time (to the end of the response)",
            ["method", "route"], buckets=HTTP_BUCKETS, registry=r,
        )  # fmt: skip
        for stage in ERROR_STAGES:  # present from the start: a rate of 0 is news too
            self.errors.labels(stage)

    def observe_event(self, event: SessionEvent) -> None:
        if isinstance(event, SessionError):
            stage = event.stage if event.stage in ERROR_STAGES else "session"
            self.errors.labels(stage).inc()
        if not isinstance(event, TurnFinished):
            return
        trace = event.trace
        self.turns.labels(str(event.interrupted).lower()).inc()
        latency = trace.get("latency")
        if isinstance(latency, int | float):
            self.turn_latency.observe(max(0.0, float(latency)))
        marks = {k: float(v) for k, v in (trace.get("marks") or {}).items()}
        base = marks.get("speech_end")
        if base is not None:
            for stage in STAGES[1:]:
                if stage in marks:
                    self.stage.labels(stage).observe(max(0.0, marks[stage] - base))
        for name, start, end in COMPONENTS:
            if start in marks and end in marks:
                self.components[name].observe(max(0.0, marks[end] - marks[start]))
        for call in trace.get("tools") or []:
            if not isinstance(call, dict):
                continue
            kind = str(call.get("kind") or "unknown")[:32]
            self.tool_calls.labels(kind, str(bool(call.get("ok"))).lower()).inc()
            if isinstance(call.get("elapsed_ms"), int | float):
                self.tool_seconds.labels(kind).observe(max(0.0, call["elapsed_ms"] / 1000.0))

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(method, route).observe(seconds)


class OpsCollector(Collector):
    """Gauges read at scrape time: sessions by state (``counts()``: the database), the live
    sessions and capacity, frame pacing and CPU (the ``Monitor``), refusals."""

    def __init__(
        self,
        *,
        monitor: Monitor,
        counts: Callable[[], dict[str, int]],
        capacity: Callable[[], int],
        max_sessions: Callable[[], int],
        refused: Callable[[], dict[str, int]],
        waiting: Callable[[], int] = lambda: 0,
    ) -> None:
        self.waiting = waiting
        self.monitor = monitor
        self.counts = counts
        self.capacity = capacity
        self.max_sessions = max_sessions
        self.refused = refused

    def describe(self) -> Iterable[Metric]:
        return []  # collected at scrape time only (the database is not read on register)

    def collect(self) -> Iterable[Metric]:
        m = self.monitor
        states = GaugeMetricFamily("talkie_sessions", "Sessions by state", labels=["state"])
        for state, n in sorted(self.counts().items()):
            states.add_metric([state], n)
        yield states
        latest = m.latest
        talking = sum(1 for s in latest if s.talking)
        yield GaugeMetricFamily("talkie_sessions_live", "Live sessions here", value=len(latest))
        by = GaugeMetricFamily(
            "talkie_sessions_live_by_activity", "Live sessions idle or in a turn",
            labels=["activity"],
        )  # fmt: skip
        by.add_metric(["idle"], len(latest) - talking)
        by.add_metric(["talking"], talking)
        yield by
        yield GaugeMetricFamily(
            "talkie_sessions_capacity", "Sessions admission allows now", value=self.capacity()
        )
        yield GaugeMetricFamily(
            "talkie_sessions_max", "The fixed session cap", value=self.max_sessions()
        )
        yield GaugeMetricFamily(
            "talkie_admission_waiting", "People waiting in line for a session",
            value=self.waiting(),
        )  # fmt: skip
        refused = CounterMetricFamily(
            "talkie_admission_refused", "Sessions refused by admission", labels=["reason"]
        )
        for reason, n in sorted(self.refused().items()):
            refused.add_metric([reason], n)
        yield refused
        yield CounterMetricFamily(
            "talkie_video_frames", "Video frames handed out", value=m.frames_total
        )
        yield CounterMetricFamily(
            "talkie_video_late_frames", "Video frames late or skipped (their moment had passed)",
            value=m.late_frames_total,
        )  # fmt: skip
        yield CounterMetricFamily(
            "talkie_video_repeated_frames",
            "Video frames that showed the previous picture again (the renderer was behind)",
            value=m.repeated_frames_total,
        )
        last = m.history[-1] if m.history else None
        yield GaugeMetricFamily(
            "talkie_process_cpu_cores",
            "CPU cores used over the last sample (this process and sessions in their own)",
            value=last.cpu_cores if last else 0.0,
        )  # fmt: skip
        if last is not None and last.machine_busy is not None:
            yield GaugeMetricFamily(
                "talkie_machine_cpu_busy_ratio", "Share of the machine's CPU in use",
                value=last.machine_busy,
            )  # fmt: skip
        cost = GaugeMetricFamily(
            "talkie_session_cpu_cores", "Measured CPU cores ONE session costs, by activity",
            labels=["activity"],
        )  # fmt: skip
        for activity, value in (("idle", m.cost.idle), ("talking", m.cost.talking)):
            if value is not None:
                cost.add_metric([activity], value)
        yield cost
        if m.cost.server is not None:
            yield GaugeMetricFamily(
                "talkie_server_cpu_cores", "CPU cores the server uses with no session live",
                value=m.cost.server,
            )  # fmt: skip
        # threads of this process: flat over a soak, or something leaks them
        yield GaugeMetricFamily(
            "talkie_process_threads", "Threads of this process", value=threading.active_count()
        )
        yield CounterMetricFamily(
            "talkie_session_cpu_seconds", "CPU of sessions in their own processes",
            value=m.session_cpu_total,
        )  # fmt: skip


class HttpMetrics:
    """ASGI middleware: counts requests by method, route template and status, and times them.
    The route is the matched template (``/v1/sessions/{session_id}``), never the raw path: ids
    would make every session its own time series."""

    def __init__(self, app: ASGIApp, *, metrics: TalkieMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"
            self.metrics.observe_http(
                method, route_of(scope), status, time.perf_counter() - started
            )


def route_of(scope: dict[str, Any] | Scope) -> str:
    """The matched route's template, ``static`` for the web client's files, else ``other``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    if scope.get("endpoint") is not None or scope.get("app_root_path") is not None:
        return "static"
    return "other"
