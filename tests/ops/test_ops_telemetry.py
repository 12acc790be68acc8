"""OpenTelemetry spans of a finished turn: in memory (the SDK's exporter), and over OTLP/HTTP
to a tiny collector in the test that receives the POST, chosen by the standard environment
variable as an operator would set it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from talkie.server.ops.telemetry import TurnTracer, otlp_endpoint
from talkie.session.events import TurnFinished

MARKS = {
    "speech_end": 10.0, "asr_final": 10.3, "brain_first_token": 10.5, "first_clause": 10.6,
    "tts_first_audio": 10.75, "endpoint": 10.8, "first_frame_sent": 10.9, "answer_start": 10.95,
}  # fmt: skip


def turn(error: str = "", tools: list[dict[str, Any]] | None = None) -> TurnFinished:
    # made at media time 12.0 = wall 1000012.0: the marks sit at wall 1000010.0 ...
    return TurnFinished(
        t=12.0, turn=3, user_text="hi", said="hello", started_at=1_000_009.0,
        ended_at=1_000_012.0,
        trace={"marks": MARKS, "latency": 0.95, "error": error, "tools": tools or []},
    )  # fmt: skip


def test_a_turn_is_one_span_with_a_child_per_stage() -> None:
    exporter = InMemorySpanExporter()
    tracer = TurnTracer(processors=(SimpleSpanProcessor(exporter),))
    tool = {"name": "lookup", "kind": "webhook", "ok": True, "elapsed_ms": 80.0, "reason": ""}
    tracer.record(
        turn(error="the LLM is down", tools=[tool]), session_id="se_1", character_id="ch_1",
        tenant="alpha",
    )  # fmt: skip
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "talkie.turn")
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "talkie.session_id": "se_1", "talkie.character_id": "ch_1", "talkie.tenant": "alpha",
        "talkie.turn": 3, "talkie.interrupted": False, "talkie.typed": False,
        "talkie.latency_s": 0.95,
    }  # fmt: skip
    assert root.start_time == 1_000_010 * 10**9
    assert root.end_time == 1_000_012 * 10**9
    assert root.status.status_code == StatusCode.ERROR
    assert root.events[0].name == "tool_call"
    assert root.events[0].attributes is not None
    assert root.events[0].attributes["name"] == "lookup"
    children = [s for s in spans if s is not root]
    assert [c.name for c in children] == [f"talkie.{m}" for m in MARKS]
    durations = {c.name: (c.end_time - c.start_time) / 1e9 for c in children}  # type: ignore[operator]
    assert durations["talkie.asr_final"] == pytest.approx(0.3, abs=1e-6)
    assert durations["talkie.brain_first_token"] == pytest.approx(0.2, abs=1e-6)
    assert durations["talkie.speech_end"] == 0
    for c in children:
        assert c.parent is not None and c.parent.span_id == root.context.span_id


def test_tracing_is_off_without_an_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    tracer = TurnTracer()
    assert not tracer.enabled and tracer.provider is None
    tracer.record(turn(), session_id="se_1", character_id="ch_1", tenant="t")  # no-op


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def collector() -> Iterator[str]:
    Collector.received = []
    httpd = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_spans_reach_an_otlp_collector_named_by_the_environment(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    assert otlp_endpoint() == collector
    tracer = TurnTracer()
    assert tracer.enabled
    tracer.record(turn(), session_id="se_9", character_id="ch_9", tenant="beta")
    tracer.shutdown()  # flushes the batch
    assert Collector.received, "nothing was posted"
    path, content_type, body = Collector.received[0]
    assert path == "/v1/traces"
    assert content_type == "application/json"
    request = json.loads(body)
    resource = request["resourceSpans"][0]
    service = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
    assert service["service.name"] == {"stringValue": "talkie"}
    spans = [s for scope in resource["scopeSpans"] for s in scope["spans"]]
    names = sorted(s["name"] for s in spans)
    assert names == sorted(["talkie.turn", *(f"talkie.{m}" for m in MARKS)])
    root = next(s for s in spans if s["name"] == "talkie.turn")
    attributes = {a["key"]: a["value"] for a in root["attributes"]}
    assert attributes["talkie.session_id"] == {"stringValue": "se_9"}
    assert attributes["talkie.tenant"] == {"stringValue": "beta"}
    child = next(s for s in spans if s["name"] == "talkie.asr_final")
    assert child["parentSpanId"] == root["spanId"]
    assert int(child["endTimeUnixNano"]) - int(child["startTimeUnixNano"]) == 300_000_000
