"""A full server puts newcomers in line, and the page says so: the second visitor of a one-session
server sees their place in line, gets the session by themselves when the first hangs up, and can
leave the line. Screenshots go to the live artifacts folder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_browser import TalkiePage
from live_fakes import FakeConversation
from live_server import LiveServer

from talkie.server.app import ServerOptions

OpenPage = Callable[[LiveServer], TalkiePage]


@pytest.fixture()
def one_session_server() -> Iterator[LiveServer]:
    server = LiveServer(
        options=ServerOptions(max_sessions=1), conversation_factory=FakeConversation
    ).start()
    try:
        yield server
    finally:
        server.stop()


def _overlay(page: TalkiePage) -> str:
    text: str = page.page.inner_text("#overlay")
    return text


def _live(server: LiveServer, open_page: OpenPage) -> TalkiePage:
    """A visitor who takes the server's only session."""
    page = open_page(server)
    page.pick("astronaut")
    page.wait_playing(timeout=30, frames=2)
    return page


def _in_line(server: LiveServer, open_page: OpenPage) -> TalkiePage:
    """A visitor who comes next and is told to wait."""
    page = open_page(server)
    page.pick("astronaut")
    page.page.wait_for_function(
        "() => document.getElementById('overlay').innerText.includes('in line')", timeout=15_000
    )
    return page


def test_a_full_server_shows_the_place_in_line_then_connects(
    one_session_server: LiveServer, open_page: OpenPage, artifacts: Path
) -> None:
    first = _live(one_session_server, open_page)
    second = _in_line(one_session_server, open_page)
    text = _overlay(second)
    assert "number 1 in line" in text, text
    assert second.page.is_visible("#overlay-button")
    assert second.page.inner_text("#overlay-button") == "Leave the line"
    second.screenshot(artifacts / "page-queued.png")
    assert len(one_session_server.registry) == 1  # the first visitor's session only

    first.page.click("#hangup")
    started = time.monotonic()
    second.wait_playing(timeout=30, frames=2)  # no click: the page asked again with its ticket
    print(f"live {time.monotonic() - started:.1f} s after the first visitor hung up")
    second.page.wait_for_function(  # the overlay fades out (it stays in the layout)
        "() => document.getElementById('overlay').classList.contains('hidden')", timeout=5000
    )
    assert len(one_session_server.registry) == 1
    assert not [c for c in second.console if c.startswith("pageerror")], second.console


def test_leaving_the_line_stops_asking(one_session_server: LiveServer, open_page: OpenPage) -> None:
    first = _live(one_session_server, open_page)
    second = _in_line(one_session_server, open_page)
    requests: list[str] = []
    second.page.on(
        "request", lambda r: requests.append(r.url) if r.url.endswith("/v1/sessions") else None
    )
    second.page.click("#overlay-button")
    assert "You left the line" in _overlay(second)
    first.page.click("#hangup")
    time.sleep(7)  # longer than the page's recheck period (5 s)
    assert requests == []
    assert len(one_session_server.registry) == 0


def test_the_widget_waits_in_line_and_says_where(
    one_session_server: LiveServer, open_page: OpenPage, chromium: Any
) -> None:
    from live_host import HostSite
    from test_live_widget import _INJECT_JS, _PLAYING_JS, HOST_PAGE, _event, _publishable_key

    first = _live(one_session_server, open_page)
    site = HostSite()
    site.pages["/"] = HOST_PAGE
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    try:
        key = _publishable_key(one_session_server, [site.url])
        page = context.new_page()
        page.goto(site.url + "/")
        page.evaluate(_INJECT_JS, [one_session_server.url, {"character": "astronaut", "key": key}])
        page.evaluate("""() => document.querySelector("talkie-character").addEventListener(
            "queued", (e) => window.__testEvents.push({ type: "queued", detail: e.detail }))""")
        page.locator("talkie-character").evaluate("el => { el.start(); }")
        queued = _event(page, "e.type === 'queued'")
        assert queued["detail"]["position"] == 1
        overlay = page.locator("talkie-character").locator(".overlay")
        assert "number 1 in line" in overlay.inner_text(), overlay.inner_text()
        first.page.click("#hangup")
        page.wait_for_function(_PLAYING_JS, arg=2, timeout=30_000)
        assert _event(page, "e.type === 'live'")
    finally:
        context.close()
        site.close()


class SlowStartConversation(FakeConversation):
    """Starts like a session that had to wait for a fresh worker (20-40 s on 2 cores), shorter."""

    async def start(self) -> None:
        await asyncio.sleep(8.0)
        await super().start()


def test_a_slow_start_says_the_character_is_on_its_way_then_connects(
    open_page: OpenPage, artifacts: Path
) -> None:
    server = LiveServer(conversation_factory=SlowStartConversation).start()
    try:
        page = open_page(server)
        page.pick("astronaut")
        page.page.wait_for_function(
            "() => document.getElementById('overlay').innerText.includes('ready…')",
            timeout=15_000,
        )
        text = _overlay(page)
        page.screenshot(artifacts / "slow-start.png")
        assert "Getting" in text and "half a minute" in text, text
        page.wait_playing(timeout=30, frames=2)
        page.page.wait_for_function(  # the overlay fades out (it stays in the layout)
            "() => document.getElementById('overlay').classList.contains('hidden')", timeout=5000
        )
        assert not [c for c in page.console if c.startswith("pageerror")], page.console
    finally:
        server.stop()
