"""/v1/meetings: send a character into a browser meeting (``talkie.meet.bot``), see it, end it.

``POST /v1/meetings {character_id, url, name?, client?}`` starts a headless Chromium on this
server that joins the meeting as the character: 202 with the meeting (``joining``); it becomes
``joined`` or ``failed`` (with ``error``). ``DELETE`` leaves. Each meeting runs through an
ordinary Talkie session (its ``session_id``: transcript and traces as for any session), created
here for the caller's tenant, so the same limits and records apply.

Only secret keys with the sessions scope may start meetings (a publishable key is public, and
each meeting is a whole browser on this server); meetings are the tenant's own, like sessions.
The meeting page's scripts run on this server's network: addresses that are not public are
refused unless the server allows them (``ServerOptions.meetings_allow_private``, for tests and
a local room).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from talkie.brain.tools.netguard import (
    IPAddress,
    classify_address,
    is_loopback_name,
    parse_host,
)
from talkie.errors import TalkieError
from talkie.meet.bot import MeetingBot, SessionTicket
from talkie.meet.joins import join_script_for
from talkie.server.auth import Principal
from talkie.server.characters import require_rig
from talkie.server.context import Caller, Services, Svc, character_for
from talkie.server.errors import ApiError, errors
from talkie.server.models import ID, SessionCreate, Strict, utc

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/meetings", tags=["meetings"])
MAX_URL = 2000


class MeetingCreate(Strict):
    character_id: str = ID
    url: str = Field(min_length=8, max_length=MAX_URL, description="the meeting's web address")
    name: str | None = Field(
        default=None, min_length=1, max_length=60, description="shown in the meeting"
    )
    client: Literal["room", "google-meet", "teams", "zoom"] | None = Field(
        default=None, description="the meeting web client's join script (default: from the url)"
    )


class Meeting(BaseModel):
    id: str
    character_id: str
    url: str
    name: str
    client: str
    status: str  # joining | joined | left | failed
    error: str
    session_id: str | None
    created_at: Any


class MeetingList(BaseModel):
    meetings: list[Meeting]


@dataclass
class _Entry:
    id: str
    tenant: str
    character_id: str
    bot: MeetingBot
    created_at: float
    task: asyncio.Task[None] | None = None

    def view(self) -> Meeting:
        bot = self.bot
        return Meeting(
            id=self.id, character_id=self.character_id, url=bot.meeting_url,
            name=bot.display_name, client=bot.join_script.name, status=bot.status,
            error=bot.error, session_id=bot.session_id, created_at=utc(self.created_at),
        )  # fmt: skip


@dataclass
class Meetings:
    """The meetings of one server (in memory: a restart leaves every meeting)."""

    entries: dict[str, _Entry] = field(default_factory=dict)

    def active(self) -> int:
        return sum(
            1 for e in self.entries.values() if e.bot.status in ("starting", "joining", "joined")
        )

    async def close_all(self) -> None:
        await asyncio.gather(*(e.bot.stop() for e in self.entries.values()), return_exceptions=True)


def meetings_of(request: Request) -> Meetings:
    found = getattr(request.app.state, "meetings", None)
    if found is None:
        found = request.app.state.meetings = Meetings()
    return found


async def check_meeting_url(url: str, *, allow_private: bool) -> None:
    """400 unless ``url`` is http(s) to a public address (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "invalid_url", "the meeting address must be an http(s) URL")
    if allow_private:
        return
    try:
        name, literal = parse_host(parts.hostname)
    except ValueError:
        raise ApiError(400, "invalid_url", "the meeting address has a malformed host") from None
    if is_loopback_name(name):
        raise ApiError(400, "private_url", "meetings on this machine's own addresses are refused")
    addresses: list[IPAddress | None]
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, parts.port or 443)
        except OSError:
            raise ApiError(400, "invalid_url", f"{name[:100]!r} does not resolve") from None
        addresses = [parse_host(str(info[4][0]))[1] for info in infos]
    for address in addresses:
        reason = classify_address(address) if address is not None else "unknown"
        if reason is not None:
            raise ApiError(400, "private_url", f"the meeting address is {reason}: refused")


def _own_base_url(request: Request) -> str:
    """This server as the bot reaches it: the socket the request came in on (never the Host
    header, which is the client's word)."""
    server = request.scope.get("server") or ("127.0.0.1", 8000)
    host, port = server[0], server[1]
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _require_secret_key(who: Principal) -> None:
    who.require("sessions:create")
    if who.key is None or who.key.kind == "publishable":
        raise ApiError(403, "forbidden", "meetings need a secret API key (not a publishable one)")


@router.post(
    "",
    status_code=202,
    response_model=Meeting,
    responses=errors(400, 401, 403, 404, 409, 503),
    summary="Send a character into a browser meeting (joins in the background)",
)
async def create_meeting(body: MeetingCreate, who: Caller, svc: Svc, request: Request) -> Meeting:
    _require_secret_key(who)
    character = await character_for(svc, who, body.character_id)
    if character.disabled:
        raise ApiError(
            409, "character_disabled", f"{character.id} is switched off by an administrator"
        )
    require_rig(character)
    await check_meeting_url(body.url, allow_private=svc.options.meetings_allow_private)
    try:
        join = join_script_for(body.url, body.client)
    except TalkieError as exc:
        raise ApiError(400, "unknown_client", str(exc)) from None
    meetings = meetings_of(request)
    if meetings.active() >= svc.options.max_meetings:
        raise ApiError(503, "too_many_meetings", "this server is in as many meetings as it takes")
    tenant = who.tenant
    assert tenant is not None  # keys have tenants
    base_url = _own_base_url(request)
    persona_name = await _persona_name(svc, body.character_id)

    async def new_session() -> SessionTicket:
        # The same path as POST /v1/sessions, for this caller: its checks, limits and record.
        from talkie.server.routes_sessions import create_session

        created = await create_session(SessionCreate(character_id=body.character_id), who, svc)
        return SessionTicket(
            base_url, created.session.id, created.token, created.offer_url,
            [s.model_dump() if hasattr(s, "model_dump") else s for s in created.ice_servers],
        )  # fmt: skip

    bot = MeetingBot(
        meeting_url=body.url, display_name=body.name or persona_name, new_session=new_session,
        names=(persona_name,), join=join,
    )  # fmt: skip
    entry = _Entry("mt_" + secrets.token_hex(10), tenant, body.character_id, bot, time.time())
    meetings.entries[entry.id] = entry

    async def run() -> None:
        try:
            await bot.start()
        except TalkieError as exc:
            log.info("meeting %s: %s", entry.id, exc)

    entry.task = asyncio.create_task(run(), name=f"meeting-{entry.id}")
    return entry.view()


async def _persona_name(svc: Services, character_id: str) -> str:
    character = await svc.characters.load_async(character_id)
    return str(character.persona.name or character_id)


def _entry_for(request: Request, who: Principal, meeting_id: str) -> _Entry:
    entry = meetings_of(request).entries.get(meeting_id)
    if entry is None or (entry.tenant != who.tenant and not who.sees_every_tenant):
        raise ApiError(404, "unknown_meeting", f"no meeting {meeting_id[:80]!r}")
    return entry


@router.get("", response_model=MeetingList, responses=errors(401, 403), summary="Meetings")
async def list_meetings(who: Caller, request: Request) -> MeetingList:
    who.require("sessions:read")
    entries = meetings_of(request).entries.values()
    mine = [e.view() for e in entries if e.tenant == who.tenant or who.sees_every_tenant]
    return MeetingList(meetings=mine)


@router.get(
    "/{meeting_id}", response_model=Meeting, responses=errors(401, 403, 404), summary="A meeting"
)
async def get_meeting(meeting_id: str, who: Caller, request: Request) -> Meeting:
    who.require("sessions:read")
    return _entry_for(request, who, meeting_id).view()


@router.delete(
    "/{meeting_id}",
    response_model=Meeting,
    responses=errors(401, 403, 404),
    summary="Leave the meeting (ends its session); leaving twice changes nothing",
)
async def leave_meeting(meeting_id: str, who: Caller, request: Request) -> Meeting:
    who.require("sessions:end")
    entry = _entry_for(request, who, meeting_id)
    if entry.task is not None and not entry.task.done():
        entry.task.cancel()
        await asyncio.gather(entry.task, return_exceptions=True)
    await entry.bot.stop()
    return entry.view()
