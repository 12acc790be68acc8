"""Typed, frozen messages that flow between Talkie's stages.

Every message carries the media time it refers to (seconds on the conversation's media clock, or
seconds from the start of a clip for offline rendering). Arrays inside messages are never mutated
after construction; stages that need to change one make a copy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Mono float32 PCM in [-1, 1] starting at media time ``pts`` (seconds)."""

    samples: np.ndarray
    sample_rate: int
    pts: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme (IPA symbol, or "" for silence) spanning [start, end) seconds of its clip."""

    phoneme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, eq=False)
class SpeechClip:
    """Synthesised (or aligned) speech: audio plus the phoneme timeline that produced it.

    ``phonemes`` are sorted, non-overlapping and lie within ``[0, duration]``; gaps between them
    are silence. ``text`` is what was spoken (may be empty for audio with unknown content).
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: tuple[PhonemeTiming, ...]
    text: str = ""
    pts: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclass(frozen=True)
class FaceParams:
    """The character's face for one video frame. Zero everywhere is the face as in the photo.

    Mouth and face values are fractions of their full range (0..1 unless noted); head angles are
    degrees; translations are fractions of the face height; gaze is -1..1 of the eye's range.
    """

    jaw_open: float = 0.0  # 0 closed (as photographed) .. 1 widest speech opening
    lip_width: float = 0.0  # -1 narrow/pursed .. 1 wide (spread lips, "ee")
    lip_round: float = 0.0  # 0 .. 1 rounded, protruded ("oo")
    lip_press: float = 0.0  # 0 .. 1 lips pressed together (p, b, m)
    upper_lip_raise: float = 0.0  # 0 .. 1 upper lip lifted (f, v show the upper teeth)
    smile: float = 0.0  # -1 frown .. 1 smile
    brow_raise: float = 0.0  # -1 frown .. 1 raised
    blink_left: float = 0.0  # 0 open .. 1 closed (the character's left eye)
    blink_right: float = 0.0
    gaze_x: float = 0.0  # -1 character looks to the viewer's left .. 1 right
    gaze_y: float = 0.0  # -1 up .. 1 down
    head_yaw: float = 0.0  # degrees, + turns to the viewer's right
    head_pitch: float = 0.0  # degrees, + nods down
    head_roll: float = 0.0  # degrees, + tilts clockwise in the image
    head_dx: float = 0.0  # fraction of face height, + right
    head_dy: float = 0.0  # fraction of face height, + down
    # 0 tongue low in the mouth .. 1 tip up at the upper teeth (l, n, t, d) or between them (th).
    # Last, so positional construction and arrays from before it existed keep their meaning.
    tongue: float = 0.0
    # 0 .. 1 lips meet, relaxed, over whatever gap the photo shows (a pause in speech on a photo
    # smiling with its teeth); unlike lip_press it does not thin or press the lips.
    lip_close: float = 0.0

    def replace(self, **changes: float) -> FaceParams:
        return dataclasses.replace(self, **changes)

    def as_array(self) -> np.ndarray:
        return np.array(dataclasses.astuple(self), dtype=np.float32)

    @classmethod
    def from_array(cls, values: np.ndarray) -> FaceParams:
        return cls(*(float(v) for v in values))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class FaceFrame:
    """Face parameters for video frame ``index`` presented at media time ``pts``."""

    index: int
    pts: float
    params: FaceParams
    generation: int = 0


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """An RGB uint8 image (H x W x 3) presented at media time ``pts``."""

    image: np.ndarray
    pts: float
    index: int = 0
    generation: int = 0


@dataclass(frozen=True)
class VoiceActivity:
    """The user started (``speaking=True``) or stopped speaking at media time ``pts``."""

    speaking: bool
    pts: float = 0.0


@dataclass(frozen=True)
class Transcript:
    """Recognised user speech; ``final`` is False for partial results while the user speaks."""

    text: str
    final: bool
    pts: float = 0.0


@dataclass(frozen=True)
class ReplyText:
    """A piece of the character's reply text, streamed by the brain."""

    text: str
    generation: int
    final: bool = False
    pts: float = 0.0


@dataclass(frozen=True)
class Interrupt:
    """Control message: cancel everything belonging to ``generation`` (never dropped)."""

    generation: int
    reason: str = ""
    pts: float = 0.0
