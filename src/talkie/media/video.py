"""MP4 output (H.264 + AAC) that rendering streams into, plus probing/reading for tests.

``Mp4Writer`` takes RGB frames one at a time, so a renderer never holds a whole clip in memory,
and float32 mono audio in any number of pieces. Both tracks are stamped from the same clock: video
frame ``n`` is presented at ``n / fps`` and audio sample ``k`` at ``k / sample_rate``. On close the
shorter track is extended (audio with silence, video by holding its last frame) so both end
together. The file is written beside the target under a temporary name and renamed only on
success: an exception never leaves a partial MP4 behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from talkie.errors import InvalidInputError
from talkie.messages import AudioChunk

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeStats:
    """Encoder cost of one file: wall time of each ``write_frame`` call (colour conversion, H.264
    encode, mux). x264 works in its own threads too, so per-call times can undercount; the delayed
    frames are paid in the final flush, which ``total_seconds`` includes."""

    frames: int
    total_seconds: float
    median_ms: float
    p95_ms: float
    max_ms: float


class Mp4Writer:
    """Write an H.264 (yuv420p, libx264) + AAC MP4, one frame and one audio piece at a time.

    Use as a context manager::

        with Mp4Writer("out.mp4", size=(1280, 720), fps=24, sample_rate=22050) as w:
            w.write_audio(samples)          # float32 mono in [-1, 1], any number of calls
            for img in frames:              # RGB uint8, H x W x 3, matching ``size``
                w.write_frame(img)

    ``size`` is (width, height), both even. ``audio=False`` writes a video-only file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        size: tuple[int, int] = (1280, 720),
        fps: int | float | Fraction = 24,
        sample_rate: int = 22050,
        crf: int = 20,
        preset: str = "veryfast",
        audio: bool = True,
        audio_bitrate: int = 96_000,
    ) -> None:
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"size must be positive and even for yuv420p, got {width}x{height}")
        self.fps = Fraction(fps).limit_denominator(1001)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.path = Path(path)
        self.size = (width, height)
        self.sample_rate = int(sample_rate)
        self.frames_written = 0
        self.samples_written = 0
        self.frame_encode_ms: list[float] = []
        self._last_frame: np.ndarray | None = None
        self._flush_seconds = 0.0
        self._closed = True  # until the container exists: nothing to abort before that

        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # movflags=+faststart puts the index first so browsers can play while downloading.
            self._container: Any = av.open(
                str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"}
            )
        except OSError as exc:  # PyAV's file errors are OSErrors too
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidInputError(
                f"cannot write {self.path} ({reason}); choose another output path"
            ) from exc
        self._closed = False
        try:
            self._video = self._container.add_stream(
                "libx264", rate=self.fps, options={"crf": str(crf), "preset": preset}
            )
            self._video.width = width
            self._video.height = height
            self._video.pix_fmt = "yuv420p"
            # Keep our own copies of the time bases: the muxer rewrites the streams' time_base when
            # it writes the header (mp4 uses e.g. 1/12288), frames must be stamped in ours.
            self._video_tb = 1 / self.fps
            self._audio_tb = Fraction(1, self.sample_rate)
            self._video.time_base = self._video_tb
            self._audio: Any = None
            if audio:
                self._audio = self._container.add_stream("aac", rate=self.sample_rate)
                self._audio.layout = "mono"
                self._audio.bit_rate = audio_bitrate
                self._audio.time_base = self._audio_tb
        except BaseException:
            self.abort()
            raise

    # -- writing -------------------------------------------------------------------------------

    def write_frame(self, image: np.ndarray) -> None:
        """Encode one RGB uint8 frame (H x W x 3, the writer's size), presented at ``n / fps``."""
        self._check_open()
        img = np.asarray(image)
        w, h = self.size
        if img.shape != (h, w, 3) or img.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 of shape {(h, w, 3)}, got {img.dtype} of shape {img.shape}"
            )
        t0 = time.perf_counter()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = self._video_tb
        self._container.mux(self._video.encode(frame))
        self.frame_encode_ms.append((time.perf_counter() - t0) * 1000.0)
        self.frames_written += 1
        self._last_frame = img

    def write_audio(self, samples: np.ndarray | AudioChunk) -> None:
        """Append mono float32 samples in [-1, 1] at the writer's ``sample_rate``."""
        self._check_open()
        if self._audio is None:
            raise ValueError("this Mp4Writer was created with audio=False")
        if isinstance(samples, AudioChunk):
            if samples.sample_rate != self.sample_rate:
                raise ValueError(
                    f"audio is {samples.sample_rate} Hz, the writer expects {self.sample_rate} Hz"
                )
            samples = samples.samples
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        x = np.clip(x, -1.0, 1.0)
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.samples_written
        frame.time_base = self._audio_tb
        self._container.mux(self._audio.encode(frame))
        self.samples_written += x.size

    # -- finishing -----------------------------------------------------------------------------

    @property
    def video_duration(self) -> float:
        return self.frames_written / float(self.fps)

    @property
    def audio_duration(self) -> float:
        return self.samples_written / self.sample_rate

    def close(self) -> Path:
        """Finish both tracks, flush the encoders and move the file into place; returns its path."""
        if self._closed:
            return self.path
        try:
            if self.frames_written == 0:
                raise ValueError("no video frames were written")
            self._align_tracks()
            t0 = time.perf_counter()
            self._container.mux(self._video.encode(None))
            self._flush_seconds = time.perf_counter() - t0
            if self._audio is not None:
                self._container.mux(self._audio.encode(None))
            self._container.close()
            self._closed = True
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        stats = self.stats
        logger.info(
            "wrote %s: %d frames, %.2f s, encode median %.1f ms/frame",
            self.path.name,
            stats.frames,
            self.video_duration,
            stats.median_ms,
        )
        return self.path

    def abort(self) -> None:
        """Stop without producing output: close the container and delete the temporary file."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception as exc:  # already failing; the temp file is removed below anyway
                logger.debug("closing aborted MP4 failed: %s", exc)
        self._tmp.unlink(missing_ok=True)

    def _align_tracks(self) -> None:
        if self._audio is None:
            return
        one_frame = 1.0 / float(self.fps)
        # Audio longer than the video: hold the last frame so no speech is cut off.
        if (
            self.audio_duration > self.video_duration + one_frame / 2
            and self._last_frame is not None
        ):
            extra = round((self.audio_duration - self.video_duration) * float(self.fps))
            logger.debug("audio outlasts video: holding the last frame for %d frames", extra)
            for _ in range(extra):
                self.write_frame(self._last_frame)
        # Audio shorter than the video (or none at all): pad with silence.
        target = round(self.video_duration * self.sample_rate)
        if target > self.samples_written:
            self.write_audio(np.zeros(target - self.samples_written, dtype=np.float32))

    @property
    def stats(self) -> EncodeStats:
        """Per-frame encode cost so far (for benchmarks)."""
        ms = self.frame_encode_ms
        if not ms:
            return EncodeStats(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(ms)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        return EncodeStats(
            frames=len(ms),
            total_seconds=sum(ms) / 1000.0 + self._flush_seconds,
            median_ms=statistics.median(ms),
            p95_ms=p95,
            max_ms=ordered[-1],
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("Mp4Writer is closed")

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # Never leave a temp file behind, even if the caller forgot to close.
        if not getattr(self, "_closed", True):
            # At interpreter shutdown there is nothing sensible left to do if this fails.
            with contextlib.suppress(Exception):
                self.abort()


def probe_video(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe an MP4 (for tests and tools).

    Returns ``width``, ``height``, ``fps``, ``frames`` (counted by demuxing when the header has no
    count), ``duration`` and ``audio_duration`` in seconds, ``video_codec`` and ``audio_codec``
    (e.g. ``"h264"``, ``"aac"``). Missing tracks give ``None`` values.
    """
    info: dict[str, Any] = dict.fromkeys(
        (
            "width",
            "height",
            "fps",
            "frames",
            "duration",
            "audio_duration",
            "video_codec",
            "audio_codec",
        )
    )
    with av.open(str(path)) as container:
        if container.streams.video:
            v = container.streams.video[0]
            info["width"] = v.codec_context.width
            info["height"] = v.codec_context.height
            rate = v.average_rate or v.guessed_rate
            info["fps"] = float(rate) if rate else None
            info["video_codec"] = v.codec_context.name
            if v.duration is not None and v.time_base is not None:
                info["duration"] = float(v.duration * v.time_base)
            info["frames"] = v.frames or None
        if container.streams.audio:
            a = container.streams.audio[0]
            info["audio_codec"] = a.codec_context.name
            if a.duration is not None and a.time_base is not None:
                info["audio_duration"] = float(a.duration * a.time_base)
        if container.streams.video and not info["frames"]:
            info["frames"] = sum(
                1 for p in container.demux(container.streams.video[0]) if p.size > 0
            )
    return info


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode every video frame of ``path`` as an RGB uint8 array (H x W x 3), in order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
