"""Operations over a real server and real WebRTC clients (aiortc; fake conversations that keep
the conversation's late-frame counter): Prometheus metrics after a real turn, read with
Prometheus's own text parser; the turn's OpenTelemetry spans; who may scrape; the measured cost
of an idle session; admission refusing a new session while the live ones drop frames."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_client import ClientSession, connect  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402
from talkie.server.ops import AdmissionOptions, OpsOptions  # noqa: E402
from talkie.server.ops.telemetry import TurnTracer  # noqa: E402
from talkie.session.trace import STAGES  # noqa: E402

SCRAPE_TOKEN = "scrape-secret-for-tests"


class PacedConversation(FakeConversation):
    """The fake conversation, with the real one's ``late_frames`` counter: every
    ``late_every``-th frame counts as late (``None``: none is); and every 8th frame handed out
    repeats the previous picture (``repeated_frames``)."""

    late_every: int | None = None

    @property
    def late_frames(self) -> int:
        every = type(self).late_every
        return self._video_index // every if every else 0

    @property
    def repeated_frames(self) -> int:
        return self._video_index // 8


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    ops = OpsOptions(
        metrics_token=SCRAPE_TOKEN, sample_seconds=0.25,
        # 20 %: the other tests' sessions (an eighth of their frames late, plus what a loaded
        # CI box adds) must not close admission for the test after them; the admission test
        # makes half of its frames late.
        admission=AdmissionOptions(
            max_late_ratio=0.2, max_repeat_ratio=0.2, min_frames=24, retry_after=7
        ),
    )  # fmt: skip
    options = ServerOptions(max_sessions=3, ops=ops)
    with LiveServer(options=options, conversation_factory=PacedConversation) as live:
        yield live


@pytest.fixture(autouse=True)
def _frames_on_time() -> Iterator[None]:
    """Each test says how late its sessions' frames are; none carries over to the next."""
    PacedConversation.late_every = None
    yield
    PacedConversation.late_every = None


def scrape(server: LiveServer, token: str = SCRAPE_TOKEN) -> dict[tuple[str, tuple], float]:
    """``/metrics`` parsed by Prometheus's parser: {(sample name, sorted labels): value}."""
    r = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def dashboard(server: LiveServer) -> dict[str, Any]:
    with server.admin() as admin:
        r = admin.get("/v1/admin/ops")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def open_session(server: LiveServer) -> ClientSession:
    session = await connect(server.url, "astronaut", microphone=False)
    await asyncio.wait_for(session.channel_open.wait(), 15)
    return session


def test_metrics_and_spans_after_a_real_turn(server: LiveServer) -> None:
    PacedConversation.late_every = 8
    exporter = InMemorySpanExporter()
    server.app.state.services.ops.tracer = TurnTracer(processors=(SimpleSpanProcessor(exporter),))

    async def scenario() -> tuple[str, dict[tuple[str, tuple], float]]:
        session = await open_session(server)
        try:
            session.send({"type": "text", "text": "How are you?"})
            await session.wait_event(lambda e: e.get("type") == "turn", timeout=15)
            await session.wait_video(24, timeout=20)
            return session.session_id, await asyncio.to_thread(scrape, server)
        finally:
            await session.close()

    session_id, m = asyncio.run(asyncio.wait_for(scenario(), 90))
    # the turn: latency and each stage, as the conversation traced them (0.22 s)
    assert m[("talkie_turn_latency_seconds_count", ())] == 1
    assert m[("talkie_turn_latency_seconds_sum", ())] == pytest.approx(0.22, abs=1e-3)
    assert m[("talkie_turn_latency_seconds_bucket", (("le", "0.25"),))] == 1
    for stage in STAGES[1:]:
        assert m[("talkie_turn_stage_seconds_count", (("stage", stage),))] == 1, stage
    assert m[("talkie_turn_stage_seconds_sum", (("stage", "answer_start"),))] == pytest.approx(
        0.22, abs=1e-3
    )
    assert m[("talkie_asr_seconds_sum", ())] == pytest.approx(0.02, abs=1e-3)
    assert m[("talkie_llm_first_token_seconds_sum", ())] == pytest.approx(0.03, abs=1e-3)
    assert m[("talkie_tts_first_audio_seconds_sum", ())] == pytest.approx(0.09, abs=1e-3)
    assert m[("talkie_turns_total", (("interrupted", "false"),))] == 1
    assert m[("talkie_errors_total", (("stage", "llm"),))] == 0
    # sessions by state, frame pacing, HTTP
    assert m[("talkie_sessions", (("state", "live"),))] == 1
    assert m[("talkie_sessions_live", ())] == 1
    frames = m[("talkie_video_frames_total", ())]
    late = m[("talkie_video_late_frames_total", ())]
    print(f"\nmetrics: {frames:.0f} frames sent, {late:.0f} late")
    assert frames >= 24
    assert 0 < late <= frames / 8 + 2
    repeated = m[("talkie_video_repeated_frames_total", ())]
    assert 0 < repeated <= frames / 8 + 2
    post = (("method", "POST"), ("route", "/v1/sessions"), ("status", "201"))
    assert m[("talkie_http_requests_total", post)] >= 1
    offer = (("method", "POST"), ("route", "/v1/sessions/{session_id}/offer"), ("status", "200"))
    assert m[("talkie_http_requests_total", offer)] >= 1
    assert m[("talkie_sessions_max", ())] == 3
    assert ("process_resident_memory_bytes", ()) in m
    assert m[("talkie_process_threads", ())] >= 2

    # the turn's spans: one per turn, a child per stage, in order, inside the turn
    spans = exporter.get_finished_spans()
    turns = [s for s in spans if s.name == "talkie.turn"]
    assert len(turns) == 1
    turn = turns[0]
    assert turn.attributes is not None
    assert turn.attributes["talkie.session_id"] == session_id
    assert turn.attributes["talkie.character_id"] == "astronaut"
    assert turn.attributes["talkie.turn"] == 1
    assert turn.attributes["talkie.latency_s"] == pytest.approx(0.22)
    children = [s for s in spans if s.parent is not None]
    assert [s.name for s in children] == [f"talkie.{stage}" for stage in STAGES]
    for child in children:
        assert child.parent is not None and child.parent.span_id == turn.context.span_id
        assert child.context.trace_id == turn.context.trace_id
        assert turn.start_time <= child.start_time <= child.end_time <= turn.end_time
    answer = children[-1]
    assert answer.end_time is not None and turn.start_time is not None
    assert (answer.end_time - turn.start_time) / 1e9 == pytest.approx(0.22, abs=2e-3)

    # after the session: ended in the database, and counters never go down
    def ended() -> dict[tuple[str, tuple], float] | None:
        after = scrape(server)
        return after if after[("talkie_sessions", (("state", "live"),))] == 0 else None

    after = wait_for(ended, 20, "the session to end")
    assert after[("talkie_sessions", (("state", "ended"),))] >= 1
    assert after[("talkie_video_frames_total", ())] >= frames
    assert after[("talkie_video_late_frames_total", ())] >= late


def test_errors_are_counted_by_what_failed(server: LiveServer) -> None:
    """A session reporting a failed provider (``error`` events, as the real conversation sends
    them: tests/session/test_session_failures.py) shows in ``talkie_errors_total{stage}``;
    a stage nobody knows counts as "session" (no new time series from a session's words)."""
    before = scrape(server)

    async def scenario() -> None:
        session = await open_session(server)
        try:
            for stage in ("tts", "asr", "asr", "made-up"):
                session.send({"type": "text", "text": f"fail:{stage}"})
            await session.wait_event(lambda e: e.get("stage") == "made-up", timeout=15)
        finally:
            await session.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    after = scrape(server)

    def added(stage: str) -> float:
        key = ("talkie_errors_total", (("stage", stage),))
        return after[key] - before[key]

    assert {s: added(s) for s in ("tts", "asr", "llm", "video", "session")} == {
        "tts": 1, "asr": 2, "llm": 0, "video": 0, "session": 1,
    }  # fmt: skip
    assert not [k for k in after if k[0] == "talkie_errors_total" and "made-up" in str(k)]


def test_metrics_need_the_scrape_token_or_an_admin_key(server: LiveServer) -> None:
    url = server.url + "/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    with server.admin() as admin:
        created = admin.post("/v1/keys", json={"name": "app", "scopes": ["sessions"]})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert httpx.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code == 403
        assert admin.get("/metrics").status_code == 200
    r = httpx.get(url, headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert r.status_code == 200
    # the scrape token opens nothing else
    ops = httpx.get(server.url + "/v1/admin/ops", headers={"Authorization": f"Bearer {secret}"})
    assert ops.status_code == 403
    bad = httpx.get(
        server.url + "/v1/admin/ops", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_key"


def test_an_idle_sessions_cost_is_measured_and_reported(server: LiveServer) -> None:
    PacedConversation.late_every = None

    async def scenario() -> dict[str, Any]:
        session = await open_session(server)
        try:
            # idle: no turn for IDLE_AFTER seconds, then samples with one idle session
            def measured() -> dict[str, Any] | None:
                d = dashboard(server)
                idle = d["capacity"]["live"] == 1 and d["capacity"]["talking"] == 0
                return d if idle and d["cost"]["idle_session_cores"] is not None else None

            found: dict[str, Any] = await asyncio.to_thread(
                wait_for, measured, 40, "an idle session's measured cost"
            )
            found["metrics"] = await asyncio.to_thread(scrape, server)
            return found
        finally:
            await session.close()

    d = asyncio.run(asyncio.wait_for(scenario(), 90))
    cost, m = d["cost"], d["metrics"]
    print(
        f"\nidle session: {cost['idle_session_cores']:.3f} cores above the server's own "
        f"{cost['server_cores']:.3f}"
    )
    assert cost["server_cores"] is not None  # measured first, with no session live
    assert 0.0 <= cost["idle_session_cores"] <= cost["cores"]
    assert m[("talkie_session_cpu_cores", (("activity", "idle"),))] == pytest.approx(
        cost["idle_session_cores"], abs=0.5
    )
    assert m[("talkie_sessions_live_by_activity", (("activity", "idle"),))] == 1
    assert m[("talkie_sessions_live_by_activity", (("activity", "talking"),))] == 0
    assert ("talkie_server_cpu_cores", ()) in m


def test_admission_refuses_while_live_sessions_drop_frames(server: LiveServer) -> None:
    PacedConversation.late_every = 2  # half of the frames late: no headroom

    def create() -> httpx.Response:
        with server.admin() as admin:
            return admin.post("/v1/sessions", json={"character_id": "astronaut"})

    async def scenario() -> tuple[httpx.Response, dict[str, Any]]:
        session = await open_session(server)
        try:

            def exhausted() -> dict[str, Any] | None:
                d = dashboard(server)
                late = d["pacing"]["late_ratio"]
                return (
                    d if late is not None and late > 0.2 and d["pacing"]["frames"] >= 24 else None
                )

            d = await asyncio.to_thread(wait_for, exhausted, 30, "late frames to be measured")
            return await asyncio.to_thread(create), d
        finally:
            await session.close()

    refused, d = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "7"
    error = refused.json()["error"]
    assert error["code"] == "busy"
    assert error["reason"] == "frames_late"
    assert error["live"] == 1 and error["limit"] == 1
    assert "try again in 7 s" in error["message"]
    assert d["capacity"]["limit"] == 1  # the capacity the admin page plots
    m = scrape(server)
    assert m[("talkie_admission_refused_total", (("reason", "frames_late"),))] >= 1
    # once the session is gone and its late frames are out of the window, sessions start again
    PacedConversation.late_every = None
    wait_for(lambda: create().status_code == 201, 30, "admission to open again")
