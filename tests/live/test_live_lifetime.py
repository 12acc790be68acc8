"""Sessions end on their own, in the browser: a crashed tab or a killed browser frees its slot
within seconds (the page's data-channel heartbeat), and an idle session says goodbye and ends
without the page reconnecting. The real server, fake conversations, headless Chromium. (The
same limits through the aiortc client: tests/api/test_api_session_limits.py.)"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_browser import TalkiePage
from live_fakes import FakeConversation
from live_server import LiveServer

from talkie.server.app import ServerOptions
from talkie.transport.lifetime import SessionLimits
from talkie.transport.webrtc import WebRtcOptions

OpenPage = Callable[[LiveServer], TalkiePage]
CRASH_DEADLINE = 5.0  # the bound: a crashed browser's slot is free again within 5 s


@pytest.fixture(scope="module")
def idle_server() -> Iterator[LiveServer]:
    limits = SessionLimits(idle_timeout=2.5, max_duration=None)
    options = ServerOptions(max_sessions=4, webrtc=WebRtcOptions(limits=limits))
    with LiveServer(options=options, conversation_factory=FakeConversation) as server:
        yield server


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``cond``; returns the seconds it took."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def _live_page(server: LiveServer, page: TalkiePage) -> str:
    page.pick("astronaut")
    page.wait_playing(timeout=30, frames=5)
    session_id: str = page.page.evaluate("() => window.talkie.sessionId")
    assert server.registry.get(session_id) is not None
    time.sleep(1.5)  # a few heartbeats
    return session_id


def _slot_freed(server: LiveServer, session_id: str, since: float, what: str) -> float:
    _wait(lambda: server.registry.get(session_id) is None, 60, "the slot")
    freed = time.monotonic() - since
    print(f"{what}: its slot was free again {freed:.2f} s later")
    assert str(server.end_reason(session_id)).startswith("client went silent")  # no hang-up
    return freed


def test_a_crashed_page_frees_its_slot_within_5_s(
    fake_server: LiveServer, open_page: OpenPage
) -> None:
    page = open_page(fake_server)
    session_id = _live_page(fake_server, page)
    crashed = time.monotonic()
    # Crash the tab's renderer: no unload handlers, no hang-up request, no goodbye on the wire.
    with contextlib.suppress(Exception):  # the navigation is aborted by the crash
        page.page.goto("chrome://crash", timeout=5_000)
    assert _slot_freed(fake_server, session_id, crashed, "crashed tab") < CRASH_DEADLINE


def test_a_killed_browser_frees_its_slot_within_5_s(
    fake_server: LiveServer, playwright_instance: Any
) -> None:
    from live_browser import launch_chromium

    others = set(_chromium_processes())  # browsers of other tests in this process
    browser = launch_chromium(playwright_instance)
    try:
        page = TalkiePage(browser, fake_server.url).open()
        session_id = _live_page(fake_server, page)
        # this browser's main process: not a zygote/renderer/gpu/... helper (helpers rewrite
        # their command line as one string: look for the flag anywhere)
        main = [pid for pid, args in _chromium_processes().items()
                if pid not in others and "--type=" not in " ".join(args)]  # fmt: skip
        assert len(main) == 1, main
        killed = time.monotonic()
        os.kill(main[0], signal.SIGKILL)  # the whole browser, as a crash or a power cut would
        freed = _slot_freed(fake_server, session_id, killed, "killed browser")
    finally:
        with contextlib.suppress(Exception):
            browser.close()
    assert freed < CRASH_DEADLINE


def _chromium_processes() -> dict[int, list[str]]:
    """Chromium processes started by this test process (through Playwright's driver)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if "chromium" not in args[0] or not _descends_from(int(entry.name), os.getpid()):
                continue
        except OSError:
            continue
        found[int(entry.name)] = args
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    for _ in range(20):
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid
        if pid <= 1:
            return False
    return False


def test_an_idle_page_hears_goodbye_and_does_not_reconnect(
    idle_server: LiveServer, open_page: OpenPage, artifacts: Path
) -> None:
    page = open_page(idle_server)
    page.pick("astronaut")
    page.wait_playing(timeout=30, frames=2)
    session_id = page.page.evaluate("() => window.talkie.sessionId")
    end = page.wait_event("e.type === 'session_end'", timeout=30)
    assert end["reason"] == "idle" and "without a word" in end["message"]
    goodbye = page.wait_event("e.type === 'reply' && e.text.includes('goodbye')", timeout=10)
    assert goodbye["text"] == SessionLimits().idle_farewell
    _wait(lambda: idle_server.registry.get(session_id) is None, 30, "the session to end")
    page.page.wait_for_selector("#overlay-button:visible", timeout=10_000)
    overlay = page.page.inner_text("#overlay-text")
    page.screenshot(artifacts / "page-idle-ended.png")
    assert "without a word" in overlay and "again" in overlay, overlay
    time.sleep(3.0)  # the page would have reconnected within 1-3 s after a dropped line
    assert len(idle_server.registry) == 0
    assert page.page.evaluate("() => window.talkie.sessionId") is None
    assert idle_server.end_reason(session_id) == "idle timeout"
    assert [c.farewells for c in FakeConversation.instances] == [[SessionLimits().idle_farewell]]
    # the button starts a new session
    page.page.click("#overlay-button")
    page.wait_playing(timeout=30, frames=2)
    assert page.page.evaluate("() => window.talkie.sessionId") not in (None, session_id)
