"""Fixtures for live tests: the real server in a thread, headless Chromium, generated audio.

- ``fake_server``: the real app (real character library) with ``FakeConversation`` sessions.
- ``real_server``: the real app with the real ``Conversation`` (skipped until it imports).
- ``chromium``: headless Debian Chromium whose fake microphone plays ``question_wav`` once.
- ``open_page(server)``: a ``TalkiePage`` on that server (closed after the test).
- ``artifacts``: a folder for screenshots and frames (``$TALKIE_LIVE_ARTIFACTS`` or
  ``/tmp/talkie-live``), kept after the run for people to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Helper modules sit next to this file (pytest puts this folder on sys.path).
from live_browser import CHROMIUM, TalkiePage, launch_chromium, make_question_wav
from live_fakes import FakeConversation
from live_server import LiveServer

from talkie.server.app import ServerOptions


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("TALKIE_LIVE_ARTIFACTS", "/tmp/talkie-live"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def fake_server() -> Iterator[LiveServer]:
    server = LiveServer(
        options=ServerOptions(max_sessions=4), conversation_factory=FakeConversation
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def real_server() -> Iterator[LiveServer]:
    try:
        import talkie.session.conversation  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the real conversation is not available yet: {exc}")
    server = LiveServer(options=ServerOptions(max_sessions=2)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "What is your name?" in espeak-ng's en-us+m3 voice, 1.5 s silence before, 2 s after."""
    return make_question_wav(tmp_path_factory.mktemp("audio") / "question.wav")


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium(playwright_instance: Any, question_wav: Path) -> Iterator[Any]:
    browser = launch_chromium(playwright_instance, fake_audio=question_wav)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture()
def open_page(chromium: Any) -> Iterator[Callable[[LiveServer], TalkiePage]]:
    pages: list[TalkiePage] = []

    def factory(server: LiveServer) -> TalkiePage:
        page = TalkiePage(chromium, server.url)
        pages.append(page)
        return page.open()

    yield factory
    for page in pages:
        page.close()


@pytest.fixture(autouse=True)
def _forget_fakes() -> Iterator[None]:
    FakeConversation.instances.clear()
    yield
    FakeConversation.instances.clear()
