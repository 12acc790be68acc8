"""The meeting bot: a headless Chromium that joins a browser meeting as the character.

``MeetingBot`` opens the meeting URL in Chromium with ``web/meet-bot.js`` as an init script
(it runs before the meeting's own scripts): the page's camera and microphone become the
character's live video and voice, and the meeting's mixed audio becomes the character's ears,
through one WebRTC connection from that page to a Talkie session. A join script
(``talkie.meet.joins``) then types the name and presses the join button.

Credentials stay out of the meeting page: the page asks Python for each connection
(``window.__talkieOffer``); Python makes the Talkie session (``new_session``: through the API
with a key for ``talkie meet``, in-process for ``POST /v1/meetings``) and posts the offer with
the session's own short-lived token. A meeting page that reloads gets a fresh session.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from talkie.errors import MissingDependencyError, TalkieError
from talkie.meet.joins import JoinScript, join_script_for

log = logging.getLogger(__name__)

__all__ = ["BOT_SCRIPT", "CHROMIUM", "MeetingBot", "MeetingError", "SessionTicket", "chromium_args"]

BOT_SCRIPT = Path(__file__).resolve().parents[3] / "web" / "meet-bot.js"
CHROMIUM = "/usr/bin/chromium"
MAX_EVENTS = 500

MeetingStatus = Literal["starting", "joining", "joined", "left", "failed"]


class MeetingError(TalkieError):
    """The bot could not join (or stay in) the meeting; the message says where it stopped."""


@dataclass(frozen=True)
class SessionTicket:
    """A Talkie session the meeting page may connect to, with its own token."""

    base_url: str
    session_id: str
    token: str
    offer_url: str
    ice_servers: list[dict[str, Any]] = field(default_factory=list)


NewSession = Callable[[], Awaitable[SessionTicket]]


def chromium_args() -> list[str]:
    """Headless Chromium for a bot: fake devices (so meeting clients find a camera and a
    microphone to ask for; getUserMedia is the character's anyway), no permission prompts,
    sound without a user gesture."""
    return [
        "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip


class MeetingBot:
    """One character in one meeting. ``await start()`` joins (``MeetingError`` if it cannot);
    ``await stop()`` leaves and ends the Talkie session. ``status``, ``error``, ``events``
    (what the session said: transcripts, replies) and ``session_id`` describe it meanwhile."""

    def __init__(
        self,
        *,
        meeting_url: str,
        display_name: str,
        new_session: NewSession,
        names: tuple[str, ...] = (),
        join: JoinScript | None = None,
        chromium: str = CHROMIUM,
        join_timeout: float = 60.0,
    ) -> None:
        self.meeting_url = meeting_url
        self.display_name = display_name
        self.names = names or (display_name,)
        self.join_script = join or join_script_for(meeting_url)
        self.chromium = chromium
        self.join_timeout = join_timeout
        self._new_session = new_session
        self.status: MeetingStatus = "starting"
        self.error = ""
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_EVENTS)
        self.ticket: SessionTicket | None = None
        self.session_id: str | None = None  # the latest session (kept after leaving)
        self._http = httpx.AsyncClient(timeout=30)
        self._playwright: Any = None
        self._browser: Any = None
        self.page: Any = None

    async def start(self) -> None:
        try:
            from playwright.async_api import async_playwright
        except ImportError:
            raise MissingDependencyError(
                "the meeting bot needs Playwright: pip install 'talkie[meet]'"
            ) from None
        if not Path(self.chromium).exists():
            raise MissingDependencyError(f"the meeting bot needs Chromium at {self.chromium}")
        try:
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.chromium, headless=True, args=chromium_args()
            )
            context = await self._browser.new_context(viewport={"width": 1280, "height": 800})
            await context.expose_function("__talkieOffer", self._offer)
            await context.expose_function("__talkieMeetEvent", self._on_event)
            config = {"names": list(self.names)}
            await context.add_init_script(f"window.__talkieMeetConfig = {_js_json(config)};")
            await context.add_init_script(path=str(BOT_SCRIPT))
            self.page = await context.new_page()
            self.page.on("console", lambda m: log.debug("meeting page: %s", m.text))
            self.status = "joining"
            await self.page.goto(self.meeting_url, timeout=self.join_timeout * 1000)
            await asyncio.wait_for(
                self.join_script.join(self.page, self.display_name), self.join_timeout
            )
            # In: the character's connection must be up (the client asked for the camera).
            await self.page.wait_for_function(
                "() => window.__talkieMeet && window.__talkieMeet.status === 'live'",
                timeout=self.join_timeout * 1000,
            )
        except Exception as exc:
            self.status, self.error = "failed", _describe(exc)
            await self._close_browser()
            await self._end_session()
            raise MeetingError(f"could not join the meeting: {self.error}") from exc
        self.status = "joined"

    async def summary(self) -> dict[str, Any]:
        """What the page says about the character's connection and the meeting's audio."""
        if self.page is None:
            return {}
        found: dict[str, Any] = await self.page.evaluate(
            "() => window.__talkieMeet ? window.__talkieMeet.summary() : {}"
        )
        return found

    async def outbound(self) -> list[dict[str, Any]]:
        """The meeting's encoders sending the character's video: fps, size, what limits them."""
        if self.page is None:
            return []
        found: list[dict[str, Any]] = await self.page.evaluate(
            "() => window.__talkieMeet ? window.__talkieMeet.outbound() : []"
        )
        return found

    async def stop(self) -> None:
        """Leave the meeting (closing the browser hangs up) and end the session. Idempotent."""
        if self.status != "failed":
            self.status = "left"
        await self._close_browser()
        await self._end_session()
        await self._http.aclose()

    # -- what the page asks of Python ------------------------------------------------------

    async def _offer(self, sdp: str) -> dict[str, str]:
        if not isinstance(sdp, str) or len(sdp) > 100_000:
            raise MeetingError("the page sent no usable offer")
        await self._end_session()  # a reloaded page: its old connection is gone
        self.ticket = ticket = await self._new_session()
        self.session_id = ticket.session_id
        response = await self._http.post(
            ticket.base_url + ticket.offer_url,
            json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {ticket.token}"},
        )
        if response.status_code != 200:
            raise MeetingError(f"Talkie refused the connection: {response.text[:300]}")
        answer = response.json()
        return {"sdp": answer["sdp"], "type": answer["type"]}

    async def _on_event(self, event: Any) -> None:
        if isinstance(event, dict):
            self.events.append(event)
            if event.get("type") == "failed":
                log.warning("the character's connection failed: %s", event.get("message"))

    # -- cleanup -----------------------------------------------------------------------------

    async def _end_session(self) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is None:
            return
        try:
            await self._http.delete(
                f"{ticket.base_url}/v1/sessions/{ticket.session_id}",
                headers={"Authorization": f"Bearer {ticket.token}"},
            )
        except httpx.HTTPError as exc:  # the server is gone: nothing left to end
            log.info("could not end session %s: %s", ticket.session_id, exc)

    async def _close_browser(self) -> None:
        browser, self._browser = self._browser, None
        playwright, self._playwright = self._playwright, None
        self.page = None
        if browser is not None:
            try:
                await browser.close()
            except Exception as exc:  # already gone (crashed): nothing to close
                log.info("closing the bot's browser: %s", exc)
        if playwright is not None:
            await playwright.stop()


def _js_json(value: Any) -> str:
    import json

    # "</" cannot end a script here (it is not HTML), but keep the text inert anyway.
    return json.dumps(value).replace("</", "<\\/")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
