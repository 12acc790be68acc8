"""The HTTP API of the real server (fake conversations): JSON everywhere, clear 4xx errors."""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from live_client import connect
from live_fakes import FakeConversation
from live_server import LiveServer
from PIL import Image

from talkie.server.app import ServerOptions


def _error(r: httpx.Response, status: int, code: str | None = None) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    assert err["message"]
    return str(err["message"])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(side: int = 30_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def http(fake_server: LiveServer) -> Iterator[httpx.Client]:
    with fake_server.admin() as client:
        yield client


def _offer(http: httpx.Client, body: dict[str, Any], character_id: str = "astronaut") -> Any:
    """Create a session, then send ``body`` as its offer (with the session's token)."""
    r = http.post("/v1/sessions", json={"character_id": character_id})
    assert r.status_code == 201, r.text
    created = r.json()
    return http.post(
        created["offer_url"], json=body, headers={"Authorization": f"Bearer {created['token']}"}
    )


def test_health_and_characters(http: httpx.Client) -> None:
    health = http.get("/v1/health").json()
    assert health["status"] == "ok" and health["sessions"] == 0
    chars = http.get("/v1/characters").json()["characters"]
    sample = next(c for c in chars if c["id"] == "astronaut")
    assert sample["sample"] is True and sample["name"]
    r = http.get(sample["preview_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (640, 360)
    _error(http.get("/v1/characters/nobody/preview.jpg"), 404, "unknown_character")
    _error(http.get("/v1/nothing-here"), 404)
    index = http.get("/")
    assert index.status_code == 200 and "<video" in index.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"sdp": "hello", "type": "offer"}, "v=0"),
        ({"sdp": "v=0\r\nm=garbage\r\n", "type": "offer"}, "SDP"),
        ({"sdp": "v=0\r\n", "type": "answer"}, "offer"),
        ({"sdp": "", "type": "offer"}, "sdp"),
        ({"type": "offer"}, "sdp"),
        (
            {
                "type": "offer",
                "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n"
                "a=rtpmap:96 VP8/90000\r\n"
                "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n",
            },
            "SDP",
        ),
    ],
)
def test_malformed_offers_are_400(
    http: httpx.Client, fake_server: LiveServer, body: dict[str, str], needle: str
) -> None:
    message = _error(_offer(http, body), 400)
    assert needle.lower() in message.lower(), message
    assert len(fake_server.registry) == 0
    assert http.get("/v1/health").json()["status"] == "ok"


def test_offer_without_video_or_channel_is_400(http: httpx.Client) -> None:
    async def offer(video: bool, channel: bool) -> str:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if video:
            pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="sendrecv")
        if channel:
            pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        await pc.close()
        return sdp

    for video, channel, needle in [(False, True, "video"), (True, False, "data channel")]:
        sdp = asyncio.run(offer(video, channel))
        assert needle in _error(_offer(http, {"sdp": sdp, "type": "offer"}), 400)


def test_bad_session_requests(http: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    r = http.post("/v1/sessions", content=b"{not json", headers=headers)
    _error(r, 400, "invalid_request")
    _error(http.post("/v1/sessions", json={"character_id": "nobody"}), 404, "unknown_character")
    _error(http.delete("/v1/sessions/nope"), 404, "unknown_session")


def test_upload_a_photo_then_talk_to_it(http: httpx.Client, fake_server: LiveServer) -> None:
    from skimage import data

    photo = _png(np.ascontiguousarray(data.astronaut()[24:, ::-1]))  # a new image
    r = http.post(
        "/v1/characters",
        files={"image": ("me.png", photo, "image/png")},
        data={"name": "Mirror Nova"},
    )
    assert r.status_code == 201, r.text
    character = r.json()

    async def talk() -> None:
        session = await connect(fake_server.url, character["id"])
        try:
            await session.wait_video(3)
            assert FakeConversation.instances[-1].character.id == character["id"]
        finally:
            await session.close()

    asyncio.run(asyncio.wait_for(talk(), 30))


def test_session_limit_is_503() -> None:
    async def scenario(url: str) -> None:
        first = await connect(url, "astronaut")
        try:
            with pytest.raises(RuntimeError, match="503.*busy"):
                await connect(url, "astronaut")
        finally:
            await first.close()

    with LiveServer(
        options=ServerOptions(max_sessions=1), conversation_factory=FakeConversation
    ) as server:
        asyncio.run(asyncio.wait_for(scenario(server.url), 30))


def test_serve_command_announces_the_address_and_stops_on_ctrl_c() -> None:
    import signal
    import subprocess
    import sys

    script = (
        "import argparse, sys\n"
        "from talkie.server.cli import add_serve_command\n"
        "p = argparse.ArgumentParser(prog='talkie')\n"
        "add_serve_command(p.add_subparsers())\n"
        "args = p.parse_args(sys.argv[1:])\n"
        "sys.exit(args.handler(args))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "serve", "--port", "0", "--max-sessions", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line.startswith("Talkie is live at http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        health = httpx.get(url + "/v1/health", timeout=10).json()
        assert health["max_sessions"] == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_command_reports_a_busy_port(fake_server: LiveServer) -> None:
    import subprocess
    import sys

    port = fake_server.url.rsplit(":", 1)[1]
    script = (
        "import sys\n"
        "from talkie.errors import TalkieError\n"
        "from talkie.server.cli import serve\n"
        "try:\n"
        f"    serve(host='127.0.0.1', port={port})\n"
        "except TalkieError as exc:\n"
        "    print('ERR', exc); sys.exit(2)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot listen" in out.stdout, (out.stdout, out.stderr)


def test_client_that_never_connects_is_dropped() -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    from talkie.transport.webrtc import WebRtcOptions

    async def make_offer() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="recvonly")
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        await pc.close()  # never applies the answer: the server must give up on its own
        return sdp

    options = ServerOptions(webrtc=WebRtcOptions(connect_timeout=1.0))
    with LiveServer(options=options, conversation_factory=FakeConversation) as server:
        with server.admin() as admin:
            r = _offer(admin, {"sdp": asyncio.run(make_offer()), "type": "offer"})
            assert r.status_code == 200, r.text
        assert len(server.registry) == 1
        deadline = time.monotonic() + 10
        while len(server.registry) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.registry) == 0
        assert FakeConversation.instances[-1].closed


def test_shutdown_closes_live_sessions() -> None:
    server = LiveServer(conversation_factory=FakeConversation).start()

    async def scenario() -> None:
        session = await connect(server.url, "astronaut")
        try:
            await session.wait_video(2)
            assert len(server.registry) == 1
            await asyncio.to_thread(server.stop)  # with the client still connected
        finally:
            await session.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        if server.url:
            server.stop()
    assert FakeConversation.instances and all(c.closed for c in FakeConversation.instances)
    assert len(server.registry) == 0


def test_client_config(http: httpx.Client) -> None:
    config = http.get("/api/config").json()
    assert config["ice_servers"] == [] and config["max_upload_bytes"] > 1_000_000
    assert config["api_key"].startswith("pk_") and config["uploads"] is True
