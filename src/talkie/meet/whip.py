"""WHIP egress: the character's live video and voice, published to any WHIP server.

WHIP (RFC 9725) is WebRTC ingest over one HTTP exchange: POST the SDP offer
(``Content-Type: application/sdp``, optionally ``Authorization: Bearer TOKEN``), get ``201
Created`` with the answer and a ``Location`` (the session resource); DELETE that resource to
stop. SFUs (Janus, LiveKit, mediamtx...), streaming services and OBS take it.

``CharacterFeed`` is a Python WebRTC client of a Talkie session (aiortc, the same offer as the
web page: video received, a silent microphone sent, the "events" data channel with its
heartbeat) whose received tracks are relayed (``MediaRelay``) to ``WhipPublisher``.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin

import httpx
import numpy as np

from talkie.errors import InvalidInputError, TalkieError
from talkie.meet.bot import SessionTicket

log = logging.getLogger(__name__)

__all__ = ["CharacterFeed", "WhipError", "WhipPublisher", "run_whip_cli", "stream_character"]

HEARTBEAT_S = 1.0


class WhipError(TalkieError):
    """The WHIP server refused or failed; the message says what it answered."""


def _silent_track() -> Any:
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class SilentMicrophone(MediaStreamTrack):
        """20 ms frames of silence in real time: the session's microphone (nobody talks)."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._n = 0
            self._t0: float | None = None

        async def recv(self) -> av.AudioFrame:
            if self.readyState != "live":
                raise MediaStreamError
            self._t0 = self._t0 or time.monotonic()
            await asyncio.sleep(max(0.0, self._t0 + self._n / 48_000 - time.monotonic()))
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 960), np.int16), format="s16", layout="mono"
            )
            frame.sample_rate = 48_000
            frame.pts = self._n
            frame.time_base = fractions.Fraction(1, 48_000)
            self._n += 960
            return frame

    return SilentMicrophone()


class CharacterFeed:
    """The character's live tracks from a Talkie session. ``await open()`` -> (video, audio)."""

    def __init__(self, new_session: Callable[[], Awaitable[SessionTicket]]) -> None:
        self._new_session = new_session
        self.pc: Any = None
        self.ticket: SessionTicket | None = None
        self.events: list[dict[str, Any]] = []
        self._heartbeat: asyncio.Task[None] | None = None

    async def open(self, timeout: float = 30.0) -> tuple[Any, Any]:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        self.ticket = ticket = await self._new_session()
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver(_silent_track(), direction="sendrecv")
        channel = pc.createDataChannel("events")
        channel.on("message", lambda m: self.events.append(json.loads(m)))
        tracks: dict[str, Any] = {}
        pc.on("track", lambda track: tracks.setdefault(track.kind, track))
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=timeout) as http:
            r = await http.post(
                ticket.base_url + ticket.offer_url,
                json={"sdp": pc.localDescription.sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {ticket.token}"},
            )
        if r.status_code != 200:
            await self.close()
            raise TalkieError(f"Talkie refused the connection: {r.text[:300]}")
        answer = r.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

        async def heartbeat() -> None:  # the server frees a silent client's slot
            while True:
                if channel.readyState == "open":
                    channel.send(json.dumps({"type": "ping", "t": time.monotonic()}))
                await asyncio.sleep(HEARTBEAT_S)

        self._heartbeat = asyncio.create_task(heartbeat(), name="talkie-feed-heartbeat")
        if "video" not in tracks or "audio" not in tracks:
            await self.close()
            raise TalkieError("the session sent no video or no audio track")
        return tracks["video"], tracks["audio"]

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            async with httpx.AsyncClient(timeout=10) as http:
                try:
                    await http.delete(
                        f"{ticket.base_url}/v1/sessions/{ticket.session_id}",
                        headers={"Authorization": f"Bearer {ticket.token}"},
                    )
                except httpx.HTTPError as exc:
                    log.info("could not end session %s: %s", ticket.session_id, exc)


class WhipPublisher:
    """Publishes tracks to one WHIP endpoint. ``http``: an ``httpx.AsyncClient`` to use (tests
    pass one bound to an in-process app); ``token``: the endpoint's bearer token."""

    def __init__(
        self, endpoint: str, *, token: str | None = None, http: httpx.AsyncClient | None = None
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidInputError(f"{endpoint[:100]!r}: a WHIP endpoint is an http(s) URL")
        self.endpoint = endpoint
        self.token = token
        self._http = http or httpx.AsyncClient(timeout=30)
        self._owns_http = http is None
        self.pc: Any = None
        self.resource: str | None = None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def publish(self, *tracks: Any) -> None:
        """Offer ``tracks`` (sendonly) and apply the server's answer."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for track in tracks:
            pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers ICE here
        try:
            r = await self._http.post(
                self.endpoint,
                content=pc.localDescription.sdp.encode(),
                headers=self._headers("application/sdp"),
            )
        except httpx.HTTPError as exc:
            await pc.close()
            raise WhipError(f"the WHIP server could not be reached: {exc}") from exc
        if r.status_code != 201:
            await pc.close()
            raise WhipError(f"the WHIP server answered {r.status_code}: {r.text[:300]}")
        location = r.headers.get("location")
        if not location:
            await pc.close()
            raise WhipError("the WHIP server gave no Location for the session")
        self.resource = urljoin(self.endpoint, location)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))

    async def stop(self) -> None:
        """DELETE the WHIP session and close the connection (idempotent)."""
        resource, self.resource = self.resource, None
        if resource is not None:
            try:
                await self._http.delete(resource, headers=self._headers())
            except httpx.HTTPError as exc:
                log.info("WHIP DELETE failed: %s", exc)
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        if self._owns_http:
            await self._http.aclose()


async def stream_character(
    new_session: Callable[[], Awaitable[SessionTicket]],
    publisher: WhipPublisher,
    *,
    until: Callable[[], Awaitable[None]],
) -> None:
    """Publish a new session's character to ``publisher`` until ``until()`` returns."""
    from aiortc.contrib.media import MediaRelay

    feed = CharacterFeed(new_session)
    relay = MediaRelay()
    try:
        video, audio = await feed.open()
        await publisher.publish(relay.subscribe(video), relay.subscribe(audio))
        await until()
    finally:
        await publisher.stop()
        await feed.close()


def run_whip_cli(args: argparse.Namespace, client: Any) -> int:
    """``talkie whip --character ID --url ENDPOINT [--token T] [--seconds S]``."""
    token = args.token or os.environ.get("TALKIE_WHIP_TOKEN")
    client.characters.get(args.character)  # fails early: unknown id, bad key
    publisher = WhipPublisher(args.url, token=token)

    async def new_session() -> SessionTicket:
        created = await asyncio.to_thread(client.sessions.create, args.character)
        return SessionTicket(client.url, created.session.id, created.token, created.offer_url)

    async def until() -> None:
        print(f"streaming {args.character} to {args.url}; Ctrl-C stops", flush=True)
        if args.seconds is not None:
            await asyncio.sleep(args.seconds)
        else:
            await asyncio.Event().wait()

    try:
        asyncio.run(stream_character(new_session, publisher, until=until))
    finally:
        client.close()
    return 0
