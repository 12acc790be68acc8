"""What video a new session gets on a busy machine (talkie.render.budget)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkie.render.budget import (
    LADDER,
    MachineLoad,
    VideoBudget,
    VideoQuality,
    choose_quality,
    session_cost,
    video_budget_from_env,
)

FULL = VideoQuality((1280, 720), 24.0)


def _choose(busy: float, requested: VideoQuality = FULL) -> VideoQuality:
    return choose_quality(requested, busy_cores=busy, cores=2, full_cost=0.45, headroom=0.9)


def test_an_idle_machine_gives_full_quality() -> None:
    for busy in (0.0, 0.5, 1.3):
        q = _choose(busy)
        assert q == FULL and not q.reduced


def test_busier_machines_give_smaller_then_fewer_frames() -> None:
    got = [_choose(busy) for busy in (1.3, 1.45, 1.55, 1.7, 2.0, 5.0)]
    costs = [session_cost(q.size, q.fps, full_cost=0.45) for q in got]
    assert costs == sorted(costs, reverse=True), "never more video for a busier machine"
    assert got[1].size == (960, 540) and got[1].fps == 24.0 and got[1].reduced
    assert got[-1].size == (640, 360) and got[-1].fps == 12.0, "the cheapest step, not refused"
    assert "busy" in got[-1].reason
    # Every step offered is on the ladder.
    assert all((q.size, q.fps) in LADDER for q in got)


def test_never_more_than_asked_for() -> None:
    small = VideoQuality((640, 360), 24.0)
    assert _choose(0.0, small) == small
    lowered = _choose(1.75, small)
    assert lowered.size == (640, 360) and lowered.fps == 12.0
    # Nothing on the ladder is below this: it stays as asked.
    tiny = VideoQuality((320, 180), 12.0)
    assert _choose(9.0, tiny) == tiny


def test_session_cost_scales_with_pixels_per_second() -> None:
    full = session_cost((1280, 720), 24.0, full_cost=0.45)
    assert full == pytest.approx(0.45)
    assert session_cost((1280, 720), 12.0, full_cost=0.45) < full
    assert session_cost((640, 360), 12.0, full_cost=0.45) > 0.2 * 0.45  # the ears stay


def _stat(path: Path, busy: int, idle: int) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")


def test_machine_load_reads_busy_cores_from_proc_stat(tmp_path: Path) -> None:
    stat, now = tmp_path / "stat", [100.0]
    _stat(stat, busy=1000, idle=1000)
    load = MachineLoad(stat_path=stat, clock=lambda: now[0], loadavg=lambda: 0.7, cores=2)
    # Right after the first reading there is no window yet: the load average stands in.
    assert load.busy_cores() == pytest.approx(0.7)
    now[0] += 2.0
    _stat(stat, busy=1000 + 300, idle=1000 + 100)  # 3/4 of the ticks busy
    assert load.busy_cores() == pytest.approx(1.5)
    now[0] += 0.1  # too soon for a new window: the last figure
    _stat(stat, busy=1000 + 300, idle=1000 + 500)
    assert load.busy_cores() == pytest.approx(1.5)
    now[0] += 60.0  # a stale window says nothing about now
    assert load.busy_cores() == pytest.approx(0.7)


def test_machine_load_without_proc_stat_uses_the_load_average(tmp_path: Path) -> None:
    load = MachineLoad(stat_path=tmp_path / "missing", loadavg=lambda: 9.0, cores=2)
    assert load.busy_cores() == 2.0  # capped at the cores
    bad = tmp_path / "bad"
    bad.write_text("intr 1 2 3\n")
    assert MachineLoad(stat_path=bad, loadavg=lambda: 0.3, cores=2).busy_cores() == 0.3


def test_budget_plans_from_the_machine_load(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    _stat(stat, busy=0, idle=0)
    busy = MachineLoad(stat_path=stat, loadavg=lambda: 1.9, cores=2)
    assert VideoBudget(load=busy).plan(FULL).reduced
    idle = MachineLoad(stat_path=stat, loadavg=lambda: 0.1, cores=2)
    assert VideoBudget(load=idle).plan(FULL) == FULL


def test_the_environment_turns_it_on_and_it_is_off_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TALKIE_VIDEO_BUDGET", "1")
    assert isinstance(video_budget_from_env(), VideoBudget)
    monkeypatch.setenv("TALKIE_VIDEO_BUDGET", "0")
    assert video_budget_from_env() is None
    monkeypatch.delenv("TALKIE_VIDEO_BUDGET")
    assert video_budget_from_env() is None
