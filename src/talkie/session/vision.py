"""The character's eyes in a live session: the user's camera and shared screen.

The transport asks ``wants(source)`` for each decoded frame and hands over only the ones wanted
(``push``): at most ``fps`` per source, and none while the previous one is still being looked at,
so the newest frame wins and nothing queues. Analysis runs on worker threads shared by every
session (presence: ~10-20 ms a frame; OCR: 1.5-2 s, one thread for the whole server, at a lower
priority so that rendering and encoding the outgoing video always come first).

What it sees drives the conversation through its host: someone appears -> the character looks
at them and greets them; they leave -> it stops talking and waits, greeting them when they are
back; the character's gaze follows the user's face; a hand raised while the character talks
stops it (a wish to speak). The screen's text goes to the brain (``Sight``) and to the speech
recogniser's hotwords. Frames are never stored: the latest one is kept in memory (as JPEG,
only when the brain can look at pictures) until the next replaces it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from talkie.brain.base import Turn
from talkie.messages import Presence, ScreenText, SeenFrame, Sight
from talkie.session.events import SessionEvent, VisionObserved
from talkie.vision.presence import PresenceDetector
from talkie.vision.screen import ScreenReader, changed, thumbnail

if TYPE_CHECKING:
    from talkie.session.conversation import Conversation

log = logging.getLogger(__name__)

SOURCES = ("camera", "screen")


def _nice_thread() -> None:
    # Linux threads are scheduled as tasks: a niced OCR thread yields to the media threads.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


_LOOK = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="talkie-look")
_READ = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="talkie-ocr", initializer=_nice_thread
)


@dataclass(frozen=True)
class VisionOptions:
    """``fps``: frames looked at per second and source (2-5 keeps presence prompt and the CPU
    low); ``leave_s``: how long nobody must be seen before the user counts as gone;
    ``greet``: greet a person who appears (``greeting`` / ``welcome_back``);
    ``gaze_gain``: how far the character's eyes turn for a face at the picture's edge."""

    enabled: bool = True
    fps: float = 3.0
    leave_s: float = 1.5
    greet: bool = True
    greeting: str = "Oh, hello there! Now I can see you."
    welcome_back: str = "Welcome back!"
    greet_cooldown_s: float = 20.0
    gaze_gain: float = 0.5
    image_side: int = 768  # a picture sent to an LLM is at most this wide or high
    hand_raise_stops: bool = True


class VisionHost(Protocol):
    """What the eyes need from the conversation."""

    def now(self) -> float: ...

    def emit(self, event: SessionEvent) -> None: ...

    def look_at(self, target: tuple[float, float] | None) -> None: ...

    def presence_changed(self, present: bool, *, first: bool) -> None: ...

    def wants_to_speak(self, reason: str) -> None: ...

    def screen_words(self, lines: tuple[str, ...]) -> None: ...


class SessionVision:
    """Per-session state of the character's eyes (see the module docstring)."""

    def __init__(
        self,
        host: VisionHost,
        *,
        options: VisionOptions | None = None,
        keep_image: bool = False,
        presence: Callable[[], PresenceDetector] = PresenceDetector,
        reader: Callable[[], ScreenReader] = ScreenReader,
    ) -> None:
        self.host = host
        self.options = options or VisionOptions()
        self.keep_image = keep_image  # the brain can look at pictures: keep the latest as JPEG
        self._make_presence = presence
        self._make_reader = reader
        self._presence_detector: PresenceDetector | None = None
        self._reader: ScreenReader | None = None
        self._on: dict[str, bool] = dict.fromkeys(SOURCES, False)
        self._busy: dict[str, bool] = dict.fromkeys(SOURCES, False)
        self._last: dict[str, float] = dict.fromkeys(SOURCES, -1e9)
        self._presence: Presence | None = None
        self._present = False
        self._absent_since: float | None = None
        self._seen_anyone = False
        self._last_greeting = -1e9
        self._looking: bool | None = None
        self._hand = False
        self._screen: ScreenText | None = None
        self._screen_pending: np.ndarray | None = None  # thumbnail of a change not yet stable
        self._jpeg: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.frames_seen: dict[str, int] = dict.fromkeys(SOURCES, 0)
        self.look_ms: list[float] = []  # presence time per frame (bench and stats)

    # -- the transport's side --

    def wants(self, source: str) -> bool:
        """Whether a frame of ``source`` arriving now would be looked at."""
        if not self.options.enabled or source not in SOURCES or self._busy[source]:
            return False
        if not self._on[source]:
            return False  # the page said it is off: frames still in flight are not looked at
        return self.host.now() - self._last[source] >= 1.0 / self.options.fps

    def push(self, frame: SeenFrame) -> None:
        """Look at ``frame`` (one the transport was told it ``wants``); returns at once."""
        if not self.wants(frame.source):
            return
        self._busy[frame.source] = True
        self._last[frame.source] = self.host.now()
        self.frames_seen[frame.source] += 1
        task = asyncio.get_running_loop().create_task(self._look(frame), name="talkie-vision")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("vision failed", exc_info=task.exception())

    def handle_event(self, event: dict[str, Any]) -> None:
        """The page's ``{"type": "vision", "camera": bool, "screen": bool}`` (either key)."""
        inputs = {k: event.get(k) for k in SOURCES if k in event}
        if not inputs or not all(isinstance(v, bool) for v in inputs.values()):
            raise ValueError("'vision' needs boolean 'camera' and/or 'screen'")
        self.set_inputs(camera=inputs.get("camera"), screen=inputs.get("screen"))

    def set_inputs(self, *, camera: bool | None = None, screen: bool | None = None) -> None:
        """The page switched its camera or screen share on or off."""
        for source, on in (("camera", camera), ("screen", screen)):
            if on is None or on == self._on[source]:
                continue
            self._on[source] = on
            if not on:
                self._jpeg.pop(source, None)
                self.host.emit(VisionObserved(t=self.host.now(), source=source, what="off"))
                if source == "camera":
                    self._presence, self._present, self._absent_since = None, False, None
                    self.host.look_at(None)
                else:
                    self._screen, self._screen_pending = None, None
                    self.host.screen_words(())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        self._jpeg.clear()

    # -- what the brain gets --

    def sight(self, prefer: str = "screen") -> Sight:
        """What the character can see now (a copy: later frames do not change it); its picture
        is the ``prefer``red input's when both are on."""
        other = "camera" if prefer == "screen" else "screen"
        image_source = prefer if prefer in self._jpeg else other
        return Sight(
            pts=self.host.now(), camera=self._on["camera"], screen=self._on["screen"],
            presence=self._presence if self._on["camera"] else None,
            screen_text=self._screen if self._on["screen"] else None,
            jpeg=self._jpeg.get(image_source), jpeg_source=image_source,
        )  # fmt: skip

    def context(self, user_text: str) -> Turn | None:
        """What the character sees, as a context turn for one answer to ``user_text`` (None
        when camera and screen are off). The picture goes along only when the words are about
        what the user shows."""
        about_camera = _ABOUT_CAMERA.search(user_text) and not _ABOUT_SCREEN.search(user_text)
        sight = self.sight(prefer="camera" if about_camera else "screen")
        if not (sight.camera or sight.screen):
            return None
        if sight.jpeg is not None and not refers_to_view(user_text):
            sight = dataclasses.replace(sight, jpeg=None)
        return Turn("context", sight.describe(), sight=sight)

    # -- looking --

    async def _look(self, frame: SeenFrame) -> None:
        loop = asyncio.get_running_loop()
        try:
            if frame.source == "camera":
                presence = await loop.run_in_executor(_LOOK, self._detect, frame)
                if self._on["camera"]:
                    self._observe_presence(presence, frame.pts)
            else:
                await self._read_screen(frame)
            if self.keep_image and self._on[frame.source]:
                side = self.options.image_side
                self._jpeg[frame.source] = await loop.run_in_executor(
                    _LOOK, _jpeg, frame.image, side
                )
        finally:
            self._busy[frame.source] = False

    def _detect(self, frame: SeenFrame) -> Presence:
        if self._presence_detector is None:
            self._presence_detector = self._make_presence()
        started = time.perf_counter()
        presence = self._presence_detector.detect(frame.image, frame.pts)
        self.look_ms.append((time.perf_counter() - started) * 1000)
        del self.look_ms[:-200]
        return presence

    def _observe_presence(self, presence: Presence, arrived: float) -> None:
        host, now = self.host, self.host.now()
        self._presence = presence
        delay = round(now - arrived, 3)
        if presence.present:
            self._absent_since = None
            gain = self.options.gaze_gain
            # The camera sees the user unmirrored: a user on the camera's left is on the
            # character's right as it faces them (and on the viewer's right of the screen).
            host.look_at((gain * 2 * (0.5 - presence.x), gain * 2 * (0.5 - presence.y) * 0.6))
            if not self._present:
                self._present = True
                first = not self._seen_anyone
                self._seen_anyone = True
                host.emit(VisionObserved(t=now, source="camera", what="appeared",
                                         faces=presence.faces, delay=delay))  # fmt: skip
                if self.options.greet and now - self._last_greeting > self.options.greet_cooldown_s:
                    self._last_greeting = now
                    host.presence_changed(True, first=first)
            if presence.looking is not None and presence.looking != self._looking:
                self._looking = presence.looking
                what = "looking" if presence.looking else "looked_away"
                host.emit(VisionObserved(t=now, source="camera", what=what, faces=presence.faces))
            if presence.hand_raised and not self._hand:
                host.emit(VisionObserved(t=now, source="camera", what="hand_raised",
                                         faces=presence.faces, delay=delay))  # fmt: skip
                if self.options.hand_raise_stops:
                    host.wants_to_speak("hand raised")
            self._hand = presence.hand_raised
        else:
            self._hand = False
            if self._absent_since is None:
                self._absent_since = arrived
            if self._present and arrived - self._absent_since >= self.options.leave_s:
                self._present = False
                self._looking = None
                host.look_at(None)
                host.emit(VisionObserved(t=now, source="camera", what="left", delay=delay))
                host.presence_changed(False, first=False)

    async def _read_screen(self, frame: SeenFrame) -> None:
        # Read only a picture that changed and then held still for one sample: a page being
        # scrolled or typed into is read once, when it settles, not at every frame.
        loop = asyncio.get_running_loop()
        thumb = await loop.run_in_executor(_LOOK, thumbnail, frame.image)
        reader = self._reader
        if reader is not None and reader.cached is not None and not reader.needs_reading(
            frame.image
        ):
            self._screen_pending = None
            if self._screen is None:  # shared again, the same picture: the reading holds
                self._publish(reader.cached, frame.pts)
            return
        if self._screen_pending is None or changed(self._screen_pending, thumb):
            self._screen_pending = thumb
            if self._screen is not None:
                return  # wait for it to settle
        self._screen_pending = None
        text = await loop.run_in_executor(_READ, self._ocr, frame)
        self._publish(text, frame.pts)

    def _publish(self, text: ScreenText, arrived: float) -> None:
        if not self._on["screen"]:
            return
        old = self._screen.lines if self._screen is not None else None
        self._screen = text
        if text.lines != old:
            now = self.host.now()
            delay = round(now - arrived, 3)
            self.host.emit(VisionObserved(t=now, source="screen", what="screen_text",
                                          lines=len(text.lines), delay=delay))  # fmt: skip
            self.host.screen_words(text.lines)

    def _ocr(self, frame: SeenFrame) -> ScreenText:
        if self._reader is None:
            self._reader = self._make_reader()
        return self._reader.read(frame.image, frame.pts)



class ConversationEyes:
    """The conversation as the eyes' host: what seeing someone or something makes it do."""

    def __init__(self, conversation: Conversation, options: VisionOptions) -> None:
        self.conversation = conversation
        self.options = options

    def now(self) -> float:
        return self.conversation.clock.now()

    def emit(self, event: SessionEvent) -> None:
        self.conversation.emit(event)

    def look_at(self, target: tuple[float, float] | None) -> None:
        self.conversation.motion.look_at(target)

    def presence_changed(self, present: bool, *, first: bool) -> None:
        conv = self.conversation
        reply = conv.active
        if present:
            # Greet only into a quiet moment: never over the user or over its own answer.
            if reply is None and not conv.hearing.speaking:
                conv.say(self.options.greeting if first else self.options.welcome_back)
        elif reply is not None and reply.audible(self.now()):
            conv.interrupt(reply, "user left")  # nobody to talk to: stop and wait

    def wants_to_speak(self, reason: str) -> None:
        reply = self.conversation.active
        if reply is not None and reply.audible(self.now()):
            self.conversation.interrupt(reply, reason)

    def screen_words(self, lines: tuple[str, ...]) -> None:
        self.conversation.set_screen_words(lines)


_SHOWN = re.compile(
    r"\b(?:screen|see|seeing|look|looking|showing|show|shown|this|these|that error|here|"
    r"picture|image|camera|wearing|holding|hold|read|say|says|line|window|page|code|error)\b",
    re.IGNORECASE,
)


_ABOUT_CAMERA = re.compile(
    r"\b(?:me|my face|camera|wearing|holding|hold|hand|i look|behind me)\b", re.IGNORECASE
)
_ABOUT_SCREEN = re.compile(r"\b(?:screen|line|error|code|page|window|says?|read)\b", re.IGNORECASE)


def refers_to_view(text: str) -> bool:
    """The user's words are about what they show ("what does this error say?", "can you see
    me?", "read me the second line"): the answer should look at the latest picture."""
    return bool(_SHOWN.search(text))


def accepts_images(brain: Any) -> bool:
    """The brain (or the one a wrapper such as the guardrails holds) takes pictures."""
    while brain is not None:
        if getattr(brain, "accepts_images", False) is True:
            return True
        brain = getattr(brain, "inner", None)
    return False


def _jpeg(image: np.ndarray, side: int) -> bytes:
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    return bytes(data.tobytes())
