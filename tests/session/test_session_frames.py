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


def _taking_frames(
    nova: Any, render_s: float, *, repeat: bool, seconds: float = 4.0
) -> dict[str, Any]:
    """A viewer takes ``seconds`` of frames (40 ms ahead, as the H.264 track does) while each
    render takes ``render_s`` of (virtual) time: a machine that busy, with the real renderer."""
    renderer = MeshWarpRenderer(nova.rig, options=RenderOptions(size=(320, 180)))

    async def busy(fn: Any, *args: Any) -> Any:
        await asyncio.sleep(render_s)
        return fn(*args)

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        line = VideoLine(
            motion=MotionGenerator(fps=24, seed=1), clock=MediaClock(loop.time), fps=24,
            render_ahead=3, offload=busy, repeat_when_behind=repeat,
        )  # fmt: skip
        rendering = loop.create_task(line.run(renderer))
        frames = []
        while loop.time() < seconds:
            frame = await line.next_frame(lead=0.04)
            frames.append((frame, loop.time()))
        rendering.cancel()
        line.close()
        return {"frames": frames, "late": line.late_frames, "repeated": line.frames_repeated}

    return run_virtual(scenario())


def test_a_renderer_behind_shows_the_previous_picture_again_instead_of_coming_late(nova) -> None:  # type: ignore[no-untyped-def]
    # 55 ms a frame cannot keep 24 fps (41.7 ms), but every other frame can.
    out = _taking_frames(nova, 0.055, repeat=True)
    frames = out["frames"]
    assert len(frames) >= 90
    # From the first quarter second on (the line starts with nothing rendered ahead): on time.
    late = [f.index for f, taken in frames if f.pts > 0.25 and taken - (f.pts - 0.04) > 1 / 24]
    assert late == []
    repeats = [i for i in range(1, len(frames)) if frames[i][0].image is frames[i - 1][0].image]
    assert 0.25 * len(frames) <= len(repeats) <= 0.55 * len(frames)
    assert out["repeated"] - 3 <= len(repeats) <= out["repeated"]  # (3 rendered ahead, untaken)
    assert not any(b == a + 1 for a, b in zip(repeats, repeats[1:], strict=False))  # >= 12 fps
    # the frame rate stays 24: one frame every period, in order, none skipped
    steady = [f.index for f, _ in frames if f.pts > 0.25]
    assert steady == list(range(steady[0], steady[0] + len(steady)))

    # Without repeats the same machine makes frames late or skips them.
    assert _taking_frames(nova, 0.055, repeat=False)["late"] >= 0.2 * len(frames)


def test_a_renderer_on_time_draws_every_frame(nova) -> None:  # type: ignore[no-untyped-def]
    out = _taking_frames(nova, 0.02, repeat=True, seconds=2.0)
    assert out["late"] == 0
    # past the start (nothing is rendered ahead yet when the viewer takes the first frames)
    images = [id(f.image) for f, _ in out["frames"] if f.pts > 0.25]
    assert len(images) >= 40 and len(set(images)) == len(images)
