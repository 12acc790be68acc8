"""H.264 for WebRTC: RGB frames -> Annex-B packets, cheaply, with zero added latency.

aiortc's own H.264 encoder uses libx264's default preset through a generic colour conversion:
~10 ms per 720p frame here. Encoding ourselves with a fast preset and OpenCV's I420 conversion
costs ~3 ms (measured on the 2-core dev box), and lets us pick the starting bitrate (aiortc starts
at 1 Mbps, thin for 720p). aiortc then only packetises our packets (``RTCRtpSender`` accepts
``av.Packet`` from a track). Keyframe requests (PLI/FIR) and the receiver's bitrate estimate (REMB)
are forwarded to this encoder by the WebRTC peer.

``encode`` runs in a worker thread (libx264 and OpenCV release the GIL); the other methods are
called from the event loop and only set flags, so no lock is needed.
"""

from __future__ import annotations

import fractions
import logging
import time
from collections import deque
from dataclasses import dataclass

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
_QP_STEP = 3


@dataclass(frozen=True)
class EncoderOptions:
    """libx264 settings for live video. Bitrates in bits per second."""

    bitrate: int = 2_000_000  # ceiling (720p talking head: 1.5-2.5 Mbps looks clean)
    # A constant quantiser: x264's rate control off. On a talking face, QP 22 against CRF 23
    # under a VBV cap: 2.81 against 4.24 ms of CPU per 720p frame, half the bits (710 against
    # 1443 kbit/s: half the RTP packets to protect and send), PSNR 40.20 against 41.06 dB on
    # average and a better worst frame, 40.04 against 39.88 dB (bench/encoder_settings.py).
    # This encoder keeps it under ``bitrate`` itself, coarsely: a QP step up when the frames
    # since the last change ran over the ceiling (or the receiver reports congestion), back
    # down when they use under half of it; each change re-opens the encoder (a keyframe).
    qp: int | None = 22
    max_qp: int = 40  # the coarsest step congestion takes it to
    # With ``qp=None``: constant quality under that ceiling (x264's CRF with a VBV cap): a
    # still face stops costing bits; a talking one took 27 % fewer bits than a 2 Mbps average
    # (bench/encoder_settings.py). ``crf=None`` too: average bitrate mode.
    crf: float | None = 23.0
    min_bitrate: int = 600_000  # floor when the receiver reports congestion (REMB)
    # ultrafast with its deblocking filter back on: 18-39 % less CPU than superfast (two runs)
    # for 0.1-0.2 dB less mean PSNR and a better worst frame (bench/encoder_settings.py)
    preset: str = "ultrafast"
    fps: float = 24.0
    keyframe_interval: float = 3.0  # seconds; loss recovery also asks for keyframes (PLI)
    threads: int = 1  # x264 worker threads; 1 leaves the second core to the renderer
    # more libx264 settings, "key=value:key=value" (after the preset's; bench/encoder_settings.py)
    x264_params: str = "deblock=0,0"
    # Re-opening the encoder for a new bitrate costs a keyframe: do it rarely and only for a
    # clear change.
    bitrate_change_ratio: float = 0.25
    bitrate_change_interval: float = 5.0


class X264Encoder:
    """RGB uint8 frames (H x W x 3, even sides) -> H.264 constrained-baseline packets."""

    def __init__(self, *, options: EncoderOptions | None = None) -> None:
        self.options = options or EncoderOptions()
        qp = self.options.qp
        if qp is not None and not 0 <= qp <= self.options.max_qp <= 51:
            raise ValueError(
                f"qp {qp} and max_qp {self.options.max_qp}: need 0 <= qp <= max_qp <= 51"
            )
        self._codec: av.VideoCodecContext | None = None
        self._size: tuple[int, int] | None = None
        self._bitrate = self._clamp(self.options.bitrate)
        self._estimate: int | None = None  # the receiver's latest bandwidth estimate (REMB)
        self._estimate_fell_at = -1e9
        self._sent: deque[tuple[float, int]] = deque()  # (time, bytes) of the last 2 s
        self._opened_at = 0.0
        self._qp = self.options.qp
        # sizes (bytes) of the last two seconds of frames since the encoder (re)opened
        self._since_open: deque[int] = deque(maxlen=max(2, round(2 * self.options.fps)))
        self._frames_since_open = 0
        self._force_keyframe = False
        self._last_pts = -1
        self.encode_ms: deque[float] = deque(maxlen=480)  # recent encode times (incl. colour)
        self.frames = 0
        self.bytes = 0

    @property
    def bitrate(self) -> int:
        """The ceiling the encoder currently runs under."""
        return self._bitrate

    @property
    def qp(self) -> int | None:
        """The quantiser in constant-QP mode (None in the CRF and average modes)."""
        return self._qp

    def request_keyframe(self) -> None:
        """Make the next frame an IDR frame (the receiver lost a packet or just joined)."""
        self._force_keyframe = True

    def set_target_bitrate(self, bitrate: int) -> None:
        """The receiver's estimate of the available bandwidth (REMB), applied at a later frame.

        A receiver's estimate hovers around 1.5x what it receives and lags behind sudden rises,
        so a still talking head that starts moving would talk the bitrate down (and each change
        costs a keyframe). The encoder follows the estimate down only on congestion (the estimate
        just fell, and is below what is actually sent), and back up towards ``options.bitrate``
        when there is room again.
        """
        previous = self._estimate
        self._estimate = int(bitrate)
        if previous is not None and bitrate < 0.95 * previous:
            self._estimate_fell_at = time.monotonic()

    def send_rate(self, now: float | None = None) -> float:
        """Bits per second produced over the last two seconds."""
        self._forget_sent_before((time.monotonic() if now is None else now) - 2.0)
        return sum(n for _, n in self._sent) * 8 / 2.0

    def _forget_sent_before(self, t: float) -> None:
        while self._sent and self._sent[0][0] < t:
            self._sent.popleft()

    def encode(self, image: np.ndarray, pts: int) -> list[av.Packet]:
        """Encode one frame presented at ``pts`` (90 kHz ticks). Call from one thread at a time."""
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or w % 2 or h % 2:
            raise ValueError(f"expected an RGB uint8 frame with even sides, got {image.shape}")
        if pts <= self._last_pts:  # x264 requires strictly increasing timestamps
            pts = self._last_pts + 1
        self._last_pts = pts
        self._maybe_reopen((w, h))
        codec = self._codec
        assert codec is not None
        # BT.601 limited range, the same matrix the VUI below announces.
        yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        if self._force_keyframe:
            self._force_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        packets = list(codec.encode(frame))
        size = 0
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
            if packet.pts is None:
                packet.pts = pts
            size += packet.size
        self.bytes += size
        sent_at = time.monotonic()
        self._sent.append((sent_at, size))
        # kept to two seconds here: send_rate() may not be called for hours (no congestion)
        self._forget_sent_before(sent_at - 2.0)
        self._since_open.append(size)
        self._frames_since_open += 1
        self.frames += 1
        self.encode_ms.append((time.perf_counter() - t0) * 1000.0)
        return packets

    def close(self) -> None:
        """Release the codec (and x264's threads)."""
        self._codec = None

    def _clamp(self, bitrate: int) -> int:
        return int(max(self.options.min_bitrate, min(bitrate, self.options.bitrate)))

    def _wanted_bitrate(self, now: float) -> int:
        estimate = self._estimate
        if estimate is None:
            return self._bitrate
        congested = now - self._estimate_fell_at < 3.0 and estimate < 0.85 * self.send_rate(now)
        if congested:  # back off
            return self._clamp(estimate)
        if estimate > self._bitrate * 1.2 and self._bitrate < self.options.bitrate:
            return self._clamp(estimate)  # room again: recover towards the target
        return self._bitrate

    def _maybe_reopen(self, size: tuple[int, int]) -> None:
        now = time.monotonic()
        if self._codec is not None and size == self._size:
            if now - self._opened_at < self.options.bitrate_change_interval:
                return
            wanted = self._wanted_bitrate(now)
            if self._qp is not None:  # the ceiling needs no re-open, only a new quantiser
                self._bitrate = wanted
                qp = self._wanted_qp()
                if qp == self._qp:
                    return
                log.info("video QP %d -> %d (ceiling %d bps)", self._qp, qp, wanted)
                self._qp = qp
            else:
                change = abs(wanted - self._bitrate) / self._bitrate
                if change <= self.options.bitrate_change_ratio:
                    return
                log.info("video bitrate %d -> %d bps", self._bitrate, wanted)
                self._bitrate = wanted
        self._codec = self._open(size, self._bitrate)
        self._size = size
        self._opened_at = now
        self._since_open.clear()
        self._frames_since_open = 0

    def _wanted_qp(self) -> int:
        """Constant-QP mode: one step coarser when the frames since the last change (after
        its keyframe, half a second of them at least) ran over the ceiling, one finer when
        they used under half of it; each step is about 30 % of the bits (QP 22 -> 25)."""
        assert self._qp is not None and self.options.qp is not None
        frames = list(self._since_open)
        if self._frames_since_open == len(frames):
            frames = frames[1:]  # the keyframe the change cost
        if len(frames) < self.options.fps / 2:
            return self._qp
        rate = sum(frames) * 8 * self.options.fps / len(frames)
        if rate > self._bitrate:
            return min(self._qp + _QP_STEP, self.options.max_qp)
        if rate < 0.5 * self._bitrate:
            return max(self._qp - _QP_STEP, self.options.qp)
        return self._qp

    def _open(self, size: tuple[int, int], bitrate: int) -> av.VideoCodecContext:
        w, h = size
        opts = self.options
        keyint = max(1, round(opts.keyframe_interval * opts.fps))
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width = w
        codec.height = h
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = fractions.Fraction(opts.fps).limit_denominator(1001)
        if opts.crf is None and self._qp is None:
            codec.bit_rate = bitrate  # average bitrate (ABR)
        codec.thread_count = opts.threads
        codec.profile = "Baseline"
        # Level 3.1 covers 720p at up to 30 fps (what the SDP's profile-level-id ...1f says).
        level = "31" if w * h <= 1280 * 720 else "40"
        options = {
            "preset": opts.preset,
            "tune": "zerolatency",
            "level": level,
            "x264-params": (
                f"keyint={keyint}:min-keyint={keyint}:scenecut=0:repeat-headers=1"
                ":colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m"
                + (f":{opts.x264_params}" if opts.x264_params else "")
            ),
        }
        if self._qp is not None:
            options["qp"] = str(self._qp)
        else:
            # VBV of ~1 s: bounded frame sizes without starving keyframes.
            options.update(maxrate=str(bitrate), bufsize=str(bitrate))
            if opts.crf is not None:
                options["crf"] = f"{opts.crf:g}"  # the VBV caps it at ``bitrate``
        codec.options = options
        return codec
