"""The session's eyes with the real models: frames sampled (newest wins), someone appearing,
looking away and leaving, the gaze target following them, the screen read once it settles.
The host records what the eyes make the conversation do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from vision_scenes import empty_room, placed

from talkie.messages import SeenFrame
from talkie.quality.screens import make_screen
from talkie.session.events import SessionEvent, VisionObserved
from talkie.session.vision import SessionVision, VisionOptions, refers_to_view


class Host:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.events: list[SessionEvent] = []
        self.gaze: list[tuple[float, float] | None] = []
        self.presence: list[tuple[bool, bool]] = []
        self.wishes: list[str] = []
        self.words: list[tuple[str, ...]] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def emit(self, event: SessionEvent) -> None:
        self.events.append(event)

    def look_at(self, target: tuple[float, float] | None) -> None:
        self.gaze.append(target)

    def presence_changed(self, present: bool, *, first: bool) -> None:
        self.presence.append((present, first))

    def wants_to_speak(self, reason: str) -> None:
        self.wishes.append(reason)

    def screen_words(self, lines: tuple[str, ...]) -> None:
        self.words.append(lines)

    def seen(self, what: str) -> list[VisionObserved]:
        return [e for e in self.events if isinstance(e, VisionObserved) and e.what == what]


async def feed(
    eyes: SessionVision, host: Host, source: str, image: np.ndarray, seconds: float, fps: float = 15
) -> int:
    """Offer frames at ``fps`` as a transport would; returns how many the eyes took."""
    taken = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if eyes.wants(source):
            eyes.push(SeenFrame(source, image, host.now()))
            taken += 1
        await asyncio.sleep(1 / fps)
    return taken


async def settle(eyes: SessionVision) -> None:
    while any(eyes._busy.values()):
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_someone_appears_is_followed_looks_away_and_leaves(
    render_person: Callable[..., Any],
) -> None:
    host = Host()
    eyes = SessionVision(host, options=VisionOptions(fps=4, leave_s=0.6))
    eyes.set_inputs(camera=True)
    room = empty_room()
    assert await feed(eyes, host, "camera", room, 1.0) <= 5  # ~4 per second, never more
    assert not host.seen("appeared")

    await feed(eyes, host, "camera", placed(render_person(), left=True), 1.5)
    await settle(eyes)
    appeared = host.seen("appeared")
    assert len(appeared) == 1 and appeared[0].faces == 1
    assert host.presence == [(True, True)]
    # On the camera's left = on the user's right: the character looks to the viewer's right.
    left_gaze = [g for g in host.gaze if g is not None][-1]
    assert left_gaze[0] > 0.05
    await feed(eyes, host, "camera", placed(render_person(), left=False), 1.0)
    await settle(eyes)
    right_gaze = [g for g in host.gaze if g is not None][-1]
    assert right_gaze[0] < -0.05
    sight = eyes.sight()
    assert sight.camera and sight.presence is not None and sight.presence.present

    await feed(eyes, host, "camera", render_person(yaw=25.0), 1.0)
    await settle(eyes)
    assert host.seen("looked_away")

    await feed(eyes, host, "camera", room, 1.6)
    await settle(eyes)
    assert len(host.seen("left")) == 1
    assert host.gaze[-1] is None  # nobody to look at: the gaze roams again
    assert host.presence[-1] == (False, False)
    assert "nobody is in view" in eyes.sight().describe()

    eyes.set_inputs(camera=False)
    assert host.seen("off") and eyes.sight().presence is None
    await eyes.close()


@pytest.mark.asyncio
async def test_the_screen_is_read_once_it_settles_and_its_words_become_hotwords() -> None:
    host = Host()
    eyes = SessionVision(host, options=VisionOptions(fps=5))
    eyes.set_inputs(screen=True)
    rng = np.random.default_rng(3)
    first, second = make_screen(rng, lines=4), make_screen(rng, lines=4)
    await feed(eyes, host, "screen", first.image, 0.5)
    await settle(eyes)
    read = host.seen("screen_text")
    assert len(read) == 1 and read[0].lines >= 3
    lines = eyes.sight().screen_text.lines  # type: ignore[union-attr]
    assert sum(line in lines for line in first.lines) >= 3
    assert host.words[-1] == lines
    # The same picture again: no new reading.
    await feed(eyes, host, "screen", first.image, 1.0)
    await settle(eyes)
    assert len(host.seen("screen_text")) == 1
    # A new picture is read once it has held still for a sample.
    await feed(eyes, host, "screen", second.image, 1.5)
    await settle(eyes)
    assert len(host.seen("screen_text")) == 2
    assert sum(line in eyes.sight().screen_text.lines for line in second.lines) >= 3  # type: ignore[union-attr]
    context = eyes.context("read me the second line")
    assert context is not None and context.sight is not None and context.role == "context"
    eyes.set_inputs(screen=False)
    assert host.words[-1] == () and eyes.context("hello") is None
    await eyes.close()


@pytest.mark.asyncio
async def test_a_picture_is_kept_for_an_image_brain_only_when_words_refer_to_it() -> None:
    host = Host()
    eyes = SessionVision(host, options=VisionOptions(fps=10), keep_image=True)
    eyes.set_inputs(camera=True)
    await feed(eyes, host, "camera", empty_room(), 0.5)
    await settle(eyes)
    asked = eyes.context("What am I holding up to the camera?")
    assert asked is not None and asked.sight is not None
    assert asked.sight.jpeg is not None and asked.sight.jpeg[:2] == b"\xff\xd8"
    other = eyes.context("Tell me about the weather")
    assert other is not None and other.sight is not None and other.sight.jpeg is None
    assert refers_to_view("read me the second line") and not refers_to_view("how are you")
    eyes.set_inputs(camera=False)
    assert eyes.sight().jpeg is None  # switched off: the picture is gone
    await eyes.close()


def test_bad_client_events_are_refused() -> None:
    eyes = SessionVision(Host())
    with pytest.raises(ValueError, match="boolean"):
        eyes.handle_event({"type": "vision", "camera": "yes"})
    with pytest.raises(ValueError, match="boolean"):
        eyes.handle_event({"type": "vision"})
    eyes.handle_event({"type": "vision", "screen": True})
    assert eyes.sight().screen


class _Scripted:
    """Stands in for the hand model (no picture of a raised hand ships with any package): the
    session logic under test is what a raised hand makes the conversation do."""

    def __init__(self) -> None:
        self.hand = False

    def detect(self, image: np.ndarray, pts: float = 0.0) -> Any:
        from talkie.messages import Presence

        return Presence(pts=pts, faces=1, x=0.5, y=0.4, size=0.3, looking=True,
                        hand_raised=self.hand)  # fmt: skip


@pytest.mark.asyncio
async def test_a_raised_hand_is_a_wish_to_speak_once_per_raise() -> None:
    host = Host()
    scripted = _Scripted()
    eyes = SessionVision(host, options=VisionOptions(fps=10), presence=lambda: scripted)  # type: ignore[arg-type,return-value]
    eyes.set_inputs(camera=True)
    frame = empty_room()
    await feed(eyes, host, "camera", frame, 0.4)
    await settle(eyes)
    assert host.wishes == []
    scripted.hand = True
    await feed(eyes, host, "camera", frame, 0.5)
    await settle(eyes)
    assert host.wishes == ["hand raised"] and len(host.seen("hand_raised")) == 1
    scripted.hand = False
    await feed(eyes, host, "camera", frame, 0.3)
    scripted.hand = True
    await feed(eyes, host, "camera", frame, 0.3)
    await settle(eyes)
    assert host.wishes == ["hand raised", "hand raised"]
    await eyes.close()
