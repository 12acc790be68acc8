"""Offline rendering: one image + speech -> a lip-synced MP4 (what `talkie render` runs).

Stages overlap the way the live loop does: motion is generated in 4-frame steps, frames are
rendered in a worker thread while the main thread encodes the previous ones (OpenCV and PyAV
release the GIL, so on two cores both run at once), and at most a few frames are in flight.
"""

from __future__ import annotations

import logging
import math
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkie.errors import InvalidInputError
from talkie.media.video import Mp4Writer
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion import MotionGenerator, product_motion_options
from talkie.render import RenderOptions, load_renderer
from talkie.rig.model import CharacterRig
from talkie.voice import TextToSpeech

log = logging.getLogger(__name__)

LEAD_IN = 0.4  # seconds of idle life before the first word (the character "gets ready")
TAIL = 0.6  # and after the last one (the mouth closes, the head settles)
CLAUSE_PAUSE = 0.12  # extra silence between synthesised clauses

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RenderReport:
    """What a render produced and what it cost."""

    path: Path
    frames: int
    fps: float
    duration: float
    speech_start: float
    render_ms_median: float
    render_ms_p95: float
    encode_ms_median: float
    wall_seconds: float


def synthesize(tts: TextToSpeech, text: str) -> SpeechClip:
    """The whole text as one clip: the engine's clauses joined with short pauses."""
    if not text.strip():
        raise InvalidInputError("nothing to say: the text is empty; pass --text with some words")
    return join_clips(list(tts.synthesize(text)), pause=CLAUSE_PAUSE)


def join_clips(clips: list[SpeechClip], *, pause: float = 0.0) -> SpeechClip:
    """Concatenate clips (same sample rate) with ``pause`` seconds of silence between them."""
    if not clips:
        raise InvalidInputError("the voice produced no audio for this text")
    rate = clips[0].sample_rate
    if any(c.sample_rate != rate for c in clips):
        raise ValueError("clips have different sample rates")
    gap = np.zeros(int(round(pause * rate)), np.float32)
    audio: list[np.ndarray] = []
    phonemes: list[PhonemeTiming] = []
    offset = 0.0
    for i, clip in enumerate(clips):
        if i:
            audio.append(gap)
            offset += len(gap) / rate
        audio.append(clip.audio.astype(np.float32))
        phonemes.extend(
            PhonemeTiming(p.phoneme, p.start + offset, p.end + offset) for p in clip.phonemes
        )
        offset += clip.duration
    text = " ".join(c.text for c in clips if c.text)
    return SpeechClip(np.concatenate(audio), rate, tuple(phonemes), text)


def render_video(
    rig: CharacterRig,
    speech: SpeechClip,
    out: str | Path,
    *,
    size: tuple[int, int] = (1280, 720),
    fps: float = 24.0,
    seed: int = 0,
    progress: Progress | None = None,
    renderer: str | None = None,
) -> RenderReport:
    """Render ``speech`` spoken by ``rig`` into an MP4 at ``out`` (H.264 + AAC), drawn by the
    ``renderer`` spec (``talkie.render.load_renderer``; default: the CPU mesh warp).

    The output file appears only when complete: on any error nothing is left behind.
    """
    started = time.perf_counter()
    if speech.duration <= 0:
        raise InvalidInputError("the speech is empty: there is no audio to lip-sync")
    drawer = load_renderer(renderer, rig, options=RenderOptions(size=size))
    motion = MotionGenerator(fps=fps, seed=seed, options=product_motion_options())
    motion.push(speech, start=LEAD_IN)
    total = math.ceil((LEAD_IN + speech.duration + TAIL) * fps)

    lead = np.zeros(int(round(LEAD_IN * speech.sample_rate)), np.float32)
    frames: queue.Queue[np.ndarray | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()
    render_ms: list[float] = []

    def produce() -> None:
        try:
            done = 0
            while done < total and not stop.is_set():
                for face in motion.generate(min(motion.options.step_frames, total - done)):
                    t0 = time.perf_counter()
                    image = drawer.render(face.params)
                    render_ms.append((time.perf_counter() - t0) * 1000)
                    _put(frames, image, stop)
                    done += 1
            _put(frames, None, stop)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(frames, exc, stop)

    worker = threading.Thread(target=produce, name="talkie-render", daemon=True)
    with Mp4Writer(out, size=size, fps=fps, sample_rate=speech.sample_rate) as writer:
        writer.write_audio(np.concatenate([lead, speech.audio.astype(np.float32)]))
        worker.start()
        try:
            written = 0
            while True:
                item = frames.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                writer.write_frame(item)
                written += 1
                if progress:
                    progress(written, total)
        finally:
            stop.set()
            worker.join(timeout=5)
        path = writer.close()
        encode = writer.stats
    return RenderReport(
        path=Path(path),
        frames=total,
        fps=fps,
        duration=total / fps,
        speech_start=LEAD_IN,
        render_ms_median=statistics.median(render_ms) if render_ms else 0.0,
        render_ms_p95=float(np.percentile(render_ms, 95)) if render_ms else 0.0,
        encode_ms_median=encode.median_ms,
        wall_seconds=time.perf_counter() - started,
    )


def _put(
    q: queue.Queue[np.ndarray | BaseException | None], item: object, stop: threading.Event
) -> None:
    """Put unless the consumer has gone (then drop: it is shutting down)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)  # type: ignore[arg-type]
            return
        except queue.Full:
            continue
