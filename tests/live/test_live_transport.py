"""Transport building blocks without a network: encoder, audio conversion, clocks, RTCP hooks."""

from __future__ import annotations

import asyncio
import fractions
from dataclasses import replace
from typing import Any, cast

import av
import numpy as np
import pytest
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, pack_remb_fci

from talkie.messages import AudioChunk
from talkie.server.errors import ApiError
from talkie.server.uploads import parse_multipart
from talkie.transport.encoder import EncoderOptions, X264Encoder
from talkie.transport.tracks import (
    MicrophoneClock,
    audio_frame_to_float,
    float_to_audio_frame,
)
from talkie.transport.webrtc import _forward_rtcp, check_offer


def _frames(n: int) -> list[np.ndarray]:
    """A smooth picture with a moving disc (like a face: compressible, with motion)."""
    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    base = np.stack([xx / 5, yy / 3, 120 + 0 * xx], axis=-1).astype(np.uint8)
    frames = []
    for i in range(n):
        img = base.copy()
        img[((xx - 400 - 8 * i) ** 2 + (yy - 360) ** 2) < 80**2] = (240, 200, 60)
        frames.append(img)
    return frames


def _decode(packets: list[av.Packet]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    out: list[av.VideoFrame] = []
    for p in packets:
        out += [f for f in decoder.decode(av.Packet(bytes(p))) if isinstance(f, av.VideoFrame)]
    return out


def test_encoder_makes_decodable_h264_with_keyframes_on_request() -> None:
    enc = X264Encoder(options=EncoderOptions(keyframe_interval=100))
    packets: list[av.Packet] = []
    frames = _frames(8)
    for i, img in enumerate(frames):
        if i == 5:
            enc.request_keyframe()
        out = enc.encode(img, i * 3750)
        assert len(out) == 1  # zero latency: one packet per frame, no lookahead
        assert out[0].pts == i * 3750 and out[0].time_base == fractions.Fraction(1, 90_000)
        packets += out
    assert [p.is_keyframe for p in packets] == [
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        False,
    ]
    decoded = _decode(packets)
    assert len(decoded) == 8 and (decoded[0].width, decoded[0].height) == (1280, 720)
    rgb = decoded[3].to_ndarray(format="rgb24")
    assert np.mean(np.abs(rgb.astype(int) - frames[3].astype(int))) < 6
    assert enc.encode_ms and enc.frames == 8


def test_encoder_rejects_bad_frames_and_fixes_timestamps() -> None:
    enc = X264Encoder()
    with pytest.raises(ValueError, match="even"):
        enc.encode(np.zeros((721, 1280, 3), np.uint8), 0)
    enc.encode(np.zeros((720, 1280, 3), np.uint8), 100)
    (packet,) = enc.encode(np.zeros((720, 1280, 3), np.uint8), 100)  # same pts: bumped
    assert packet.pts == 101
    with pytest.raises(ValueError, match="qp"):
        X264Encoder(options=EncoderOptions(qp=45, max_qp=40))


def test_encoder_spends_bits_on_change_and_stays_under_its_ceiling() -> None:
    """Constant QP (the default) or constant quality under a bitrate cap: a still picture
    costs few bits once sharp (an average-bitrate encoder keeps filling its budget), and
    noise, the worst case, cannot push the capped quality mode's rate over the cap."""
    still = _frames(1)[0]
    sent: dict[str, int] = {}
    modes = {
        "qp": EncoderOptions(),
        "quality": EncoderOptions(qp=None),
        "average": EncoderOptions(qp=None, crf=None),
    }
    for mode, options in modes.items():
        enc = X264Encoder(options=options)
        sizes = [sum(p.size for p in enc.encode(still, i * 3750)) for i in range(120)]
        sent[mode] = sum(sizes[96:])  # the fifth second (the second keyframe was at 3 s)
    assert EncoderOptions().qp is not None
    assert sent["qp"] < 0.1 * sent["average"], sent
    assert sent["quality"] < 0.1 * sent["average"], sent

    cap = 1_000_000
    enc = X264Encoder(options=EncoderOptions(qp=None, bitrate=cap))
    noise = np.random.default_rng(0).integers(0, 256, (72, 720, 1280, 3), dtype=np.uint8)
    sizes = [sum(p.size for p in enc.encode(img, i * 3750)) for i, img in enumerate(noise)]
    # After the first second's buffer (1 s of VBV at the cap), each second stays under the cap.
    assert 8 * sum(sizes[24:48]) <= 1.1 * cap and 8 * sum(sizes[48:]) <= 1.1 * cap, sizes
    assert sum(sizes[24:]) > 0.5 * 2 * cap / 8  # it does use the room it has


def test_constant_qp_steps_coarser_over_its_ceiling_and_back_when_there_is_room() -> None:
    """x264 runs without rate control in constant-QP mode: the encoder keeps the stream under
    its ceiling itself, a QP step (a keyframe) at a time, and comes back when there is room."""
    options = EncoderOptions(bitrate=1_000_000, bitrate_change_interval=0.0)
    assert options.qp is not None
    options = replace(options, max_qp=options.qp + 8)
    enc = X264Encoder(options=options)
    rng = np.random.default_rng(0)
    qps, keyframe_at_change = [enc.qp], []
    for i in range(70):  # noise: far over 1 Mbps at any QP
        img = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
        before = enc.qp
        (packet,) = enc.encode(img, i * 3750)
        if enc.qp != before:
            qps.append(enc.qp)
            keyframe_at_change.append(packet.is_keyframe)
    first = options.qp
    # one step per half second of frames, up to max_qp
    assert qps == [first, first + 3, first + 6, first + 8], qps
    assert all(keyframe_at_change)
    # a still picture: far under half the ceiling -> back, step by step, to the configured QP
    still = _frames(1)[0]
    for i in range(70, 150):
        enc.encode(still, i * 3750)
    assert enc.qp == first
    # the receiver reports congestion below what a moving picture costs at QP 24: coarser
    moving = _frames(60)
    enc = X264Encoder(options=replace(options, min_bitrate=10_000))
    for i, img in enumerate(moving[:30]):
        enc.encode(img, i * 3750)
    rate = enc.send_rate()
    enc.set_target_bitrate(int(rate * 2))
    enc.set_target_bitrate(int(rate * 0.5))  # it fell: congestion
    for i, img in enumerate(moving[30:], start=30):
        enc.encode(img, i * 3750)
    assert enc.bitrate < rate and enc.qp is not None and enc.qp > first, (rate, enc.bitrate, enc.qp)


def test_encoder_keeps_two_seconds_of_send_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session may run for hours without a congestion report (the only other caller of
    ``send_rate``): what the encoder remembers of its output must not grow with it."""
    import talkie.transport.encoder as encoder_module

    clock = [1000.0]
    monkeypatch.setattr(encoder_module.time, "monotonic", lambda: clock[0])
    enc = X264Encoder()
    small = np.zeros((64, 64, 3), np.uint8)
    for i in range(24 * 10):  # ten seconds at 24 fps
        clock[0] += 1 / 24
        enc.encode(small, i * 3750)
    assert len(enc._sent) <= 2 * 24 + 1
    assert enc.send_rate() > 0


def test_encoder_follows_congestion_down_and_recovers() -> None:
    opts = EncoderOptions(
        qp=None, bitrate=2_000_000, min_bitrate=600_000, bitrate_change_interval=0.0
    )
    enc = X264Encoder(options=opts)
    frames = _frames(3)
    enc.encode(frames[0], 0)
    # A low first estimate (receivers start low and ramp up) is not congestion.
    enc.set_target_bitrate(1_000)
    (p,) = enc.encode(frames[1], 1000)
    assert enc.bitrate == 2_000_000 and not p.is_keyframe
    # An estimate above what is sent (static picture): no change, no keyframe.
    enc.set_target_bitrate(enc.send_rate() * 2 + 1)
    (p,) = enc.encode(frames[1], 3750)
    assert enc.bitrate == 2_000_000 and not p.is_keyframe
    # Congestion: the estimate drops below the send rate -> follow it (floored).
    enc.set_target_bitrate(1_000)
    (p,) = enc.encode(frames[2], 7500)
    assert enc.bitrate == 600_000 and p.is_keyframe
    # Room again: back to the target, never above it.
    enc.set_target_bitrate(10_000_000)
    enc.encode(frames[0], 11250)
    assert enc.bitrate == 2_000_000


def test_audio_conversions() -> None:
    chunk = AudioChunk(np.linspace(-1.2, 1.2, 960, dtype=np.float32), 48_000, pts=0.5)
    frame = float_to_audio_frame(chunk)
    assert (frame.format.name, frame.layout.name, frame.samples) == ("s16", "mono", 960)
    assert frame.pts == 24_000 and frame.time_base == fractions.Fraction(1, 48_000)
    back = audio_frame_to_float(frame)
    assert back.dtype == np.float32 and back.min() >= -1.0 and back.max() <= 1.0
    # Packed stereo s16 (what aiortc's Opus decoder produces): channels averaged.
    stereo = np.array([[1000, 3000] * 480], dtype=np.int16)
    f = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    f.sample_rate = 48_000
    mono = audio_frame_to_float(f)
    assert mono.shape == (480,) and np.allclose(mono, 2000 / 32768)
    # Planar float.
    planar = np.stack([np.full(480, 0.5, np.float32), np.full(480, -0.1, np.float32)])
    f = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    f.sample_rate = 48_000
    assert np.allclose(audio_frame_to_float(f), 0.2)


def _mic_frame(rtp: int) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
    f.sample_rate = 48_000
    f.pts = rtp
    f.time_base = fractions.Fraction(1, 48_000)
    return f


def test_microphone_clock_follows_rtp_unwraps_and_reanchors() -> None:
    clock = MicrophoneClock(started_at=100.0)
    start = 2**32 - 960  # wraps after one frame
    assert clock.pts(_mic_frame(start), now=101.02) == pytest.approx(1.0)
    # Jittery arrival does not bend the timeline; the wrap is handled.
    assert clock.pts(_mic_frame(0), now=101.09) == pytest.approx(1.02)
    assert clock.pts(_mic_frame(960), now=101.06) == pytest.approx(1.04)
    # A long gap without packets, RTP continuing: re-anchored on arrival.
    assert clock.pts(_mic_frame(960 + 48_000 * 10), now=130.0) == pytest.approx(29.98)


def test_multipart_parser_keeps_bytes_exact() -> None:
    payload = b"\r\n--not-the-boundary\r\n\x00\xff" * 100
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--XyZ--\r\n"
    )
    parts = parse_multipart(body, "multipart/form-data; boundary=XyZ")
    assert [(p.name, p.filename) for p in parts] == [("name", None), ("image", "a.png")]
    assert parts[0].data == b"Ada" and parts[1].data == payload
    with pytest.raises(ApiError):
        parse_multipart(body, "multipart/form-data")


def test_check_offer_messages() -> None:
    from talkie.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match='"offer"'):
        check_offer("v=0\r\n", "answer")
    with pytest.raises(InvalidInputError, match="empty"):
        check_offer("  ", "offer")
    with pytest.raises(InvalidInputError, match="too long"):
        check_offer("v=0\r\n" + "a=x\r\n" * 30_000, "offer")


def test_rtcp_feedback_reaches_our_encoder() -> None:
    class FakeSender:
        _ssrc = 1234

        def __init__(self) -> None:
            self.seen: list[object] = []

        async def _handle_rtcp_packet(self, packet: object) -> None:
            self.seen.append(packet)

    sender = FakeSender()
    enc = X264Encoder()
    _forward_rtcp(cast(Any, sender), enc)
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=1234)
    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(900_000, [1234])
    )
    asyncio.run(sender._handle_rtcp_packet(pli))
    asyncio.run(sender._handle_rtcp_packet(remb))
    assert enc._force_keyframe and enc._estimate == 900_000
    assert len(sender.seen) == 2  # aiortc still sees everything
