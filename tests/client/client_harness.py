"""The real Talkie server (uvicorn, real app and database) in a background thread, with a tiny
fake conversation so sessions start without models."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from talkie.messages import AudioChunk, VideoFrame
from talkie.server.app import ServerOptions
from talkie.server.cli import make_server
from talkie.session.contract import AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE
from talkie.session.events import SessionEvent, TurnFinished

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "samples" / "astronaut.png"
TURN_TEXT = ("hello there", "Hi! I'm the test character.")


class TinyConversation:
    """A ``LiveConversation`` that reports one finished turn as soon as it starts (so the server
    writes a transcript and a trace through its real pipeline) and sends blank media."""

    def __init__(self, character: Any = None) -> None:
        self.character = character
        self._events: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._t0 = time.monotonic()

    async def start(self) -> None:
        now = time.time()
        self._events.put_nowait(
            TurnFinished(
                t=0.0, turn=1, user_text=TURN_TEXT[0], typed=True, said=TURN_TEXT[1],
                started_at=now - 1.0, ended_at=now,
                trace={"latency": 0.42, "marks": {"speech_end": 1.0, "answer_start": 1.42}},
            )
        )  # fmt: skip

    async def close(self) -> None:
        self._events.put_nowait(None)

    def push_audio(self, chunk: AudioChunk) -> None:
        pass

    def wants_frame(self, source: str) -> bool:
        return False  # this fake has no eyes

    def push_frame(self, frame: Any) -> None:
        pass

    def media_time(self) -> float:
        return time.monotonic() - self._t0

    async def next_video_frame(self, lead: float = 0.0) -> VideoFrame:
        await asyncio.sleep(1 / 24)
        return VideoFrame(np.zeros((720, 1280, 3), np.uint8), pts=time.monotonic() - self._t0)

    async def next_audio_frame(self) -> AudioChunk:
        await asyncio.sleep(AUDIO_FRAME_SAMPLES / AUDIO_SAMPLE_RATE)
        samples = np.zeros(AUDIO_FRAME_SAMPLES, np.float32)
        return AudioChunk(samples, AUDIO_SAMPLE_RATE, pts=time.monotonic() - self._t0)

    async def events(self) -> AsyncIterator[SessionEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    def handle_client_event(self, event: dict[str, Any]) -> None:
        pass


class ThreadedServer:
    """``with ThreadedServer(data_dir) as server:`` -> ``server.url`` (a free 127.0.0.1 port)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server = make_server(
            host="127.0.0.1", port=0, announce=False,
            options=ServerOptions(data_dir=data_dir, request_burst=1000),
            conversation_factory=TinyConversation,
        )  # fmt: skip
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="talkie-client-tests",
            daemon=True,
        )  # fmt: skip
        self.url = ""

    @property
    def app(self) -> Any:
        return self._server.config.app

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self._server.port}"
        httpx.get(self.url + "/v1/health", timeout=5).raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def offer_sdp() -> str:
    """A real WebRTC offer like the web page's (aiortc): recvonly video and audio, a data
    channel. The peer is closed right away: the server answers without the client connecting."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = str(pc.localDescription.sdp)
        await pc.close()
        return sdp

    return asyncio.run(make())
