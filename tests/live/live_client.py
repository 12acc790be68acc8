"""A Python WebRTC client (aiortc, no browser) that talks to the Talkie server like the page."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class SineTrack(MediaStreamTrack):
    """A microphone that plays a quiet 300 Hz tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, rate: int = 48_000) -> None:
        super().__init__()
        self._rate = rate
        self._n = 0
        self._t0: float | None = None

    def samples(self, start: int, count: int) -> np.ndarray:
        """int16 samples ``start`` .. ``start + count`` of what the microphone hears."""
        t = (np.arange(count) + start) / self._rate
        return (0.2 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        count = 960
        due = self._t0 + self._n / self._rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pcm = self.samples(self._n, count)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._n
        frame.time_base = fractions.Fraction(1, self._rate)
        self._n += count
        return frame


class SpeechTrack(SineTrack):
    """A microphone that says ``speech`` (int16 mono at ``rate``, e.g. a WAV of
    ``live_browser.make_question_wav``) once, then stays silent."""

    def __init__(self, speech: np.ndarray, rate: int = 48_000) -> None:
        super().__init__(rate)
        self._speech = np.asarray(speech, dtype=np.int16)

    def samples(self, start: int, count: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int16)
        part = self._speech[start : start + count]
        out[: len(part)] = part
        return out


@dataclass
class ClientSession:
    pc: RTCPeerConnection
    session_id: str
    answer_sdp: str
    token: str = ""  # the session token (hang up / read the transcript like the page)
    events: list[dict[str, Any]] = field(default_factory=list)
    video_frames: list[av.VideoFrame] = field(default_factory=list)
    video_count: int = 0
    audio_count: int = 0
    channel: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    channel_open: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, event: dict[str, Any] | str) -> None:
        self.channel.send(event if isinstance(event, str) else json.dumps(event))

    async def wait_event(self, pred: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events:
                if pred(ev):
                    return ev
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no matching event in {timeout} s; got {self.events[-10:]}")

    async def wait_video(self, frames: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.video_count < frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.video_count} video frames in {timeout} s")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def connect(
    base_url: str,
    character_id: str,
    *,
    microphone: bool | MediaStreamTrack = True,
    keep_frames: int = 0,
    decode: bool = True,
    api_key: str | None = None,
    session_fields: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> ClientSession:
    """Offer like the web page (recvonly video, sendrecv audio, data channel "events").
    ``microphone``: a quiet tone (True), none (False), or the track to send.

    Without ``api_key``, authenticates like the bundled page: its publishable key from
    ``/api/config``, sent with this server's own origin."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    if microphone:
        track = microphone if isinstance(microphone, MediaStreamTrack) else SineTrack()
        pc.addTransceiver(track, direction="sendrecv")
    else:
        pc.addTransceiver("audio", direction="recvonly")
    channel = pc.createDataChannel("events")
    tracks: list[MediaStreamTrack] = []
    pc.on("track", tracks.append)
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers ICE here
    try:
        body = await _signal(
            base_url, character_id, pc.localDescription.sdp, api_key, session_fields or {}, timeout
        )
    except BaseException:
        await pc.close()
        raise
    session = ClientSession(
        pc=pc, session_id=body["session_id"], answer_sdp=body["sdp"], token=body["token"]
    )
    session.channel = channel
    channel.on("message", lambda m: session.events.append(json.loads(m)))
    channel.on("open", session.channel_open.set)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type=body["type"]))

    async def drain(track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                session.video_count += 1
                if len(session.video_frames) < keep_frames and isinstance(frame, av.VideoFrame):
                    session.video_frames.append(frame)
            else:
                session.audio_count += 1

    for track in tracks:
        session.tasks.append(asyncio.ensure_future(drain(track)))
    return session


async def _signal(
    base_url: str,
    character_id: str,
    sdp: str,
    api_key: str | None,
    fields: dict[str, Any],
    timeout: float,
) -> Any:
    """Create a session, then send the offer with its token; returns the answer JSON."""
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:
        headers = {"Origin": base_url}
        if api_key is None:
            api_key = (await http.get("/api/config")).json()["api_key"]
        headers["Authorization"] = f"Bearer {api_key}"
        body = {"character_id": character_id, **fields}
        r = await http.post("/v1/sessions", json=body, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"POST /v1/sessions: {r.status_code} {r.text}")
        created = r.json()
        r = await http.post(
            created["offer_url"],
            json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"POST {created['offer_url']}: {r.status_code} {r.text}")
        body = r.json()
        body["token"] = created["token"]
        return body
