"""A session started on a busy machine gets smaller, fewer frames and says so; its voice and
ears are untouched. Real conversation (product parts); only the machine's load is given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from session_harness import make_conversation, running, wait_for

from talkie.render.budget import MachineLoad, VideoBudget

pytestmark = pytest.mark.asyncio


def _load(tmp_path: Path, busy: float) -> MachineLoad:
    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0 0 0 0 0 0 0\n")  # one reading: the load average decides
    return MachineLoad(stat_path=stat, loadavg=lambda: busy, cores=2)


async def test_busy_machine_lowers_the_new_sessions_video_not_its_voice(  # type: ignore[no-untyped-def]
    nova, tmp_path: Path
) -> None:
    conv = make_conversation(nova, video_budget=VideoBudget(load=_load(tmp_path, 1.75)))
    assert conv.video.reduced and conv.fps == 12.0
    assert conv.options.size == conv.video.size == (640, 360)
    async with running(conv, keep_frames=True) as pulled:
        # The greeting is spoken (voice and lips as always) while the video is lowered.
        await wait_for(pulled, lambda p: p.of_type("reply"), timeout=60)
        await wait_for(pulled, lambda p: len(p.video_pts) >= 24, timeout=30)
        lowered = pulled.of_type("video_lowered")
        assert lowered and lowered[0]["width"] == 640 and lowered[0]["fps"] == 12.0
        assert "busy" in lowered[0]["reason"]
        image = next(iter(pulled.frames.values()))
        assert image.shape == (360, 640, 3)
        ticks = np.asarray(pulled.video_pts) * 12.0
        assert np.allclose(ticks, np.round(ticks)), "frames sit on a 12 fps media clock"
        await wait_for(pulled, lambda p: p.first_audio_at_or_after(0.0) is not None, timeout=30)


async def test_idle_machine_keeps_full_video(nova, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conv = make_conversation(nova, greet=False, video_budget=VideoBudget(load=_load(tmp_path, 0.2)))
    assert not conv.video.reduced and conv.fps == 24.0 and conv.options.size == (1280, 720)
    async with running(conv) as pulled:
        await wait_for(pulled, lambda p: len(p.video_pts) >= 6, timeout=30)
        assert not pulled.of_type("video_lowered")
