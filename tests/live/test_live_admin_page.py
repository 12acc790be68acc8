"""The operations page in headless Chromium: behind the admin key (a session key is turned away
with the server's message), then live plots of capacity, frame pacing and turn latency fed by
/v1/admin/ops every 2 s while a real WebRTC client (aiortc, fake conversation) talks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_browser import launch_chromium
from live_client import ClientSession, connect
from live_fakes import FakeConversation
from live_server import LiveServer
from PIL import Image

from talkie.server.app import ServerOptions
from talkie.server.ops import OpsOptions


class LateConversation(FakeConversation):
    """Every 12th frame counts as late (the real conversation's ``late_frames`` counter), and
    every 24th repeated the previous picture (``repeated_frames``)."""

    @property
    def late_frames(self) -> int:
        return self._video_index // 12

    @property
    def repeated_frames(self) -> int:
        return self._video_index // 24


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    options = ServerOptions(max_sessions=3, ops=OpsOptions(sample_seconds=0.5))
    with LiveServer(options=options, conversation_factory=LateConversation) as live:
        yield live


class Talker:
    """An aiortc client on its own event loop (Playwright's sync API owns the test's thread)."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session: ClientSession = self.run(self._open(url))

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _open(self, url: str) -> ClientSession:
        session = await connect(url, "astronaut", microphone=False)
        await asyncio.wait_for(session.channel_open.wait(), 15)
        return session

    def say(self, text: str) -> None:
        async def turn() -> None:
            self.session.send({"type": "text", "text": text})
            await self.session.wait_event(
                lambda e: e.get("type") == "turn" and text in e.get("user_text", ""), timeout=15
            )

        self.run(turn())

    def close(self) -> None:
        self.run(self.session.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def drawn_pixels(png: Path) -> int:
    """Pixels of a chart that are neither background nor grid (its series)."""
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    saturation = image.max(axis=2) - image.min(axis=2)
    return int((saturation > 60).sum())


def test_the_operations_page_plots_capacity_pacing_and_latency(
    server: LiveServer, playwright_instance: Any, artifacts: Path
) -> None:
    talker = Talker(server.url)
    browser = launch_chromium(playwright_instance)
    try:
        for text in ("Hello there", "How are you?", "Tell me a story"):
            talker.say(text)
        page = browser.new_page(viewport={"width": 1100, "height": 1200})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/admin/")
        page.wait_for_selector("#login:not([hidden])")
        # a key without admin rights is turned away with the server's message
        with server.admin() as admin:
            created = admin.post("/v1/keys", json={"name": "app", "scopes": ["sessions"]})
            session_key = created.json()["secret"]
        page.fill("#admin-key", session_key)
        page.click("#login button")
        page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
        assert "ops:read" in page.text_content("#login-error")
        assert page.is_hidden("#board")
        # the admin key opens it; the plots fill as it polls every 2 s
        page.fill("#admin-key", server.admin_key)
        page.click("#login button")
        page.wait_for_function("Number(document.body.dataset.updates || 0) >= 3", timeout=30_000)
        assert not errors, errors
        assert page.is_hidden("#login")
        assert page.text_content("#f-capacity") == "1 / 3"
        assert "admitted" in page.text_content("#f-admission")
        assert page.text_content("#f-latency") == "0.22 / 0.22 s"
        assert page.text_content("#f-turns") == "3 recent turns"
        rows = page.locator("#sessions tr")
        assert rows.count() == 1
        assert rows.first.locator("td").first.text_content() == talker.session.session_id
        late = page.text_content("#f-late")
        assert late.endswith("%") and late != "0.0 %", late
        frames = page.text_content("#f-frames")
        assert "frames judged" in frames and frames.endswith("% repeated"), frames
        assert "0.0 % repeated" not in frames, frames
        shot = artifacts / "ops-admin-page.png"
        page.screenshot(path=str(shot), full_page=True)
        for chart in ("c-capacity", "c-pacing", "c-latency"):
            path = artifacts / f"ops-{chart}.png"
            page.locator(f"#{chart}").screenshot(path=str(path))
            assert drawn_pixels(path) > 40, chart  # a series was drawn, not only the grid
        # the key lives in this tab only; "Forget the key" asks for it again
        page.click("#logout")
        assert page.is_visible("#login")
        assert page.evaluate("sessionStorage.getItem('talkie-admin-key')") is None
        print(f"\noperations page: {shot}")
    finally:
        browser.close()
        talker.close()
