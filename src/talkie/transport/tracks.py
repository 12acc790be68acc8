"""aiortc media tracks fed by a live conversation, and the microphone in the other direction.

The conversation paces its own frames (``next_*_frame`` returns no earlier than the frame's
presentation time), so the tracks just convert and stamp RTP timestamps from the frames' ``pts``
on the conversation's media clock: audio and video share one clock.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from talkie.messages import AudioChunk, SeenFrame
from talkie.session.contract import AUDIO_SAMPLE_RATE, VIDEO_CLOCK_RATE, LiveConversation
from talkie.transport.encoder import X264Encoder

log = logging.getLogger(__name__)

AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

# Called when a media loop hits an unexpected error: the peer tears the session down.
FailureHandler = Callable[[str], None]

# H.264 frames are taken this long before their time, encoded, then sent on time: aiortc sends
# what recv() returns at once, so encoding after the frame's moment sent every frame late by
# the encoder's time and jitter (16 ms median, 30 ms p95 at 720p; 1.1 and 2.2 ms with the lead:
# bench/video_lead.py). Below the answer's start margin (SessionOptions.start_margin, 60 ms),
# so the first mouth frames are still re-rendered when an answer is placed.
ENCODE_LEAD_S = 0.04


class ConversationVideoTrack(MediaStreamTrack):
    """Outgoing video: the conversation's RGB frames, encoded to H.264 packets here (or handed to
    aiortc as ``av.VideoFrame`` when the client negotiated another codec, e.g. VP8)."""

    kind = "video"

    def __init__(self, conversation: LiveConversation, *, on_failure: FailureHandler) -> None:
        super().__init__()
        self._conversation = conversation
        self._on_failure = on_failure
        self.encoder: X264Encoder | None = None  # set by the peer once H.264 is negotiated
        self.frames_sent = 0
        self.first_frame_at: float | None = None  # time.monotonic() of the first frame sent

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        conversation = self._conversation
        try:
            encoder = self.encoder
            if encoder is not None:
                packets: list[av.Packet] = []
                while not packets:  # zerolatency emits one packet per frame; be safe anyway
                    frame = await conversation.next_video_frame(lead=ENCODE_LEAD_S)
                    pts = round(frame.pts * VIDEO_CLOCK_RATE)
                    packets = await asyncio.to_thread(encoder.encode, frame.image, pts)
                wait = frame.pts - conversation.media_time()
                if wait > 0:
                    await asyncio.sleep(wait)
                result: Any = packets[0] if len(packets) == 1 else _join_packets(packets)
            else:
                frame = await conversation.next_video_frame()
                pts = round(frame.pts * VIDEO_CLOCK_RATE)
                result = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                result.pts = pts
                result.time_base = VIDEO_TIME_BASE
        except (asyncio.CancelledError, MediaStreamError):
            raise
        except Exception as exc:
            if self.readyState != "live":  # the session is closing: not a failure
                raise MediaStreamError from exc
            log.exception("video track failed")
            self._on_failure(f"video failed: {exc}")
            raise MediaStreamError from exc
        self.frames_sent += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        return result


def _join_packets(packets: list[av.Packet]) -> av.Packet:
    """Several Annex-B packets for one frame -> one packet (aiortc splits on start codes)."""
    joined = av.Packet(b"".join(bytes(p) for p in packets))
    joined.pts = packets[0].pts
    joined.time_base = packets[0].time_base
    return joined


class ConversationAudioTrack(MediaStreamTrack):
    """Outgoing audio: the conversation's 48 kHz mono float32 frames as s16 ``av.AudioFrame``."""

    kind = "audio"

    def __init__(self, conversation: LiveConversation, *, on_failure: FailureHandler) -> None:
        super().__init__()
        self._conversation = conversation
        self._on_failure = on_failure
        self._last_pts = -1

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            chunk = await self._conversation.next_audio_frame()
            frame = float_to_audio_frame(chunk)
        except (asyncio.CancelledError, MediaStreamError):
            raise
        except Exception as exc:
            if self.readyState != "live":  # the session is closing: not a failure
                raise MediaStreamError from exc
            log.exception("audio track failed")
            self._on_failure(f"audio failed: {exc}")
            raise MediaStreamError from exc
        if frame.pts is not None and frame.pts <= self._last_pts:
            frame.pts = self._last_pts + frame.samples
        self._last_pts = frame.pts or 0
        return frame


def float_to_audio_frame(chunk: AudioChunk) -> av.AudioFrame:
    """Mono float32 [-1, 1] -> packed s16 mono ``av.AudioFrame`` stamped in samples."""
    samples = np.asarray(chunk.samples, dtype=np.float32).reshape(-1)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = chunk.sample_rate
    frame.time_base = fractions.Fraction(1, chunk.sample_rate)
    frame.pts = round(chunk.pts * chunk.sample_rate)
    return frame


def audio_frame_to_float(frame: av.AudioFrame) -> np.ndarray:
    """Any decoded ``av.AudioFrame`` -> mono float32 in [-1, 1] (channels averaged)."""
    data = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    if frame.format.is_planar:
        data = data.reshape(channels, -1)
        data = data.mean(axis=0) if channels > 1 else data[0]
    else:
        data = data.reshape(-1, channels)
        data = data.mean(axis=1) if channels > 1 else data[:, 0]
    kind = frame.format.name.rstrip("p")
    if kind == "s16":
        return (data / 32768.0).astype(np.float32)
    if kind == "s32":
        return (data / 2147483648.0).astype(np.float32)
    if kind == "u8":
        return ((data - 128.0) / 128.0).astype(np.float32)
    return np.asarray(data, dtype=np.float32)


class MicrophoneClock:
    """Maps the remote audio's RTP timeline onto the conversation's media clock.

    The first frame is anchored at its arrival time; later frames follow the sender's sample
    count (so network jitter does not bend the timeline). If the two drift apart by more than
    ``max_skew`` seconds (a long mute without packets, a clock jump), it re-anchors.
    """

    def __init__(self, started_at: float, *, max_skew: float = 0.5) -> None:
        self._started_at = started_at  # time.monotonic() when the conversation's clock was 0
        self._max_skew = max_skew
        self._last_rtp: int | None = None
        self._extended = 0  # unwrapped RTP timestamp (samples)
        self._offset = 0.0  # media seconds = extended / rate + offset

    def pts(self, frame: av.AudioFrame, now: float | None = None) -> float:
        arrival = (time.monotonic() if now is None else now) - self._started_at
        rate = frame.sample_rate or AUDIO_SAMPLE_RATE
        if frame.pts is None or frame.time_base is None:
            return max(0.0, arrival - (frame.samples / rate))
        rtp = int(frame.pts * frame.time_base * rate)
        if self._last_rtp is None:
            self._extended = rtp
            self._offset = arrival - frame.samples / rate - rtp / rate
        else:
            delta = (rtp - self._last_rtp) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            self._extended += delta
        self._last_rtp = rtp
        start = self._extended / rate + self._offset
        if abs(arrival - frame.samples / rate - start) > self._max_skew:
            self._offset = arrival - frame.samples / rate - self._extended / rate
            start = self._extended / rate + self._offset
        return max(0.0, start)


async def pump_microphone(
    track: MediaStreamTrack,
    push: Callable[[AudioChunk], None],
    clock: MicrophoneClock,
    on_chunk: Callable[[AudioChunk], None] | None = None,
) -> None:
    """Feed the remote microphone to ``push`` (the conversation's ``push_audio``, or what
    orders audio before it) until the track ends.

    Errors inside the conversation propagate (the peer logs them and closes the session): a media
    loop never swallows exceptions.
    """
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if not isinstance(frame, av.AudioFrame):
            continue
        samples = audio_frame_to_float(frame)
        chunk = AudioChunk(samples, frame.sample_rate, clock.pts(frame))
        push(chunk)
        if on_chunk is not None:
            on_chunk(chunk)


async def pump_seen(
    track: MediaStreamTrack,
    source: str,
    conversation: LiveConversation,
    started_at: float,
) -> None:
    """Hand the user's camera or screen (``source``) to the conversation's eyes until the
    track ends: only the frames they want now (a few per second, none while they are still
    looking at the previous one), converted to RGB in a worker thread; the rest are dropped
    as they arrive, so nothing queues and the newest frame always wins."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if not isinstance(frame, av.VideoFrame) or not conversation.wants_frame(source):
            continue
        arrived = time.monotonic() - started_at  # on the conversation's media clock
        image = await asyncio.to_thread(frame.to_ndarray, format="rgb24")
        conversation.push_frame(SeenFrame(source, image, arrived))
