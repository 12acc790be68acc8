"""The character sees, end to end in a real browser: the page's Camera and Share screen toggles
send Chromium's fake camera (a Y4M clip made at test time) over the same WebRTC connection to
the real server, whose eyes notice a person appear, look away and leave, and read a screen
with known text; typed questions about it are answered from what was seen.

The person is the astronaut portrait rendered by Talkie's own renderer (facing the camera, then
with the head turned away); the screen is ``talkie.quality.screens``. Headless Chromium's fake
screen capture is a moving test pattern, so for the screen test the page's getDisplayMedia is
pointed at the fake camera (the page, the transport and the server are all the real ones).
"""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_browser import TalkiePage, launch_chromium, write_y4m
from live_server import LiveServer

from talkie.messages import FaceParams
from talkie.quality.screens import make_screen

FPS = 5
EMPTY_S, FACING_S, AWAY_S, GONE_S = 3, 10, 4, 8


def _silence(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        w.writeframes(np.zeros(int(48_000 * seconds), np.int16).tobytes())
    return path


def _room() -> np.ndarray:
    room = np.empty((480, 640, 3), np.uint8)
    room[:] = np.linspace(140, 210, 640)[None, :, None].astype(np.uint8)
    room[300:420, 60:260] = (120, 90, 60)  # a desk
    room[80:200, 420:560] = (200, 200, 190)  # a picture frame
    return room


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Path:
    """An empty room, then a person facing the camera, turning away, and gone (looping)."""
    from skimage import data

    from talkie.render import RenderOptions, load_renderer
    from talkie.rig import build_rig

    renderer = load_renderer(None, build_rig(data.astronaut()),
                             options=RenderOptions(size=(640, 480)))  # fmt: skip
    facing, away = renderer.render(FaceParams()), renderer.render(FaceParams(head_yaw=25.0))
    room = _room()
    frames = [room] * (EMPTY_S * FPS) + [facing] * (FACING_S * FPS)
    frames += [away] * (AWAY_S * FPS) + [room] * (GONE_S * FPS)
    from PIL import Image

    for name, image in (("room", room), ("facing", facing), ("away", away)):
        Image.fromarray(image).save(artifacts / f"vision-camera-{name}.png")
    return write_y4m(tmp_path_factory.mktemp("vision") / "camera.y4m", frames, FPS)


SCREEN = make_screen(np.random.default_rng(2026), lines=5, text_px=24)


@pytest.fixture(scope="module")
def screen_clip(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Path:
    from PIL import Image

    Image.fromarray(SCREEN.image).save(artifacts / "vision-screen.png")
    return write_y4m(tmp_path_factory.mktemp("vision") / "screen.y4m", [SCREEN.image] * 10, FPS)


def _browser(playwright_instance: Any, clip: Path, tmp: Path) -> Iterator[Any]:
    browser = launch_chromium(playwright_instance, fake_audio=_silence(tmp / "silence.wav"),
                              fake_video=clip)  # fmt: skip
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def camera_browser(
    playwright_instance: Any, camera_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    yield from _browser(playwright_instance, camera_clip, tmp_path_factory.mktemp("cam"))


@pytest.fixture(scope="module")
def screen_browser(
    playwright_instance: Any, screen_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    yield from _browser(playwright_instance, screen_clip, tmp_path_factory.mktemp("screen"))


def _said_after(page: TalkiePage, question: str, timeout: float = 40.0) -> str:
    """Type ``question``; the character's words for that turn as heard."""
    before = len(page.events())
    page.say(question)
    turn = page.wait_event(
        f"e.type === 'turn' && e.user_text === {question!r} && "
        f"window.talkieEvents.indexOf(e) >= {before}",
        timeout=timeout,
    )
    return str(turn["said"])


def _start(page: TalkiePage) -> None:
    page.pick("astronaut")
    page.wait_playing(timeout=60, frames=5)
    page.wait_event("e.type === 'turn'", timeout=40)  # the greeting has been said


def test_the_character_sees_someone_arrive_look_away_and_leave(
    real_server: LiveServer, camera_browser: Any, artifacts: Path
) -> None:
    page = TalkiePage(camera_browser, real_server.url).open(timeout=30)
    try:
        _start(page)
        assert page.page.is_hidden("#camera-badge")  # off by default
        assert page.page.get_attribute("#camera", "aria-pressed") == "false"
        clicked = page.now_ms()
        page.page.click("#camera")
        page.page.wait_for_selector("#camera-badge", state="visible", timeout=5000)
        assert page.page.get_attribute("#camera", "aria-pressed") == "true"
        page.page.wait_for_selector("#self-view", state="visible", timeout=5000)

        appeared = page.wait_event("e.type === 'vision' && e.what === 'appeared'", timeout=40)
        assert appeared["source"] == "camera" and appeared["faces"] == 1
        seen_ms = appeared["received_at"] - clicked
        # The clip shows the person EMPTY_S s after the camera starts: not before.
        assert seen_ms > (EMPTY_S - 0.5) * 1000, "a person was seen in an empty room"
        greeting = page.wait_event(
            f"e.type === 'reply' && e.t >= {appeared['t']} && /see you/i.test(e.text)", 20
        )
        assert greeting["text"]
        page.frame(save=artifacts / "vision-live-greeting.png")
        page.screenshot(artifacts / "vision-live-page.png")
        said = _said_after(page, "Can you see me?")
        assert "I can see you" in said, said

        page.wait_event("e.type === 'vision' && e.what === 'looked_away'", timeout=40)
        left = page.wait_event("e.type === 'vision' && e.what === 'left'", timeout=40)
        assert left["t"] > appeared["t"] + FACING_S - 1
        said = _said_after(page, "Can you see me?")
        assert "can't see anyone" in said, said

        traces = [e for e in page.events() if e["type"] == "trace" and e.get("vision")]
        assert traces and traces[-1]["vision"]["camera"] is True
        assert "faces" in traces[-1]["vision"]  # which observation the answer used

        page.page.click("#camera")
        page.page.wait_for_selector("#camera-badge", state="hidden", timeout=5000)
        page.wait_event("e.type === 'vision' && e.what === 'off'", timeout=10)
        said = _said_after(page, "Can you see me?")
        assert "camera is off" in said, said
    finally:
        page.close()


DISPLAY_IS_CAMERA = """
navigator.mediaDevices.getDisplayMedia = (constraints) =>
  navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
"""


def test_the_character_reads_the_shared_screen(
    real_server: LiveServer, screen_browser: Any, artifacts: Path
) -> None:
    page = TalkiePage(screen_browser, real_server.url)
    page.context.add_init_script(DISPLAY_IS_CAMERA)
    page.open(timeout=30)
    try:
        _start(page)
        assert "not sharing" in _said_after(page, "What does my screen say?")
        page.page.click("#share-screen")
        page.page.wait_for_selector("#screen-badge", state="visible", timeout=5000)
        started = time.monotonic()
        read = page.wait_event("e.type === 'vision' && e.what === 'screen_text'", timeout=40)
        assert read["lines"] >= len(SCREEN.lines) - 1
        print(f"screen read {time.monotonic() - started:.1f} s after sharing started, "
              f"{read['delay']} s after its frame arrived")
        page.screenshot(artifacts / "vision-live-screen-page.png")

        whole = _said_after(page, "What does my screen say?")
        exact = sum(line in whole for line in SCREEN.lines)
        assert exact >= len(SCREEN.lines) - 1, (whole, SCREEN.lines)
        second = _said_after(page, "Read me the second line")
        assert SCREEN.lines[1] in second, (second, SCREEN.lines)
        assert all(line not in second for line in SCREEN.lines if line != SCREEN.lines[1])

        page.page.click("#share-screen")
        page.page.wait_for_selector("#screen-badge", state="hidden", timeout=5000)
        assert "not sharing" in _said_after(page, "What does my screen say?")
    finally:
        page.close()
