"""A real conversation core on virtual time, fed a scripted microphone track.

Real parts where they decide what is tested (Silero VAD, Whisper tiny.en, Smart Turn, the
built-in brain, Piper, the CPU renderer at a small size), all run inline on a virtual-time
event loop (``virtual_time``): the test says what the user says and when, and reads what the
character did, to the millisecond, the same way every run.

``echo_db`` feeds the character's own output back into the microphone (``echo_delay`` later,
that many dB quieter), as a laptop without echo cancellation would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from talkie.brain.builtin import BuiltinBrain
from talkie.hearing import Hearing, HearingOptions, WhisperAsr
from talkie.hearing.turn_model import SmartTurnModel
from talkie.messages import AudioChunk
from talkie.render import MeshWarpRenderer, RenderOptions
from talkie.session import Character
from talkie.session.conversation import Conversation
from talkie.session.parts import SessionOptions, SessionParts
from talkie.session.timeline import MediaClock
from talkie.session.tools import SessionTools
from talkie.voice import TextToSpeech

MIC_RATE = 16_000
CHUNK_S = 0.02


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


@dataclass
class Models:
    """Loaded once per test session (see conftest)."""

    voice: TextToSpeech
    recognizer: WhisperAsr
    turn_model: SmartTurnModel


def virtual_parts(character: Character, models: Models, *, size: tuple[int, int] = (320, 180),
                  hearing: HearingOptions | None = None) -> SessionParts:  # fmt: skip
    tools = SessionTools(tools=character.tools)
    brain = BuiltinBrain(persona=character.persona, retriever=character.knowledge)
    rig = character.rig
    return SessionParts(
        brain=brain,
        voice=models.voice,
        hearing=Hearing(
            options=hearing or HearingOptions(), recognizer=models.recognizer,
            turn_model=models.turn_model, threaded=False,
        ),
        renderer=lambda: MeshWarpRenderer(rig, options=RenderOptions(size=size)),
        tools=tools,
        clock=lambda: MediaClock(asyncio.get_running_loop().time),
        offload=inline,
        offload_voice=inline,
        warm=False,
    )  # fmt: skip


@dataclass
class Outcome:
    """What the character did: events (wire form), the audio it played, frame times."""

    events: list[dict[str, Any]] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    audio_pts: list[float] = field(default_factory=list)
    video_pts: list[float] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def turns(self) -> list[dict[str, Any]]:
        """Finished turns with user words (the greeting is not one)."""
        return [t for t in self.of_type("turn") if t["user_text"]]

    def level(self, t0: float, t1: float) -> float:
        chosen = [a for a, p in zip(self.audio, self.audio_pts, strict=True) if t0 <= p < t1]
        return float(np.sqrt(np.mean(np.concatenate(chosen) ** 2))) if chosen else 0.0

    def sound_spans(self, threshold: float = 0.01) -> list[tuple[float, float]]:
        """Where the character's audio was on (20 ms resolution, gaps < 0.3 s bridged)."""
        spans: list[list[float]] = []
        for a, p in zip(self.audio, self.audio_pts, strict=True):
            if float(np.sqrt(np.mean(a**2))) > threshold:
                if spans and p - spans[-1][1] < 0.3:
                    spans[-1][1] = p + CHUNK_S
                else:
                    spans.append([p, p + CHUNK_S])
        return [(a, b) for a, b in spans]

    def last_sound_between(self, t0: float, t1: float, threshold: float = 0.01) -> float | None:
        last = None
        for a, p in zip(self.audio, self.audio_pts, strict=True):
            if t0 <= p < t1 and float(np.sqrt(np.mean(a**2))) > threshold:
                last = p + CHUNK_S
        return last


async def converse(
    conversation: Conversation,
    mic: np.ndarray,
    *,
    seconds: float,
    echo_db: float | None = None,
    echo_delay: float = 0.15,
) -> Outcome:
    """Play ``mic`` (16 kHz) into the conversation in 20 ms chunks on its clock for ``seconds``,
    pulling media like a transport; returns what came out."""
    out = Outcome()
    await conversation.start()
    clock = conversation.clock
    played: dict[int, np.ndarray] = {}  # by 20 ms slot

    async def video() -> None:
        while True:
            frame = await conversation.next_video_frame()
            out.video_pts.append(frame.pts)

    async def audio() -> None:
        while True:
            chunk = await conversation.next_audio_frame()
            out.audio.append(chunk.samples)
            out.audio_pts.append(chunk.pts)
            if echo_db is not None:
                slot = round(chunk.pts / CHUNK_S)
                played[slot] = resample_poly(chunk.samples, 1, 3).astype(np.float32)

    async def events() -> None:
        async for event in conversation.events():
            out.events.append(event.to_json())

    # The microphone keeps sending (silence) until the end, as a real one does.
    mic = np.concatenate([mic, np.zeros(max(0, round(seconds * MIC_RATE) - len(mic)), np.float32)])

    async def microphone() -> None:
        step = round(CHUNK_S * MIC_RATE)
        gain = 10 ** (-(echo_db or 0.0) / 20)
        for k in range(0, len(mic) - step + 1, step):
            t = k / MIC_RATE
            await clock.sleep_until(t + CHUNK_S)  # a chunk arrives once it has been captured
            samples = mic[k : k + step].copy()
            back = played.get(round((t - echo_delay) / CHUNK_S))
            if back is not None and len(back) == step:
                samples += back * gain
            conversation.push_audio(AudioChunk(samples, MIC_RATE, max(t, 1e-6)))
        await asyncio.sleep(max(0.0, seconds - clock.now()))

    tasks = [asyncio.create_task(c()) for c in (video, audio, events)]
    try:
        await asyncio.wait_for(microphone(), timeout=seconds + 30)
        await asyncio.sleep(max(0.0, seconds - clock.now()))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await conversation.close()
    return out


def make(character: Character, models: Models, **options: Any) -> Conversation:
    opts = SessionOptions(brain="builtin", seed=1, size=(320, 180), **options)
    return Conversation(character=character, options=opts, parts=virtual_parts(character, models))
