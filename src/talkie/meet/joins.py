"""Join scripts: how the bot gets into a meeting in each web client (name, join button, mute).

A join script is small: ``matches(url)`` says whether it knows the meeting's web client, and
``join(page, name)`` drives a Playwright page (async API) from the opened meeting URL to being
in the call with camera and microphone on. The camera and microphone themselves are the
character's whatever the script does (``web/meet-bot.js`` answers getUserMedia).

Only ``RoomJoin`` (``talkie.meet.room``) is tested here. ``GoogleMeetJoin``, ``TeamsJoin`` and
``ZoomJoin`` follow those clients' public web pages as they were last known; they CANNOT be
tested on this machine (no internet, no accounts) and their selectors change without notice:
treat them as starting points. Most meetings also need the host to admit the bot from the lobby,
and Google Meet asks guests to sign in unless the meeting allows anonymous guests.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import urlsplit

from talkie.errors import InvalidInputError

log = logging.getLogger(__name__)

__all__ = [
    "GoogleMeetJoin", "JoinScript", "RoomJoin", "TeamsJoin", "ZoomJoin", "join_script_for",
    "JOIN_SCRIPTS",
]  # fmt: skip

STEP_TIMEOUT_MS = 20_000


class JoinScript(Protocol):
    """How to join one kind of meeting web client."""

    name: str

    def matches(self, url: str) -> bool: ...

    async def join(self, page: Any, display_name: str) -> None: ...


async def _click_first(page: Any, selectors: list[str], timeout_ms: int = STEP_TIMEOUT_MS) -> str:
    """Click the first of ``selectors`` that shows up; returns it (TimeoutError if none)."""
    locator = page.locator(", ".join(selectors)).first
    await locator.wait_for(state="visible", timeout=timeout_ms)
    await locator.click()
    return str(locator)


async def _fill_if_present(page: Any, selectors: list[str], text: str, timeout_ms: int) -> bool:
    locator = page.locator(", ".join(selectors)).first
    try:
        await locator.wait_for(state="visible", timeout=timeout_ms)
    except Exception:  # Playwright's TimeoutError: the client did not ask for a name
        return False
    await locator.fill(text)
    return True


class RoomJoin:
    """The Talkie test room (``talkie.meet.room``): type the name, press Join, wait to be in."""

    name = "room"

    def matches(self, url: str) -> bool:
        return urlsplit(url).path in ("", "/") and "room=" in urlsplit(url).query

    async def join(self, page: Any, display_name: str) -> None:
        await page.fill("#name", display_name)
        await page.click("#join")
        await page.wait_for_function(
            "() => window.room && window.room.joined", timeout=STEP_TIMEOUT_MS
        )
        await page.evaluate(  # joined unmuted; say so if a previous run left it muted
            "() => { const t = window.room.local.getAudioTracks()[0]; if (t) t.enabled = true; }"
        )
        # The room knows its participants: the session learns who is talking.
        await page.evaluate(
            "() => window.__talkieMeet &&"
            " window.__talkieMeet.watchSpeakers(() => [...window.room.peers.values()])"
        )


class GoogleMeetJoin:
    """meet.google.com, as a guest: "Your name", camera and microphone on, "Ask to join".
    UNTESTED here (see the module docstring)."""

    name = "google-meet"

    def matches(self, url: str) -> bool:
        return urlsplit(url).hostname == "meet.google.com"

    async def join(self, page: Any, display_name: str) -> None:
        await page.evaluate("() => window.__talkieMeet && window.__talkieMeet.start()")
        await _fill_if_present(
            page, ['input[aria-label="Your name"]', 'input[placeholder="Your name"]'],
            display_name, STEP_TIMEOUT_MS,
        )  # fmt: skip
        for label in ("Turn on microphone", "Turn on camera"):  # off by default for guests
            button = page.locator(f'[aria-label^="{label}"]').first
            if await button.count():
                await button.click()
        await _click_first(
            page, ['button:has-text("Ask to join")', 'button:has-text("Join now")',
                   'button:has-text("Join")'],
        )  # fmt: skip


class TeamsJoin:
    """teams.microsoft.com / teams.live.com meeting links: "Continue on this browser", name,
    camera and microphone toggles on, "Join now". UNTESTED here."""

    name = "teams"

    def matches(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return host.endswith("teams.microsoft.com") or host.endswith("teams.live.com")

    async def join(self, page: Any, display_name: str) -> None:
        try:
            await _click_first(
                page, ['button:has-text("Continue on this browser")',
                       'a:has-text("Continue on this browser")'], timeout_ms=8_000,
            )  # fmt: skip
        except Exception:  # already on the web client's pre-join screen
            log.debug("teams: no launcher page")
        await _fill_if_present(
            page,
            ['input[data-tid="prejoin-display-name-input"]', 'input[placeholder="Type your name"]'],
            display_name, STEP_TIMEOUT_MS,
        )  # fmt: skip
        for tid in ("toggle-video", "toggle-mute"):
            toggle = page.locator(f'[data-tid="{tid}"][aria-checked="false"]').first
            if await toggle.count():
                await toggle.click()
        await _click_first(
            page, ['button[data-tid="prejoin-join-button"]', 'button:has-text("Join now")']
        )


class ZoomJoin:
    """zoom.us meeting links through the web client (``/wc/join/ID``): name, "Join", then
    "Join Audio by Computer" and "Start Video". UNTESTED here; the host must allow joining from
    the browser."""

    name = "zoom"

    def matches(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return host == "zoom.us" or host.endswith(".zoom.us")

    async def join(self, page: Any, display_name: str) -> None:
        url = page.url
        parts = urlsplit(url)
        if "/j/" in parts.path:  # the launcher page: go straight to the web client
            meeting = parts.path.rsplit("/", 1)[-1]
            await page.goto(f"{parts.scheme}://{parts.netloc}/wc/join/{meeting}?{parts.query}")
        await _fill_if_present(
            page,
            ["#input-for-name", 'input[placeholder="Your Name"]'],
            display_name,
            STEP_TIMEOUT_MS,
        )
        await _click_first(page, ["button.preview-join-button", 'button:has-text("Join")'])
        for text in ("Join Audio by Computer", "Start Video"):
            try:
                await _click_first(page, [f'button:has-text("{text}")'], timeout_ms=8_000)
            except Exception:  # the client joined with it on already
                log.debug("zoom: no %r button", text)


JOIN_SCRIPTS: dict[str, JoinScript] = {
    s.name: s for s in (RoomJoin(), GoogleMeetJoin(), TeamsJoin(), ZoomJoin())
}


def join_script_for(url: str, name: str | None = None) -> JoinScript:
    """The join script named ``name``, or the first that knows ``url``'s client."""
    if name:
        try:
            return JOIN_SCRIPTS[name]
        except KeyError:
            raise InvalidInputError(
                f"unknown meeting client {name!r}; known: {', '.join(JOIN_SCRIPTS)}"
            ) from None
    for script in JOIN_SCRIPTS.values():
        if script.matches(url):
            return script
    raise InvalidInputError(
        "no join script knows this meeting address; name one of: " + ", ".join(JOIN_SCRIPTS)
    )
