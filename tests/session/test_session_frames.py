"""The video line's late-frame count (what admission and the metrics read): frames nobody could
watch yet (the viewer still connecting) are not late; frames a watching viewer missed are. On
virtual time with the real renderer and motion, so the seconds are exact."""

from __future__ import annotations

import asyncio
from typing import Any

from virtual_time import run_virtual

from talkie.motion import MotionGenerator
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions
from talkie.session.frames import VideoLine
from talkie.session.timeline import MediaClock


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def test_frames_before_the_viewer_connects_are_not_late_and_do_not_pile_up(nova) -> None:  # type: ignore[no-untyped-def]
    renderer = MeshWarpRenderer(nova.rig, options=RenderOptions(size=(320, 180)))

    async def scenario() -> dict[str, int]:
        loop = asyncio.get_running_loop()
        line = VideoLine(
            motion=MotionGenerator(fps=24, seed=1), clock=MediaClock(loop.time), fps=24,
            render_ahead=3, offload=_inline,
        )  # fmt: skip
        rendering = loop.create_task(line.run(renderer))
        await asyncio.sleep(1.5)  # connecting: nobody takes frames yet
        out = {"waiting": len(line._frames)}
        for _ in range(48):  # the viewer takes two seconds of frames, on time
            await line.next_frame()
        out["late_after_connect"] = line.late_frames
        await asyncio.sleep(0.5)  # then stalls for half a second: those frames are missed
        for _ in range(24):
            await line.next_frame()
        out["late_after_stall"] = line.late_frames
        rendering.cancel()
        line.close()
        return out

    out = run_virtual(scenario())
    assert out["waiting"] <= 5  # the stale ones were dropped, not kept (720p: 2.7 MB each)
    assert out["late_after_connect"] == 0
    assert 10 <= out["late_after_stall"] <= 14  # 0.5 s at 24 fps
