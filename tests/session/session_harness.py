"""Helpers for live-session tests: pull media like a transport, wait for events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talkie.messages import AudioChunk
from talkie.session import Conversation, SessionOptions


@dataclass
class Pulled:
    """What a transport would have sent: video pts/frames, audio, events."""

    video_pts: list[float] = field(default_factory=list)
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    audio: list[np.ndarray] = field(default_factory=list)
    audio_pts: list[float] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    keep_frames: bool = False

    def audio_rms(self, t0: float, t1: float) -> float:
        pts = np.array(self.audio_pts)
        chosen = [a for a, p in zip(self.audio, pts, strict=True) if t0 <= p < t1]
        return float(np.sqrt(np.mean(np.concatenate(chosen) ** 2))) if chosen else 0.0

    def first_audio_at_or_after(self, t: float, threshold: float = 0.01) -> float | None:
        for a, p in zip(self.audio, self.audio_pts, strict=True):
            if p >= t and np.sqrt(np.mean(a**2)) > threshold:
                return p
        return None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]


@contextlib.asynccontextmanager
async def running(
    conversation: Conversation, *, keep_frames: bool = False
) -> AsyncIterator[Pulled]:
    pulled = Pulled(keep_frames=keep_frames)

    async def video() -> None:
        while True:
            frame = await conversation.next_video_frame()
            pulled.video_pts.append(frame.pts)
            if pulled.keep_frames:
                pulled.frames[frame.index] = frame.image

    async def audio() -> None:
        while True:
            chunk = await conversation.next_audio_frame()
            pulled.audio.append(chunk.samples)
            pulled.audio_pts.append(chunk.pts)

    async def events() -> None:
        async for event in conversation.events():
            pulled.events.append(event.to_json())

    await conversation.start()
    tasks = [asyncio.create_task(c()) for c in (video, audio, events)]
    try:
        yield pulled
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await conversation.close()


def espeak_48k(text: str, voice: str = "en-us+m3") -> np.ndarray:
    """``text`` said by espeak-ng (a voice unlike the character's), at 48 kHz like WebRTC."""
    from scipy.signal import resample_poly

    from talkie.offline import synthesize
    from talkie.voice import load_tts

    said = synthesize(load_tts(f"espeak:{voice}"), text)
    return resample_poly(said.audio, 320, 147).astype(np.float32)  # 22050 -> 48000 Hz


async def speak(conversation: Conversation, audio48: np.ndarray) -> None:
    """Push ``audio48`` into the conversation in 20 ms packets in real time, like WebRTC."""
    for k in range(0, len(audio48), 960):
        conversation.push_audio(AudioChunk(audio48[k : k + 960], 48000))
        await asyncio.sleep(0.02)


async def wait_for(pulled: Pulled, predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate(pulled):
        if loop.time() > end:
            raise AssertionError(f"timed out; events so far: {pulled.events[-8:]}")
        await asyncio.sleep(0.02)


def make_conversation(character, **options: Any) -> Conversation:  # type: ignore[no-untyped-def]
    return Conversation(
        character=character, options=SessionOptions(brain="builtin", seed=1, **options)
    )
