"""Audio in and out: decode anything PyAV (FFmpeg) reads to mono float32, write WAV.

Like images, audio files are untrusted input: every failure is an ``InvalidInputError`` with one
line that says what is wrong and what to do.
"""

from __future__ import annotations

import io
import logging
import os
import wave
from pathlib import Path

import av
import numpy as np

from talkie.errors import InvalidInputError
from talkie.media.sniff import describe_content, unreadable_file
from talkie.messages import AudioChunk

logger = logging.getLogger(__name__)

DEFAULT_MAX_SECONDS = 600.0
SILENCE_DBFS = -50.0
_USE = "use a WAV, MP3, OGG, FLAC or M4A recording"
_WINDOW_SECONDS = 0.02


def load_audio(
    path: str | os.PathLike[str],
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    sample_rate: int | None = None,
    reject_silent: bool = True,
) -> AudioChunk:
    """Decode an audio file (or the audio track of a video) to a mono float32 ``AudioChunk``.

    Channels are mixed down; with ``sample_rate`` the audio is resampled to it, otherwise the
    file's own rate is kept. Raises ``InvalidInputError`` for a missing, unreadable, non-audio,
    corrupt, empty or too long file, and (with ``reject_silent``) for a silent one.
    """
    p = Path(path)
    name = p.name or str(p)
    if not p.exists():
        raise InvalidInputError(f"{p} does not exist; check the path to the audio file")
    if p.is_dir():
        raise InvalidInputError(f"{p} is a folder, not an audio file; {_USE}")
    try:
        size = p.stat().st_size
        with p.open("rb"):
            pass
    except OSError as exc:
        raise unreadable_file(p, exc) from exc
    if size == 0:
        raise InvalidInputError(f"{name} is empty (0 bytes); {_USE}")
    if sample_rate is not None and not 1000 <= sample_rate <= 384_000:
        raise ValueError(f"sample_rate must be between 1000 and 384000 Hz, got {sample_rate}")

    samples, rate = _decode(p, name, max_seconds, sample_rate)
    if samples.size == 0:
        raise InvalidInputError(f"{name} contains no audio samples; {_USE}")
    if reject_silent and is_silent(samples, sample_rate=rate):
        raise InvalidInputError(
            f"{name} is silent: nothing to lip-sync; check the recording (microphone muted?) or "
            "give --text instead"
        )
    return AudioChunk(samples=samples, sample_rate=rate)


def _decode(
    p: Path, name: str, max_seconds: float, sample_rate: int | None
) -> tuple[np.ndarray, int]:
    try:
        container = av.open(str(p), mode="r")
    except av.FFmpegError as exc:
        raise _unreadable(p, name, exc) from exc
    with container:
        if not container.streams.audio:
            what = "a video without sound" if container.streams.video else "no audio track"
            raise InvalidInputError(f"{name} has no audio ({what}); {_USE}")
        stream = container.streams.audio[0]
        # Cheap early rejection from the header; the decoded length is checked again below.
        if stream.duration is not None and stream.time_base is not None:
            header_seconds = float(stream.duration * stream.time_base)
            if header_seconds > max_seconds + 1.0:
                raise _too_long(name, header_seconds, max_seconds)
        src_rate = stream.codec_context.sample_rate or stream.rate
        if not src_rate:
            raise InvalidInputError(f"{name} has an audio track without a sample rate; {_USE}")
        out_rate = sample_rate or int(src_rate)
        # Keep the source layout and average the channels ourselves: FFmpeg's stereo->mono downmix
        # adds the channels at -3 dB each, which makes mono-in-stereo recordings 3 dB louder (and
        # can clip them).
        resampler = av.AudioResampler(format="fltp", rate=out_rate)
        limit = int(max_seconds * out_rate)
        parts: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    part = _to_mono(out.to_ndarray())
                    parts.append(part)
                    total += part.size
                if total > limit:
                    raise _too_long(name, total / out_rate, max_seconds, at_least=True)
            for out in resampler.resample(None):
                part = _to_mono(out.to_ndarray())
                parts.append(part)
                total += part.size
        except av.FFmpegError as exc:
            raise InvalidInputError(
                f"{name} is corrupt or truncated (FFmpeg: {_reason(exc)}); "
                "re-export or re-record it"
            ) from exc
    if total > limit:
        raise _too_long(name, total / out_rate, max_seconds)
    samples = (
        np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    )
    if not np.all(np.isfinite(samples)):
        raise InvalidInputError(
            f"{name} is corrupt (its samples are not finite numbers); re-export it"
        )
    return np.clip(samples, -1.0, 1.0), out_rate


def _to_mono(planar: np.ndarray) -> np.ndarray:
    """(channels, n) float32 planes -> (n,) mono, the mean of the channels."""
    if planar.ndim == 1:
        return planar.astype(np.float32, copy=False)
    if planar.shape[0] == 1:
        return planar[0].astype(np.float32, copy=False)
    return planar.mean(axis=0, dtype=np.float32)


_MEDIA_CONTAINERS = (
    "a WAV audio file",
    "an MP3 audio file",
    "an Ogg audio/video file",
    "a FLAC audio file",
    "an MP4/QuickTime file",
    "a WebM/Matroska video",
    "an AVI video",
)


def _unreadable(p: Path, name: str, exc: BaseException) -> InvalidInputError:
    """FFmpeg could not open the file: say whether it is a broken recording or not audio at all."""
    with p.open("rb") as f:
        found = describe_content(f.read(512))
    if found in _MEDIA_CONTAINERS:
        return InvalidInputError(
            f"{name} looks like {found} but is corrupt or truncated (FFmpeg: {_reason(exc)}); "
            "re-export or re-record it"
        )
    what = f"FFmpeg: {_reason(exc)}" if found == "data in an unknown format" else f"found {found}"
    return InvalidInputError(f"{name} is not an audio file Talkie can read ({what}); {_USE}")


def _too_long(
    name: str, seconds: float, max_seconds: float, at_least: bool = False
) -> InvalidInputError:
    more = "more than " if at_least else ""
    return InvalidInputError(
        f"{name} is too long ({more}{seconds:.0f} s, the limit is {max_seconds:.0f} s); "
        "cut it into shorter pieces"
    )


def _reason(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).splitlines()[0]


def peak_dbfs(
    samples: np.ndarray, window_seconds: float = _WINDOW_SECONDS, sample_rate: int = 16000
) -> float:
    """Level in dBFS of the loudest short window (RMS over ``window_seconds``); -inf for silence."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return float("-inf")
    win = max(1, int(window_seconds * sample_rate))
    n = (x.size // win) * win
    if n == 0:
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    else:
        frames = x[:n].reshape(-1, win).astype(np.float64)
        rms = float(np.sqrt(np.max(np.mean(frames * frames, axis=1))))
        if n < x.size:
            tail = x[n:].astype(np.float64)
            rms = max(rms, float(np.sqrt(np.mean(tail * tail))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def is_silent(
    samples: np.ndarray, threshold_dbfs: float = SILENCE_DBFS, *, sample_rate: int = 16000
) -> bool:
    """True when no short window of ``samples`` is louder than ``threshold_dbfs`` (RMS).

    Uses the loudest ~20 ms window rather than the overall level, so a short utterance in a long
    quiet recording is not mistaken for silence, while hiss and dither are.
    """
    return peak_dbfs(samples, sample_rate=sample_rate) < threshold_dbfs


def wav_bytes(chunk: AudioChunk) -> bytes:
    """``chunk`` as a 16-bit PCM mono WAV file in memory."""
    samples = np.asarray(chunk.samples, dtype=np.float32).reshape(-1)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(chunk.sample_rate))
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def save_wav(path: str | os.PathLike[str], chunk: AudioChunk) -> Path:
    """Write ``chunk`` as a 16-bit PCM mono WAV file (atomically: temp file, then rename)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(wav_bytes(chunk))
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
