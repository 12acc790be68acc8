"""One browser <-> one live conversation over WebRTC (aiortc).

The client offers (no trickle ICE: it waits for gathering to complete) with recv-only video,
send-receive audio (its microphone) and a data channel named ``events``; ``WebRtcPeer.answer``
returns the complete answer. Up to two more video m-lines, send-only from the client, are its
camera and its shared screen, in that order (``VIDEO_INPUTS``): the page offers them from the
start, with no track until the user switches one on (``RTCRtpSender.replaceTrack``: no
renegotiation), and their frames go to the conversation's eyes (``pump_seen``).
Video goes out as H.264 (preferred; VP8 if the client lacks it),
audio as Opus, both stamped from the conversation's media clock. The data channel carries the
conversation's events out (JSON text) and the client's events in.

Lifetime: the peer owns the conversation, the peer connection and every task it starts. Any of
"connection failed/closed", "data channel closed", "never connected within the timeout", "the
client's heartbeat stopped", the session's maximum length or idle timeout (after a spoken
goodbye; see ``lifetime.py``), ``close()`` tears everything down (each step bounded by a timeout)
and calls ``on_closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    unpack_remb_fci,
)

from talkie.errors import InvalidInputError
from talkie.messages import AudioChunk
from talkie.session.contract import LiveConversation
from talkie.session.events import SessionEvent
from talkie.transport.encoder import EncoderOptions, X264Encoder
from talkie.transport.lifetime import CHECK_INTERVAL, Ending, SessionLimits
from talkie.transport.preroll import MicSplice
from talkie.transport.tracks import (
    ConversationAudioTrack,
    ConversationVideoTrack,
    MicrophoneClock,
    pump_microphone,
    pump_seen,
)

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "events"
MAX_SDP_CHARS = 100_000
MAX_EVENT_CHARS = 64_000
PENDING_EVENTS = 256  # events kept while the data channel is not open yet
VIDEO_INPUTS = ("camera", "screen")  # the client's send-only video m-lines, in offer order


@dataclass(frozen=True)
class IceServer:
    """A STUN/TURN server (e.g. ``turn:turn.example.org:3478``) with optional credentials."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class WebRtcOptions:
    """Per-peer settings. No ICE servers by default: loopback and LAN need none."""

    ice_servers: tuple[IceServer, ...] = ()
    video: EncoderOptions = field(default_factory=EncoderOptions)
    prefer_h264: bool = True
    connect_timeout: float = 20.0  # answer -> connected, else the session is closed
    close_timeout: float = 5.0  # bound on each teardown step
    limits: SessionLimits = field(default_factory=SessionLimits)
    # The client promised the audio it recorded while connecting (see talkie.transport.preroll).
    mic_preroll: bool = False


class WebRtcPeer:
    """Answers one client's offer and streams one conversation to it."""

    def __init__(
        self,
        conversation: LiveConversation,
        *,
        options: WebRtcOptions | None = None,
        session_id: str | None = None,
        on_closed: Callable[[WebRtcPeer], None] | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
    ) -> None:
        self.conversation = conversation
        self.options = options or WebRtcOptions()
        self.session_id = session_id or uuid.uuid4().hex
        self.created_at = time.monotonic()
        self.close_reason = ""
        self._on_closed = on_closed
        self._on_event = on_event  # sees every conversation event (the server records turns)
        self._pc: RTCPeerConnection | None = None
        self._video = ConversationVideoTrack(conversation, on_failure=self._schedule_close)
        self._audio = ConversationAudioTrack(conversation, on_failure=self._schedule_close)
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque(maxlen=PENDING_EVENTS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._close_task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._started_at: float | None = None  # monotonic time of the conversation's clock 0
        self._connected = False
        self._remote_audio: list[MediaStreamTrack] = []
        self._remote_video: list[MediaStreamTrack] = []  # the user's camera, then screen
        self._splice = MicSplice(
            conversation.push_audio, expected=self.options.mic_preroll, media_now=self._media_now
        )
        self.video_codec = ""
        self.events_sent = 0
        self.mic_seconds = 0.0
        self._heartbeat = False  # the client pings: its silence means it is gone
        self._last_heard = time.monotonic()  # the client's last message or microphone audio
        self.ending: Ending | None = None  # set when the session ends on its own

    # -- public -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def encoder(self) -> X264Encoder | None:
        return self._video.encoder

    async def answer(self, offer_sdp: str, offer_type: str = "offer") -> RTCSessionDescription:
        """Apply the client's offer, start the conversation, return the complete answer.

        Raises ``InvalidInputError`` (HTTP 400) for anything wrong with the offer; the peer is then
        closed. Call once.
        """
        if self._pc is not None or self._closing:
            raise RuntimeError("answer() can be called once, before close()")
        try:
            offer, media = check_offer(offer_sdp, offer_type)
            self._pc = pc = RTCPeerConnection(
                RTCConfiguration(
                    iceServers=[
                        RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                        for s in self.options.ice_servers
                    ]
                )
            )
            pc.on("connectionstatechange", self._on_connection_state)
            pc.on("datachannel", self._on_datachannel)
            pc.on("track", self._on_track)
            video = pc.addTransceiver(self._video, direction="sendonly")
            video.setCodecPreferences(_video_codec_preferences(self.options.prefer_h264))
            if "audio" in media:
                pc.addTransceiver(self._audio, direction="sendrecv")
            try:
                await pc.setRemoteDescription(offer)
            except Exception as exc:  # aiortc raises ValueError, OperationError, KeyError...
                raise InvalidInputError(f"the SDP offer cannot be used: {_short(exc)}") from exc
            await self.conversation.start()
            self._started_at = time.monotonic()
            for track in self._remote_audio:
                self._spawn(self._pump(track, MicrophoneClock(self._started_at)), "microphone")
            for source, track in zip(VIDEO_INPUTS, self._remote_video, strict=False):
                self._spawn(
                    pump_seen(track, source, self.conversation, self._started_at), source
                )
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            local = pc.localDescription
            self.video_codec = _negotiated_codec(local.sdp, "video")
            if self.video_codec.lower() == "video/h264":
                self._video.encoder = X264Encoder(options=self.options.video)
                _forward_rtcp(video.sender, self._video.encoder)
            self._spawn(self._relay_events(), "events")
            self._spawn(self._connect_watchdog(), "connect-timeout")
            self._spawn(self._heartbeat_watchdog(), "heartbeat")
            self._spawn(self._limits_watchdog(), "limits")
            if self._splice.waiting:
                self._spawn(self._preroll_watchdog(), "preroll")
        except BaseException:
            await self.close("answer failed")
            raise
        log.info("session %s: answered (video %s)", self.session_id[:8], self.video_codec)
        return local

    async def close(self, reason: str = "closed") -> None:
        """Tear down: cancel tasks, close the conversation and the connection. Idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        log.info("session %s: closing (%s)", self.session_id[:8], reason)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.options.close_timeout)
        self._video.stop()
        self._audio.stop()
        # The connection first: its senders stop pulling frames from the conversation.
        if self._pc is not None:
            await self._bounded(self._pc.close(), "pc.close")
        await self._bounded(self.conversation.close(), "conversation.close")
        if self._video.encoder is not None:
            self._video.encoder.close()
        self._closed.set()
        if self._on_closed is not None:
            try:
                self._on_closed(self)
            except Exception:
                log.exception("on_closed callback failed")

    def stats(self) -> dict[str, Any]:
        """A small snapshot for the API, metrics and tests."""
        enc = self._video.encoder
        encode_ms = sorted(enc.encode_ms) if enc is not None else []
        return {
            "session_id": self.session_id,
            "connection": self._pc.connectionState if self._pc is not None else "new",
            "video_codec": self.video_codec,
            "video_frames": self._video.frames_sent,
            # Frames the conversation handed out late or skipped (its own count, if it keeps one).
            "late_frames": int(getattr(self.conversation, "late_frames", 0) or 0),
            # Frames that showed the previous picture again: the renderer was behind.
            "repeated_frames": int(getattr(self.conversation, "repeated_frames", 0) or 0),
            "video_bitrate": enc.bitrate if enc is not None else None,  # its ceiling
            "video_send_bps": round(enc.send_rate()) if enc is not None else None,
            "video_qp": enc.qp if enc is not None else None,
            "encode_ms_median": encode_ms[len(encode_ms) // 2] if encode_ms else None,
            "encode_ms_p95": encode_ms[int(len(encode_ms) * 0.95)] if encode_ms else None,
            "mic_seconds": round(self.mic_seconds, 3),
            "mic_preroll": self._splice.outcome,  # none, waiting, complete, empty, no header...
            "mic_preroll_s": round(self._splice.heard_s, 3),
            # cut off the preroll's end: the live audio's beginning repeated it
            "mic_preroll_repeated_s": round(self._splice.repeated_s, 3),
            "events_sent": self.events_sent,
            "age": round(time.monotonic() - self.created_at, 3),
        }

    # -- tasks ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"talkie-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error(
                "session %s: task %s failed", self.session_id[:8], task.get_name(), exc_info=exc
            )
            self._schedule_close(f"{task.get_name()} failed")

    def _schedule_close(self, reason: str) -> None:
        """Close from a callback or a media loop (never await close() from an owned task)."""
        if self._closing or self._close_task is not None:
            return
        self._close_task = asyncio.get_running_loop().create_task(
            self.close(reason), name="talkie-close"
        )

    async def _bounded(self, awaitable: Coroutine[Any, Any, Any], what: str) -> None:
        try:
            await asyncio.wait_for(awaitable, self.options.close_timeout)
        except TimeoutError:
            log.warning("session %s: %s timed out", self.session_id[:8], what)
        except Exception:
            log.exception("session %s: %s failed", self.session_id[:8], what)

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(self.options.connect_timeout)
        if not self._connected:
            log.warning("session %s: the client never connected", self.session_id[:8])
            self._schedule_close("connect timeout")

    async def _heartbeat_watchdog(self) -> None:
        timeout = self.options.limits.heartbeat_timeout
        checked = time.monotonic()
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            now = time.monotonic()
            stalled = now - checked - CHECK_INTERVAL
            checked = now
            if stalled > 0.5:
                # This process was not running (an overloaded machine): the client's pings may
                # be waiting unread. Silence counts only while we were listening.
                self._last_heard += stalled
            if self._heartbeat and now - self._last_heard > timeout:
                log.info("session %s: the client went silent", self.session_id[:8])
                self._schedule_close(f"client went silent (no heartbeat for {timeout:g} s)")
                return

    def _media_now(self) -> float:
        return 0.0 if self._started_at is None else time.monotonic() - self._started_at

    async def _preroll_watchdog(self) -> None:
        """Stop holding the live microphone if the promised preroll does not come."""
        while self._splice.waiting:
            await asyncio.sleep(0.25)
            self._splice.check()
        log.info(
            "session %s: preroll %s (%.2f s heard)",
            self.session_id[:8], self._splice.outcome, self._splice.heard_s,
        )  # fmt: skip

    async def _limits_watchdog(self) -> None:
        """Maximum length and idle timeout: tell the page, say goodbye, hang up."""
        limits = self.options.limits
        assert self._started_at is not None
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            elapsed = time.monotonic() - self._started_at  # on the conversation's media clock
            idle = elapsed - self.conversation.last_user_activity
            ending = limits.ending(elapsed=elapsed, idle=idle)
            if ending is not None:
                break
        self.ending = ending
        log.info("session %s: ending (%s)", self.session_id[:8], ending.close_reason)
        self._send_text(json.dumps(
            {"type": "session_end", "reason": ending.reason, "message": ending.message}
        ))  # fmt: skip
        try:
            await asyncio.wait_for(
                self.conversation.farewell(ending.farewell), limits.farewell_timeout
            )
            await asyncio.sleep(0.3)  # the last audio frames are still on their way
        except TimeoutError:
            log.warning("session %s: the goodbye took too long", self.session_id[:8])
        self._schedule_close(ending.close_reason)

    async def _relay_events(self) -> None:
        async for event in self.conversation.events():
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:
                    log.exception("session %s: on_event callback failed", self.session_id[:8])
            wire = event.to_json()
            self._send_text(json.dumps(wire, default=_json_default, separators=(",", ":")))

    # -- aiortc callbacks -----------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        pc = self._pc
        if pc is None:
            return
        state = pc.connectionState
        log.debug("session %s: connection %s", self.session_id[:8], state)
        if state == "connected":
            self._connected = True
            self._splice.connected()
        elif state in ("failed", "closed"):
            self._schedule_close(f"connection {state}")

    def _on_track(self, track: MediaStreamTrack) -> None:
        # Emitted inside setRemoteDescription, before the conversation's clock starts: the
        # microphone is pumped once it has (see answer()).
        if track.kind == "audio" and not self._closing:
            self._remote_audio.append(track)
        elif track.kind == "video" and not self._closing and self._pc is not None:
            # Only the client's own video m-lines (not a receiver on our outgoing video's).
            ours = [t for t in self._pc.getTransceivers() if t.sender.track is self._video]
            if not any(t.receiver.track is track for t in ours):
                self._remote_video.append(track)

    async def _pump(self, track: MediaStreamTrack, clock: MicrophoneClock) -> None:
        await pump_microphone(track, self._splice.live, clock, self._count_mic)

    def _count_mic(self, chunk: AudioChunk) -> None:
        self.mic_seconds += chunk.duration
        self._last_heard = time.monotonic()

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self._channel is not None:
            log.info("session %s: ignoring data channel %r", self.session_id[:8], channel.label)
            return
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._schedule_close("data channel closed"))
        if channel.readyState == "open":
            self._flush_pending()
        else:
            channel.on("open", self._flush_pending)

    def _on_message(self, message: str | bytes) -> None:
        self._last_heard = time.monotonic()  # anything at all: the client is alive
        if isinstance(message, bytes) and self._splice.takes_binary:
            try:
                self._splice.data(message)
            except ValueError as exc:
                self._send_error(str(exc))
            return
        try:
            text = message.decode("utf-8") if isinstance(message, bytes) else message
        except UnicodeDecodeError:
            self._send_error("client events must be UTF-8 JSON text")
            return
        if len(text) > MAX_EVENT_CHARS:
            self._send_error(f"client event too long ({len(text)} characters)")
            return
        try:
            event = json.loads(text)
        except ValueError as exc:
            self._send_error(f"client event is not valid JSON: {exc}")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._send_error('a client event must be a JSON object with a "type"')
            return
        if event["type"] == "ping":  # answered here: lets the client measure round trips
            self._heartbeat = True  # ...and from now on, its silence means it is gone
            self._send_text(json.dumps({"type": "pong", "t": event.get("t")}))
            return
        if event["type"] == "preroll":  # the microphone before the connection (preroll.py)
            try:
                self._splice.header(event)
            except ValueError as exc:
                self._send_error(str(exc))
            return
        try:
            self.conversation.handle_client_event(event)
        except ValueError as exc:
            self._send_error(str(exc) or "invalid client event")
        except Exception:
            log.exception("session %s: handling a client event failed", self.session_id[:8])
            self._send_error("the server could not handle that event")

    # -- sending --------------------------------------------------------------------------------

    def _send_error(self, message: str) -> None:
        self._send_text(json.dumps({"type": "error", "message": message}))

    def _send_text(self, text: str) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            self._pending.append(text)
            return
        channel.send(text)
        self.events_sent += 1

    def _flush_pending(self) -> None:
        channel = self._channel
        while self._pending and channel is not None and channel.readyState == "open":
            channel.send(self._pending.popleft())
            self.events_sent += 1


def check_offer(sdp: object, sdp_type: object) -> tuple[RTCSessionDescription, dict[str, str]]:
    """Validate a client's offer cheaply (before any session is created).

    Returns the description and its media kinds -> directions; raises ``InvalidInputError``.
    """
    offer = _offer_description(sdp, sdp_type)
    return offer, _parse_media(offer.sdp)


def _offer_description(sdp: object, sdp_type: object) -> RTCSessionDescription:
    if sdp_type != "offer":
        raise InvalidInputError(f'the session description type must be "offer", not {sdp_type!r}')
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidInputError("the SDP offer is empty; send the browser's offer.sdp")
    if len(sdp) > MAX_SDP_CHARS:
        raise InvalidInputError(f"the SDP offer is too long ({len(sdp)} characters)")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidInputError('the SDP offer is malformed: it must start with "v=0"')
    return RTCSessionDescription(sdp=sdp, type="offer")


def _parse_media(sdp: str) -> dict[str, str]:
    """Media kinds in the offer -> their direction; checks what the client must offer."""
    try:
        parsed = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:
        raise InvalidInputError(f"the SDP offer is malformed: {_short(exc)}") from exc
    media: dict[str, str] = {}
    for m in parsed.media:  # the first m-line of each kind (more video ones are inputs)
        media.setdefault(m.kind, m.direction or "sendrecv")
    if media.get("video") not in ("recvonly", "sendrecv"):
        raise InvalidInputError("the SDP offer must receive video (a recvonly video m-line)")
    inputs = sum(1 for m in parsed.media if m.kind == "video") - 1
    if inputs > len(VIDEO_INPUTS):
        raise InvalidInputError(
            f"the SDP offer has {inputs + 1} video m-lines; at most {len(VIDEO_INPUTS) + 1} "
            "(the character's video, then the user's camera and screen)"
        )
    if "application" not in media:
        raise InvalidInputError(
            f'the SDP offer has no data channel; create one named "{EVENTS_CHANNEL}"'
        )
    return media


def _negotiated_codec(sdp: str, kind: str) -> str:
    for m in aiortc_sdp.SessionDescription.parse(sdp).media:
        if m.kind == kind and m.rtp.codecs:
            return m.rtp.codecs[0].mimeType
    return ""


def _video_codec_preferences(prefer_h264: bool) -> list[Any]:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
    rtx = [c for c in codecs if c.mimeType.lower() == "video/rtx"]
    other = [c for c in codecs if c not in h264 and c not in rtx]
    return (h264 + other if prefer_h264 else other + h264) + rtx


def _forward_rtcp(sender: RTCRtpSender, encoder: X264Encoder) -> None:
    """Keyframe requests and bandwidth estimates reach our encoder, not only aiortc's.

    aiortc only honours them for frames it encodes itself; we hand it finished packets.
    """
    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                encoder.request_keyframe()
            elif packet.fmt == RTCP_PSFB_APP:
                with contextlib.suppress(ValueError):  # APP packets other than REMB
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    if sender._ssrc in ssrcs:
                        encoder.set_target_bitrate(bitrate)
        await original(packet)

    setattr(sender, "_handle_rtcp_packet", handle)  # noqa: B010 - instance override on purpose


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return tolist()
    return str(value)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
