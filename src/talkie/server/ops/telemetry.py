"""OpenTelemetry traces: one span per finished turn, a child span per stage.

A turn's stages are already measured on the session's media clock (``TurnFinished.trace``:
``speech_end``, ``asr_final``, ``brain_first_token``, ``first_clause``, ``tts_first_audio``,
``endpoint``, ``first_frame_sent``, ``answer_start``); the spans are made from those marks when
the turn ends, placed on the wall clock, so tracing adds nothing to the turn itself.

- span ``talkie.turn``: from the first mark to the end of the turn; attributes
  ``talkie.session_id``, ``talkie.character_id``, ``talkie.tenant``, ``talkie.turn``,
  ``talkie.latency_s`` (end of speech -> first answer audio), ``talkie.interrupted``,
  ``talkie.typed``; status ERROR with the message when the brain failed; each tool call is a
  span event (name, kind, ok, elapsed_ms: never arguments or results).
- child span ``talkie.<stage>`` per stage: from the previous stage's mark to this one.

Export: OTLP over HTTP (JSON encoding) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set or an endpoint is given; otherwise no span is
made at all. The provider belongs to the app (not the process-wide global), so two servers in
one process, or tests, never mix their spans.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from talkie import __version__
from talkie.session.events import TurnFinished
from talkie.session.trace import STAGES

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
NS = 1_000_000_000


def otlp_endpoint(configured: str | None = None) -> str | None:
    """Where spans go: the configured URL, else the standard OpenTelemetry variables."""
    if configured:
        return configured
    for name in ENDPOINT_VARIABLES:
        if os.environ.get(name, "").strip():
            return os.environ[name].strip()
    return None


def otlp_processor(endpoint: str) -> SpanProcessor:
    """A batching OTLP/HTTP (JSON) exporter. A bare base URL gets ``/v1/traces`` appended, as
    the OpenTelemetry specification says for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

    url = endpoint
    if not url.rstrip("/").endswith("/v1/traces"):
        url = url.rstrip("/") + "/v1/traces"
    return BatchSpanProcessor(OTLPSpanExporter(endpoint=url))


class TurnTracer:
    """Makes the spans of finished turns (``record``). ``processors``: where spans go (tests
    pass an in-memory exporter's processor); none and no OTLP endpoint: tracing is off."""

    def __init__(
        self, *, endpoint: str | None = None, processors: tuple[SpanProcessor, ...] = ()
    ) -> None:
        chosen = list(processors)
        url = otlp_endpoint(endpoint)
        if url is not None:
            chosen.append(otlp_processor(url))
            log.info("OpenTelemetry: exporting turn traces to %s", url)
        self.enabled = bool(chosen)
        self.provider: TracerProvider | None = None
        if self.enabled:
            resource = Resource.create({"service.name": "talkie", "service.version": __version__})
            self.provider = TracerProvider(resource=resource)
            for processor in chosen:
                self.provider.add_span_processor(processor)
            self._tracer = self.provider.get_tracer("talkie.session", __version__)

    def record(
        self, event: TurnFinished, *, session_id: str, character_id: str, tenant: str
    ) -> None:
        """The spans of one finished turn (times from its marks, on the wall clock)."""
        if not self.enabled:
            return
        marks = {k: float(v) for k, v in (event.trace.get("marks") or {}).items()}
        # Media time -> wall clock: the event was made at media time ``t``, wall ``ended_at``.
        offset = event.ended_at - event.t

        def wall_ns(media: float) -> int:
            return int((media + offset) * NS)

        ordered = [(stage, marks[stage]) for stage in STAGES if stage in marks]
        start = min([m for _, m in ordered], default=event.t)
        # a turn without marks (a typed message the greeting cut) starts when it was made
        start_ns = wall_ns(start) if ordered else int(event.started_at * NS)
        end_ns = max(int(event.ended_at * NS), *(wall_ns(m) for _, m in ordered), start_ns)
        attributes: dict[str, Any] = {
            "talkie.session_id": session_id, "talkie.character_id": character_id,
            "talkie.tenant": tenant, "talkie.turn": event.turn,
            "talkie.interrupted": event.interrupted, "talkie.typed": event.typed,
        }  # fmt: skip
        latency = event.trace.get("latency")
        if isinstance(latency, int | float):
            attributes["talkie.latency_s"] = float(latency)
        turn = self._tracer.start_span("talkie.turn", start_time=start_ns, attributes=attributes)
        error = str(event.trace.get("error") or "")
        if error:
            turn.set_status(Status(StatusCode.ERROR, error[:200]))
        for call in event.trace.get("tools") or []:
            if isinstance(call, dict):
                turn.add_event(
                    "tool_call",
                    {k: call[k] for k in ("name", "kind", "ok", "elapsed_ms") if k in call},
                    timestamp=end_ns,
                )
        context = set_span_in_context(turn)
        previous = start
        for stage, at in ordered:
            child = self._tracer.start_span(
                f"talkie.{stage}", context=context, start_time=wall_ns(previous),
                attributes={"talkie.stage": stage, "talkie.turn": event.turn,
                            "talkie.session_id": session_id},
            )  # fmt: skip
            child.end(end_time=max(wall_ns(previous), wall_ns(at)))
            previous = max(previous, at)
        turn.end(end_time=end_ns)

    def shutdown(self) -> None:
        """Send what is buffered and stop (at server shutdown)."""
        if self.provider is not None:
            self.provider.shutdown()
