"""The web page in headless Chromium against the real server with a fake conversation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from live_browser import TalkiePage, decode_webm_audio
from live_fakes import FakeConversation
from live_server import LiveServer

OpenPage = Callable[[LiveServer], TalkiePage]


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_page_shows_character_cards(
    fake_server: LiveServer, open_page: OpenPage, artifacts: Path
) -> None:
    page = open_page(fake_server)
    assert "astronaut" in page.card_ids()
    # The preview image actually loaded.
    page.page.wait_for_function(
        """() => {
             const img = document.querySelector('.card[data-character-id="astronaut"] img');
             return img && img.complete && img.naturalWidth === 640; }""",
        timeout=20_000,
    )
    assert page.page.is_visible("#upload-file")
    assert page.page.inner_text("#state") == "offline"
    page.screenshot(artifacts / "page-initial.png")
    assert not [c for c in page.console if c.startswith(("error", "pageerror"))], page.console


def test_live_video_events_text_and_microphone(
    fake_server: LiveServer, open_page: OpenPage, artifacts: Path
) -> None:
    page: TalkiePage = open_page(fake_server)
    page.pick("astronaut")
    took = page.wait_playing(timeout=30)
    info = page.video_info()
    assert (info["width"], info["height"]) == (1280, 720)

    first = page.frame(save=artifacts / "fake-frame-a.png")
    time.sleep(1.0)
    second = page.frame(save=artifacts / "fake-frame-b.png")
    assert first.shape == (720, 1280, 3)
    changed = np.mean(np.abs(first.astype(int) - second.astype(int)) > 24)
    assert changed > 0.001, f"the video froze ({changed:.4%} of pixels changed)"
    # The test pattern's gradient survives encoding (no colour swap, sane range).
    assert abs(float(first[360, 20, 2]) - 150) < 25, first[360, 20]

    page.wait_event("e.type === 'state' && e.state === 'listening'")
    assert page.page.inner_text("#state") == "listening"

    page.start_meter()
    page.start_recording()
    page.say("hello there")
    page.wait_event("e.type === 'reply'")
    page.wait_event("e.type === 'trace'")
    page.page.wait_for_selector("#captions .line.character", timeout=5000)
    assert "You said: hello there" in page.page.inner_text("#captions")
    page.page.wait_for_selector("#timeline .turn", timeout=5000)
    # The fake beeps for 1 s after a reply: the received audio gets loud.
    time.sleep(1.2)
    levels = page.levels()
    assert levels.size and levels[:, 1].max() > 0.05, levels[-20:]
    # The recorded audio holds the fake's 440 Hz beep.
    samples, rate = decode_webm_audio(page.stop_recording())
    loud = samples[np.abs(samples) > 0.05]
    assert loud.size > rate * 0.3, "less than 0.3 s of the beep was recorded"
    # The loudest 0.3 s (the recording may run on past the beep into silence and noise).
    window = int(rate * 0.3)
    total = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    start = int(np.argmax(total[window:] - total[:-window]))
    spectrum = np.abs(np.fft.rfft(samples[start : start + window]))
    peak_hz = np.argmax(spectrum) * rate / (2 * (spectrum.size - 1))
    assert abs(peak_hz - 440) < 15, peak_hz

    # The fake microphone (the question WAV) reached the conversation.
    conv = FakeConversation.instances[-1]
    _wait(lambda: conv.mic_seconds > 2.0, 10, "microphone audio")
    assert conv.mic_peak > 0.02
    assert {"type": "mode", "hands_free": True} in conv.client_events

    # Push-to-talk with the space bar (focus on the page, not the text box).
    page.page.click("h1")
    page.page.keyboard.down("Space")
    page.page.keyboard.up("Space")
    _wait(lambda: {"type": "ptt", "down": False} in conv.client_events, 5, "ptt events")
    assert {"type": "ptt", "down": True} in conv.client_events

    page.screenshot(artifacts / "page-live.png")
    print(f"video playing {took:.2f} s after the click")

    assert not [c for c in page.console if c.startswith("pageerror")], page.console
    page.page.click("#hangup")
    _wait(lambda: len(fake_server.registry) == 0, 10, "the session to end")
    _wait(lambda: conv.closed, 5, "the conversation to close")


def test_server_errors_reach_the_page(fake_server: LiveServer, open_page: OpenPage) -> None:
    page: TalkiePage = open_page(fake_server)
    page.pick("astronaut")
    page.wait_playing(timeout=30, frames=2)
    page.wait_event("e.type === 'state'")
    assert page.send({"type": "nonsense"})
    event = page.wait_event("e.type === 'error'")
    assert "nonsense" in event["message"]
    page.page.wait_for_selector("#captions .line.error", timeout=5000)


def test_page_reconnects_after_the_server_drops_the_session(
    fake_server: LiveServer, open_page: OpenPage
) -> None:
    page: TalkiePage = open_page(fake_server)
    page.pick("astronaut")
    page.wait_playing(timeout=30, frames=2)
    first_id = page.page.evaluate("() => window.talkie.sessionId")
    peer = fake_server.registry.get(first_id)

    async def drop() -> None:
        await peer.close("test")

    fake_server.call(drop)
    page.page.wait_for_function(
        "(old) => window.talkie.sessionId && window.talkie.sessionId !== old "
        "&& window.talkie.connection === 'connected'",
        arg=first_id,
        timeout=20_000,
    )
    page.wait_playing(timeout=20, frames=2)
    assert len(fake_server.registry) == 1


def test_page_without_microphone_still_connects(
    fake_server: LiveServer, playwright_instance: Any, artifacts: Path
) -> None:
    from live_browser import launch_chromium

    browser = launch_chromium(playwright_instance, mic=False)
    try:
        page = TalkiePage(browser, fake_server.url).open()
        page.pick("astronaut")
        page.wait_playing(timeout=30, frames=2)
        assert page.page.is_visible("#note")
        assert "Microphone" in page.page.inner_text("#note")
        assert page.page.is_disabled("#ptt")
        page.say("typed only")
        page.wait_event("e.type === 'reply'")
        page.screenshot(artifacts / "page-no-mic.png")
        page.close()
    finally:
        browser.close()


def test_upload_in_the_page(fake_server: LiveServer, open_page: OpenPage, artifacts: Path) -> None:
    import io

    from PIL import Image
    from skimage import data

    page: TalkiePage = open_page(fake_server)
    # A file that is not an image: a clear error, no new card.
    page.page.set_input_files(
        "#upload-file", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"hi"}]
    )
    page.page.click("#upload-button")
    page.page.wait_for_selector("#upload-status.error", timeout=10_000)
    assert "not an image" in page.page.inner_text("#upload-status")

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()[:, ::-1].copy()).save(buf, format="PNG")
    page.page.set_input_files(
        "#upload-file",
        files=[{"name": "mirror.png", "mimeType": "image/png", "buffer": buf.getvalue()}],
    )
    page.page.fill("#upload-name", "Mirror")
    page.page.click("#upload-button")
    page.page.wait_for_selector("#upload-status.ok", timeout=30_000)
    assert "Mirror is ready" in page.page.inner_text("#upload-status")
    card = page.page.locator('button.card[aria-pressed="true"]')
    assert "Mirror" in card.inner_text()
    page.wait_playing(timeout=30, frames=2)  # picked automatically
    assert FakeConversation.instances[-1].character.name == "Mirror"
    page.screenshot(artifacts / "page-uploaded.png")
