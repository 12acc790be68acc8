"""`talkie meet`, `talkie whip`, `talkie virtual-devices` and `talkie room`.

``meet`` and ``whip`` talk to a running Talkie server (``--server``/``--key``, default
``$TALKIE_URL`` / ``$TALKIE_API_KEY``, else the admin key of a server on this machine) and run
until Ctrl-C (or ``--seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from talkie.errors import InvalidInputError


def add_meet_commands(subparsers: Any) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server", help="the Talkie server (default: $TALKIE_URL, else local)")
    server.add_argument(
        "--key", help="API key (default: $TALKIE_API_KEY, else the local admin key)"
    )
    server.add_argument("--character", required=True, help="the character's id")
    server.add_argument("--seconds", type=float, help="leave after this long (default: Ctrl-C)")

    meet = subparsers.add_parser(
        "meet", parents=[server],
        help="the character joins a browser meeting (headless Chromium) as a participant",
    )  # fmt: skip
    meet.add_argument("--url", required=True, help="the meeting's web address")
    meet.add_argument("--name", help="the name shown in the meeting (default: the character's)")
    meet.add_argument(
        "--client", help="join script: room, google-meet, teams, zoom (default: from the URL)"
    )
    meet.set_defaults(handler=_cmd_meet)

    whip = subparsers.add_parser(
        "whip", parents=[server], help="stream the character to a WHIP server (WebRTC egress)"
    )
    whip.add_argument("--url", required=True, help="the WHIP endpoint")
    whip.add_argument("--token", help="bearer token for the WHIP endpoint (or $TALKIE_WHIP_TOKEN)")
    whip.set_defaults(handler=_cmd_whip)

    devices = subparsers.add_parser(
        "virtual-devices",
        help="check (and with --character, feed) a virtual camera and microphone for desktop apps",
    )
    devices.add_argument("--video-device", help="the v4l2loopback device (default: the first)")
    devices.set_defaults(handler=_cmd_devices)

    room = subparsers.add_parser("room", help="run the small WebRTC meeting room (tests, demos)")
    room.add_argument("--host", default="127.0.0.1")
    room.add_argument("--port", type=int, default=8090)
    room.set_defaults(handler=_cmd_room)


def _client(args: argparse.Namespace) -> Any:
    from talkie.client import TalkieClient

    return TalkieClient(args.server, api_key=args.key)


def _cmd_meet(args: argparse.Namespace) -> int:
    from talkie.meet.bot import MeetingBot, SessionTicket
    from talkie.meet.joins import join_script_for

    if not args.url.startswith(("http://", "https://")):
        raise InvalidInputError(f"{args.url[:100]!r}: the meeting address must be http(s)://")
    client = _client(args)
    character = client.characters.get(args.character)  # fails early: unknown id, bad key
    join = join_script_for(args.url, args.client)
    name = args.name or character.name

    async def new_session() -> SessionTicket:
        created = await asyncio.to_thread(client.sessions.create, args.character)
        return SessionTicket(client.url, created.session.id, created.token, created.offer_url)

    async def run() -> None:
        bot = MeetingBot(
            meeting_url=args.url, display_name=name, new_session=new_session, join=join,
            names=(character.name,),
        )  # fmt: skip
        await bot.start()
        print(f"{name} joined {args.url} (session {bot.session_id}); Ctrl-C leaves", flush=True)
        try:
            await _wait(args.seconds)
        finally:
            await bot.stop()
            print(f"{name} left the meeting", flush=True)

    try:
        asyncio.run(run())
    finally:
        client.close()
    return 0


def _cmd_whip(args: argparse.Namespace) -> int:
    from talkie.meet.whip import run_whip_cli

    return run_whip_cli(args, _client(args))


def _cmd_devices(args: argparse.Namespace) -> int:
    from talkie.meet.devices import check_devices

    report = check_devices(video_device=args.video_device)
    print(report.text())
    return 0 if report.ready else 2


def _cmd_room(args: argparse.Namespace) -> int:
    from talkie.meet.room import main

    main(["--host", args.host, "--port", str(args.port)])
    return 0


async def _wait(seconds: float | None) -> None:
    if seconds is not None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:  # Ctrl-C
        print("leaving...", file=sys.stderr)
        raise
