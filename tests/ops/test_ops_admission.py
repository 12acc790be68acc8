"""The measurements behind admission and the cost metrics, on given numbers: frame pacing over
the window, the cost of an idle and of a talking session, and what admission decides from
them (a loaded machine cannot be produced on demand in a test; its counters can)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY, generate_latest

from talkie.server.errors import ApiError
from talkie.server.ops.admission import Admission, AdmissionOptions
from talkie.server.ops.metrics import HttpMetrics, OpsCollector, TalkieMetrics
from talkie.server.ops.monitor import MachineCpu, Monitor, SessionCost, SessionSample


@dataclass
class Box:
    """Counters a test moves by hand: sessions' frames, process CPU seconds, the clock."""

    sessions: dict[str, SessionSample] = field(default_factory=dict)
    cpu: float = 0.0
    now: float = 0.0

    def run(
        self, seconds: float, cores: float, fps: float = 24.0, late_share: float = 0.0,
        repeat_share: float = 0.0,
    ):  # fmt: skip
        """``seconds`` pass; the process uses ``cores``; each session hands out frames (some
        late, some on time but repeating the previous picture)."""
        self.now += seconds
        self.cpu += cores * seconds
        for sid, s in self.sessions.items():
            n = round(fps * seconds)
            late = round(n * late_share)
            repeated = round(n * repeat_share)
            self.sessions[sid] = SessionSample(
                sid, s.frames + n - late, s.late_frames + late, s.talking,
                repeated_frames=s.repeated_frames + repeated,
            )  # fmt: skip

    def monitor(self, machine_busy: float | None = None) -> Monitor:
        return Monitor(
            sessions=lambda: list(self.sessions.values()), cpu_time=lambda: self.cpu,
            clock=lambda: self.now, machine=FixedMachine(machine_busy), cores=2,
        )  # fmt: skip


class FixedMachine(MachineCpu):
    def __init__(self, busy: float | None) -> None:
        super().__init__()
        self.busy = busy

    def read(self) -> float | None:
        return self.busy


def admission(box: Box, monitor: Monitor, cap: int = 4, **options: object) -> Admission:
    return Admission(
        monitor=monitor, occupied=lambda: len(box.sessions), max_sessions=lambda: cap,
        options=AdmissionOptions(**options),  # type: ignore[arg-type]
    )  # fmt: skip


def test_costs_of_idle_and_talking_sessions_are_learned_from_samples() -> None:
    box = Box()
    m = box.monitor()
    for _ in range(3):  # the server alone: 0.1 cores
        box.run(2.0, cores=0.1)
        m.sample()
    box.sessions = {"a": SessionSample("a", 0, 0, False), "b": SessionSample("b", 0, 0, False)}
    for _ in range(20):  # two idle sessions: 0.1 + 2 x 0.05
        box.run(2.0, cores=0.2)
        m.sample()
    box.sessions["b"] = SessionSample("b", 0, 0, True)
    for _ in range(20):  # one of them talking: 0.1 + 0.05 + 0.6
        box.run(2.0, cores=0.75)
        m.sample()
    assert m.cost.server == pytest.approx(0.1)
    assert m.cost.idle == pytest.approx(0.05, abs=1e-3)
    assert m.cost.talking == pytest.approx(0.6, abs=1e-3)
    assert m.history[-1].live == 2 and m.history[-1].talking == 1
    assert m.history[-1].cpu_cores == pytest.approx(0.75)


def test_sessions_in_their_own_processes_count_their_own_cpu() -> None:
    """On the process host the web process barely works: a session's cost is the CPU its
    worker reports, counted from its second report (the first holds the worker's start-up)."""
    box = Box()
    m = box.monitor()
    for _ in range(3):  # the server alone: 0.1 cores
        box.run(2.0, cores=0.1)
        m.sample()
    worker_cpu = 5.0  # the model loading of a warm worker, before the session
    box.sessions = {"a": SessionSample("a", 0, 0, True, cpu_seconds=worker_cpu)}
    for _ in range(20):  # the web process: 0.12 cores; the talking session's worker: 0.55
        box.run(2.0, cores=0.12)
        worker_cpu += 0.55 * 2.0
        a = box.sessions["a"]
        box.sessions["a"] = SessionSample("a", a.frames, 0, True, cpu_seconds=worker_cpu)
        m.sample()
    assert m.cost.talking == pytest.approx(0.12 + 0.55 - 0.1, abs=1e-3)
    assert m.history[-1].cpu_cores == pytest.approx(0.67)
    # from its second report on: not the start-up, nor the first interval, which it cannot tell
    assert m.session_cpu_total == pytest.approx(19 * 0.55 * 2.0)
    metrics = TalkieMetrics()
    metrics.registry.register(
        OpsCollector(
            monitor=m, counts=dict, capacity=lambda: 1, max_sessions=lambda: 1, refused=dict
        )  # fmt: skip
    )
    text = generate_latest(metrics.registry).decode()
    assert f"talkie_session_cpu_seconds_total {m.session_cpu_total}" in text


def test_cost_estimates_start_unknown_and_never_go_negative() -> None:
    cost = SessionCost()
    assert (cost.server, cost.idle, cost.talking) == (None, None, None)
    cost.update(0.5, idle=0, talking=0)
    cost.update(0.1, idle=2, talking=0)  # less than the server alone (noise)
    assert cost.idle == 0.0


def test_frame_totals_survive_sessions_that_end() -> None:
    box = Box(sessions={"a": SessionSample("a", 0, 0, False)})
    m = box.monitor()
    box.run(2.0, cores=0.3, late_share=0.25)
    m.sample()
    before = (m.frames_total, m.late_frames_total)
    assert before == (36, 12)
    del box.sessions["a"]  # ended: its counts stay in the totals
    box.sessions["b"] = SessionSample("b", 0, 0, False)
    box.run(2.0, cores=0.3)
    m.sample()
    assert m.frames_total == 36 + 48 and m.late_frames_total == 12


def test_admission_refuses_on_late_frames_and_opens_when_pacing_recovers() -> None:
    box = Box(sessions={"a": SessionSample("a", 0, 0, True)})
    m = box.monitor()
    gate = admission(box, m, min_frames=96, max_late_ratio=0.05)
    box.run(2.0, cores=1.0, late_share=0.2)
    m.sample()
    assert gate.decide().admitted  # 48 frames: too few to judge by
    box.run(2.0, cores=1.0, late_share=0.2)
    m.sample()
    decision = gate.decide()
    assert not decision.admitted and decision.reason == "frames_late"
    assert gate.limit() == 1
    with pytest.raises(ApiError) as refused:
        gate.check()
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "10"
    assert refused.value.details["reason"] == "frames_late"
    assert gate.refused == {"frames_late": 1}
    for _ in range(5):  # five clean samples push the late ones out of the window
        box.run(2.0, cores=1.0)
        m.sample()
    assert gate.decide().admitted
    assert gate.limit() == 4


def test_admission_refuses_while_sessions_repeat_frames_to_keep_up() -> None:
    """Repeated frames come before late ones (the renderer is behind, the frames still on
    time): past ``max_repeat_ratio`` of them the machine is full just the same."""
    box = Box(sessions={k: SessionSample(k, 0, 0, True) for k in "ab"})
    m = box.monitor()
    gate = admission(box, m, min_frames=96, max_late_ratio=0.05, max_repeat_ratio=0.10)
    box.run(4.0, cores=1.5, repeat_share=0.05)  # a few: room for one more
    m.sample()
    assert m.repeat_ratio()[0] == pytest.approx(0.05, abs=0.01)
    assert gate.decide().admitted
    box.run(4.0, cores=1.8, repeat_share=0.3)
    m.sample()
    decision = gate.decide()
    assert not decision.admitted and decision.reason == "frames_repeated"
    assert "repeat" in decision.message and gate.limit() == 2
    assert m.late_ratio()[0] == 0.0 and m.repeated_frames_total == 2 * (5 + 29)
    for _ in range(5):
        box.run(2.0, cores=1.0)
        m.sample()
    assert gate.decide().admitted
    # off: repeats alone never refuse
    box.run(4.0, cores=1.8, repeat_share=0.5)
    m.sample()
    assert admission(box, m, min_frames=96, max_repeat_ratio=None).decide().admitted


def test_late_frames_of_sessions_that_have_ended_refuse_nobody() -> None:
    box = Box(sessions={"a": SessionSample("a", 0, 0, True)})
    m = box.monitor()
    gate = admission(box, m, min_frames=48, max_late_ratio=0.05)
    box.run(4.0, cores=1.0, late_share=0.3)
    m.sample()
    assert gate.decide().reason == "frames_late"
    del box.sessions["a"]  # the burst is over: nobody is left whose frames a newcomer could spoil
    assert gate.decide().admitted
    assert gate.limit() == 4


def test_admission_by_cap_and_by_cpu() -> None:
    box = Box(sessions={k: SessionSample(k, 0, 0, False) for k in "ab"})
    m = box.monitor(machine_busy=0.7)
    full = admission(box, m, cap=2)
    assert full.decide().reason == "max_sessions"
    # CPU is off by default: a busy machine alone refuses nothing
    assert admission(box, m, cap=4).decide().admitted
    m.sample()
    assert admission(box, m, cap=4, cpu_limit=0.9).decide().admitted
    m.cost.talking = 0.6  # one more talking session needs 0.3 of the 2 cores: 0.7 + 0.3 > 0.9
    gate = admission(box, m, cap=4, cpu_limit=0.9)
    assert gate.decide().reason == "cpu"
    assert gate.limit() == 3  # floor(0.9 x 2 / 0.6)


def test_admission_is_tuned_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from talkie.errors import InvalidInputError
    from talkie.server.ops import OpsOptions

    monkeypatch.setenv("TALKIE_ADMISSION_MAX_LATE", "off")
    monkeypatch.setenv("TALKIE_ADMISSION_CPU", "0.85")
    monkeypatch.setenv("TALKIE_ADMISSION_RETRY_AFTER", "30")
    tuned = OpsOptions.from_env().admission
    assert (tuned.max_late_ratio, tuned.cpu_limit, tuned.retry_after) == (None, 0.85, 30)
    monkeypatch.setenv("TALKIE_ADMISSION_CPU", "85%")
    with pytest.raises(InvalidInputError, match="TALKIE_ADMISSION_CPU"):
        OpsOptions.from_env()
    for name in (
        "TALKIE_ADMISSION_MAX_LATE",
        "TALKIE_ADMISSION_CPU",
        "TALKIE_ADMISSION_RETRY_AFTER",
    ):
        monkeypatch.delenv(name)
    assert OpsOptions.from_env().admission == AdmissionOptions()


def test_pacing_is_judged_on_the_sessions_live_now() -> None:
    box = Box(sessions={"a": SessionSample("a", 0, 0, True), "b": SessionSample("b", 0, 0, True)})
    m = box.monitor()
    gate = admission(box, m, min_frames=48, max_late_ratio=0.05)
    box.run(4.0, cores=1.5, late_share=0.25)
    m.sample()
    assert gate.decide().reason == "frames_late"
    del box.sessions["a"], box.sessions["b"]  # the struggling sessions ended
    box.sessions["c"] = SessionSample("c", 0, 0, False)
    box.run(2.0, cores=0.3)
    m.sample()
    ratio, frames = m.late_ratio()
    assert (ratio, frames) == (0.0, 48)  # only the new session's frames count
    assert gate.decide().admitted


def test_each_app_has_its_own_metrics_and_label_values_are_bounded() -> None:
    one, two = TalkieMetrics(), TalkieMetrics()
    sent: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 404})  # type: ignore[operator]

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    for method in ("GET", "BREW", "GET"):
        scope = {"type": "http", "method": method, "path": f"/random/{method}"}
        asyncio.run(HttpMetrics(app, metrics=one)(scope, None, send))  # type: ignore[arg-type]
    text = generate_latest(one.registry).decode()
    assert 'talkie_http_requests_total{method="GET",route="other",status="404"} 2.0' in text
    assert 'talkie_http_requests_total{method="other",route="other",status="404"} 1.0' in text
    assert "BREW" not in text and "/random" not in text
    assert "talkie_http_requests_total{" not in generate_latest(two.registry).decode()
    assert "talkie_http_requests_total" not in generate_latest(REGISTRY).decode()


def test_the_line_keeps_places_forgets_who_left_and_has_an_end() -> None:
    from talkie.server.ops.admission import WaitingLine

    now = [0.0]
    line = WaitingLine(size=2, keep=25.0, hold=15.0, clock=lambda: now[0])
    first = line.join(None)
    second = line.join(None)
    assert first is not None and second is not None
    assert (first[1], second[1]) == (1, 2)
    assert line.join(None) is None  # full
    assert line.join("q_forged") is None  # an unknown ticket is a newcomer
    now[0] = 20.0
    assert line.join(second[0]) == (second[0], 2)  # came back in time: same place
    now[0] = 30.0  # the first did not come back within 25 s: gone
    assert line.join(second[0]) == (second[0], 1)
    line.admit(second[0])
    assert (len(line), line.held()) == (0, 1)
    now[0] = 45.5  # the held slot is released after 15 s
    assert line.held() == 0
