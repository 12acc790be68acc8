"""The conversation's video: frames rendered a little ahead of the playout clock and handed out
at their presentation time.

Motion comes in 4-frame steps; the renderer draws frame k once the clock is within
``render_ahead`` frames of showing it. When speech is placed sooner than the frames already
rendered, or cut, those frames are produced again (``rewind_unseen``: the motion rewinds to the
first frame not yet shown). A frame whose moment has passed is skipped rather than shown late,
so the picture stays on the voice's clock; both count as late frames, from the first frame
handed out on (before it, the viewer is still connecting).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from talkie.messages import VideoFrame
from talkie.motion import MotionGenerator
from talkie.render.base import Renderer
from talkie.session.timeline import MediaClock


class VideoLine:
    """Renders ahead on one clock (``run``) and hands frames out on time (``next_frame``)."""

    def __init__(
        self,
        *,
        motion: MotionGenerator,
        clock: MediaClock,
        fps: float,
        render_ahead: int,
        offload: Callable[..., Awaitable[Any]],
    ) -> None:
        self.motion = motion
        self.clock = clock
        self.period = 1.0 / fps
        self.render_ahead = render_ahead
        self._offload = offload
        self.late_frames = 0
        self.frames_sent = 0
        self.next_render = 0  # index of the next frame to render
        self._frames: collections.deque[VideoFrame] = collections.deque()
        self._frame_ready = asyncio.Event()
        self._rewound = asyncio.Event()
        self._epoch = 0  # bumped whenever frames rendered ahead become invalid
        self._shown = -1  # index of the last frame handed to the transport
        self._closed = False

    async def next_frame(self, lead: float = 0.0) -> VideoFrame:
        """The next frame, ``lead`` seconds before its presentation time (``CancelledError``
        once closed). A frame handed out is shown: a rewind starts after it."""
        while True:
            if self._closed:
                raise asyncio.CancelledError
            if not self._frames:
                self._frame_ready.clear()
                await self._frame_ready.wait()
                continue
            self._drop_stale()
            frame = self._frames[0]
            await self.clock.sleep_until(frame.pts - lead)
            if not self._frames or self._frames[0] is not frame:
                continue  # barge-in or a new answer replaced the frames meanwhile
            self._frames.popleft()
            if self.frames_sent and self.clock.now() - frame.pts > self.period:
                self.late_frames += 1  # handed out more than a frame after its time
            self._shown = frame.index
            self.frames_sent += 1
            return frame

    async def run(self, renderer: Renderer) -> None:
        """Render forever, ``render_ahead`` frames ahead of the clock (a task of the session)."""
        period = self.period
        pending: collections.deque[Any] = collections.deque()
        while True:
            due = (self.next_render - self.render_ahead) * period
            if due > self.clock.now():
                # Sleep until due, but wake at once if a rewind moves the work earlier.
                self._rewound.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._rewound.wait(), due - self.clock.now())
                continue
            if self.motion.frame_index != self.next_render + len(pending):
                pending.clear()  # a rewind happened: motion restarts at next_render
            if not pending:
                if self.motion.frame_index != self.next_render:
                    self.motion.rewind(self.next_render)
                pending.extend(self.motion.next_step())
            face = pending.popleft()
            if face.pts + period < self.clock.now():
                # Overloaded: this frame's moment has passed. Skip it rather than render it late,
                # so the picture stays on the audio's clock instead of drifting behind the voice.
                if self.frames_sent:
                    self.late_frames += 1
                self.next_render = face.index + 1
                continue
            epoch = self._epoch
            image = await self._offload(renderer.render, face.params)
            if epoch != self._epoch:
                pending.clear()
                continue  # rendered for a future that was rewritten while we rendered
            self._frames.append(VideoFrame(image, face.pts, face.index, face.generation))
            self.next_render = face.index + 1
            self._drop_stale()  # nobody takes frames yet (connecting) or the taker stalled
            self._frame_ready.set()

    def _drop_stale(self) -> None:
        """Drop the frames whose moment has passed, but the newest: behind the clock, the
        picture catches up instead of playing late (and frames nobody takes do not pile up).
        They count as late once frames are being taken; before the first one is handed out
        nobody missed them (admission reads late frames as a full machine)."""
        now = self.clock.now()
        while len(self._frames) > 1 and self._frames[0].pts + self.period < now:
            self._frames.popleft()
            if self.frames_sent:
                self.late_frames += 1

    def rewind_unseen(self) -> None:
        """Drop frames rendered ahead but not shown; they will be rendered again (from the
        motion state they started from) with whatever was just scheduled or cut."""
        first_unseen = self._shown + 1
        self._frames.clear()
        self._epoch += 1
        self._rewound.set()
        if self.next_render > first_unseen:
            try:
                self.motion.rewind(first_unseen)
            except ValueError:
                first_unseen = self.motion.frame_index
            self.next_render = first_unseen

    def close(self) -> None:
        self._closed = True
        self._frames.clear()
        self._frame_ready.set()  # a waiting next_frame() wakes up and ends
