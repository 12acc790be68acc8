"""The conversation's video: frames rendered a little ahead of the playout clock and handed out
at their presentation time.

Motion comes in 4-frame steps; the renderer draws frame k once the clock is within
``render_ahead`` frames of showing it. When speech is placed sooner than the frames already
rendered, or cut, those frames are produced again (``rewind_unseen``: the motion rewinds to the
first frame not yet shown). A frame whose moment has passed is skipped rather than shown late,
so the picture stays on the voice's clock; both count as late frames, from the first frame
handed out on (before it, the viewer is still connecting).

A busy machine makes the renderer fall behind in bursts (an answer starting: its frames are
rendered again while the shared voice synthesises it). Before a frame would come late, the line
shows the previous picture once more instead of drawing it (``repeat_when_behind``): motion
drops to 12 fps for a moment, on time and in sync with the voice, and the time saved lets the
next frame be drawn on time. Never two repeats in a row, so overload beyond that still shows as
late frames (admission reads them as a full machine).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

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
        repeat_when_behind: bool = True,
    ) -> None:
        self.motion = motion
        self.clock = clock
        self.period = 1.0 / fps
        self.render_ahead = render_ahead
        self._offload = offload
        self.repeat_when_behind = repeat_when_behind
        self.late_frames = 0
        self.frames_repeated = 0  # shown again instead of drawn: the renderer was behind
        self.frames_sent = 0
        self.next_render = 0  # index of the next frame to render
        self._frames: collections.deque[VideoFrame] = collections.deque()
        self._frame_ready = asyncio.Event()
        self._rewound = asyncio.Event()
        self._epoch = 0  # bumped whenever frames rendered ahead become invalid
        self._shown = -1  # index of the last frame handed to the transport
        self._shown_image: np.ndarray | None = None
        self._shown_repeated = False
        # the latest picture in presentation order: (frame index, image, was it a repeat)
        self._previous: tuple[int, np.ndarray, bool] | None = None
        self._lead = 0.0  # how long before its time the transport takes a frame
        self._render_wall: collections.deque[float] = collections.deque(maxlen=8)  # draw times
        self._closed = False

    async def next_frame(self, lead: float = 0.0) -> VideoFrame:
        """The next frame, ``lead`` seconds before its presentation time (``CancelledError``
        once closed). A frame handed out is shown: a rewind starts after it."""
        while True:
            if self._closed:
                raise asyncio.CancelledError
            self._lead = lead
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
            self._shown_repeated = frame.image is self._shown_image  # a repeat is the same array
            self._shown_image = frame.image
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
            repeat = self._repeatable(face.index, face.pts)
            if repeat is not None:
                image, repeated = repeat, True
                self.frames_repeated += 1
            else:
                epoch = self._epoch
                started = self.clock.now()
                image = await self._offload(renderer.render, face.params)
                self._render_wall.append(self.clock.now() - started)
                if epoch != self._epoch:
                    pending.clear()
                    continue  # rendered for a future that was rewritten while we rendered
                repeated = False
            self._previous = (face.index, image, repeated)
            self._frames.append(VideoFrame(image, face.pts, face.index, face.generation))
            self.next_render = face.index + 1
            self._drop_stale()  # nobody takes frames yet (connecting) or the taker stalled
            self._frame_ready.set()

    def _repeatable(self, index: int, pts: float) -> np.ndarray | None:
        """The previous picture, when frame ``index`` should show it again instead of being
        drawn: the transport takes the frame sooner than a draw has recently taken (drawing it
        now would likely make it late), the frame before it was drawn, not repeated, and a
        viewer is watching (while connecting, nobody misses a frame)."""
        previous = self._previous
        if not self.repeat_when_behind or previous is None or not self.frames_sent:
            return None
        previous_index, image, repeated = previous
        if repeated or previous_index >= index:
            return None
        # Time enough to draw it if the slowest of the last few draws would make it: on a busy
        # machine a draw takes 2-5 frame periods of wall time, not its 15 ms of CPU.
        margin = max(self.period, max(self._render_wall, default=0.0))
        if pts - self._lead - self.clock.now() >= margin:
            return None  # on schedule
        return image

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
        # what is on screen is the picture before the frames produced again
        shown = self._shown_image
        self._previous = None if shown is None else (self._shown, shown, self._shown_repeated)
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
