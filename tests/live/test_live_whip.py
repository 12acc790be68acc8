"""WHIP egress against a WHIP endpoint run in the test (an aiortc answering side).

The character comes from the real server with the fake conversation (a test pattern at 24 fps
and its audio); ``stream_character`` relays it to the endpoint, which checks the request as a
WHIP server does (``application/sdp``, the bearer token), answers 201 with a Location, and counts
the frames it receives; DELETE ends it.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from live_server import LiveServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from talkie.meet.bot import SessionTicket
from talkie.meet.whip import WhipError, WhipPublisher, stream_character

TOKEN = "whip-secret"


class WhipEndpoint:
    def __init__(self) -> None:
        self.sessions: dict[str, RTCPeerConnection] = {}
        self.frames = {"video": 0, "audio": 0}
        self.sizes: set[tuple[int, int]] = set()
        self.deleted: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.app = Starlette(
            routes=[
                Route("/whip", self.create, methods=["POST"]),
                Route("/whip/{sid}", self.delete, methods=["DELETE"]),
            ]
        )

    async def create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response("unauthorized", 401)
        if request.headers.get("content-type") != "application/sdp":
            return Response("an SDP offer please", 415)
        pc = RTCPeerConnection()
        pc.on("track", lambda track: self.tasks.append(asyncio.create_task(self.count(track))))
        offer = (await request.body()).decode()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sid = secrets.token_hex(4)
        self.sessions[sid] = pc
        return Response(
            pc.localDescription.sdp, 201, media_type="application/sdp",
            headers={"Location": f"/whip/{sid}"},
        )  # fmt: skip

    async def count(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames[track.kind] += 1
            if track.kind == "video":
                self.sizes.add((frame.width, frame.height))

    async def delete(self, request: Request) -> Response:
        pc = self.sessions.pop(request.path_params["sid"], None)
        if pc is None:
            return Response("no such session", 404)
        self.deleted.append(request.path_params["sid"])
        await pc.close()
        return Response(status_code=200)


def ticket_maker(server: LiveServer) -> Any:
    async def new_session() -> SessionTicket:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            r = await http.post(
                "/v1/sessions", json={"character_id": "astronaut"},
                headers={"Authorization": f"Bearer {server.admin_key}"},
            )  # fmt: skip
            r.raise_for_status()
            body = r.json()
        return SessionTicket(server.url, body["session"]["id"], body["token"], body["offer_url"])

    return new_session


def test_the_character_streams_to_a_whip_endpoint_and_stops(fake_server: LiveServer) -> None:
    endpoint = WhipEndpoint()

    async def run() -> None:
        transport = httpx.ASGITransport(app=endpoint.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://whip.test") as http:
            publisher = WhipPublisher("http://whip.test/whip", token=TOKEN, http=http)

            async def until() -> None:
                for _ in range(300):  # until 2 s of both have arrived (or 30 s)
                    if endpoint.frames["video"] >= 48 and endpoint.frames["audio"] >= 100:
                        return
                    await asyncio.sleep(0.1)

            await stream_character(ticket_maker(fake_server), publisher, until=until)
        for task in endpoint.tasks:
            task.cancel()
        await asyncio.gather(*endpoint.tasks, return_exceptions=True)

    asyncio.run(run())
    assert endpoint.frames["video"] >= 48 and endpoint.frames["audio"] >= 100, endpoint.frames
    assert (1280, 720) in endpoint.sizes, endpoint.sizes
    assert len(endpoint.deleted) == 1 and not endpoint.sessions  # DELETE ended it


def test_a_refusing_whip_server_is_a_clear_error() -> None:
    endpoint = WhipEndpoint()

    async def run() -> str:
        transport = httpx.ASGITransport(app=endpoint.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://whip.test") as http:
            publisher = WhipPublisher("http://whip.test/whip", token="wrong", http=http)
            from aiortc.mediastreams import AudioStreamTrack

            with pytest.raises(WhipError) as err:
                await publisher.publish(AudioStreamTrack())
            await publisher.stop()
            return str(err.value)

    assert "401" in asyncio.run(run())
    with pytest.raises(Exception, match="http"):
        WhipPublisher("ftp://example.org/whip")
