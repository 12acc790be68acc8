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


@dataclass(frozen=True, eq=False)
class SeenFrame:
    """One frame of the user's camera or shared screen (``source``), RGB uint8 (H x W x 3),
    arrived at media time ``pts``. Held only while it is analysed: frames are never stored."""

    source: str  # "camera" | "screen"
    image: np.ndarray
    pts: float


@dataclass(frozen=True)
class Presence:
    """What the camera shows of the user at media time ``pts`` (no pixels).

    ``x``/``y``: the face's centre in the camera picture (0..1, as the camera sees it, not
    mirrored); ``size``: its width over the picture's; ``looking``: the eyes are on the screen
    (None when the face is too small to tell); ``hand_raised``: a hand above the shoulders.
    """

    pts: float
    faces: int = 0
    x: float = 0.5
    y: float = 0.5
    size: float = 0.0
    looking: bool | None = None
    hand_raised: bool = False

    @property
    def present(self) -> bool:
        return self.faces > 0


@dataclass(frozen=True)
class ScreenText:
    """The text read on the user's shared screen, top to bottom, and when it last changed."""

    pts: float
    lines: tuple[str, ...] = ()
    ocr_ms: float = 0.0


@dataclass(frozen=True, eq=False)
class Sight:
    """Everything the character can see at media time ``pts``: which inputs are on, the
    latest presence and screen text, and (only for a brain that takes images) the latest
    picture as JPEG bytes, kept in memory for the next answer and never written anywhere."""

    pts: float
    camera: bool = False
    screen: bool = False
    presence: Presence | None = None
    screen_text: ScreenText | None = None
    jpeg: bytes | None = None
    jpeg_source: str = ""

    def describe(self) -> str:
        """A short plain-text account for a brain's context."""
        parts: list[str] = []
        p = self.presence
        if not self.camera:
            parts.append("The user's camera is off.")
        elif p is None:
            parts.append("The camera is on; nothing has been seen yet.")
        elif not p.present:
            parts.append("The camera is on but nobody is in view.")
        else:
            who = "one person" if p.faces == 1 else f"{p.faces} people"
            look = {True: ", looking at you", False: ", looking away", None: ""}[p.looking]
            extra = ", a hand raised" if p.hand_raised else ""
            parts.append(f"The camera shows {who}{look}{extra}.")
        if self.screen:
            lines = self.screen_text.lines if self.screen_text else ()
            if lines:
                numbered = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
                parts.append(f"The user's shared screen shows these lines of text:\n{numbered}")
            else:
                parts.append("The user shares their screen; no text can be read on it.")
        return "\n".join(parts)

    def reference(self) -> dict[str, object]:
        """Which observation an answer used, for the turn's trace (no text, no pixels)."""
        out: dict[str, object] = {"camera": self.camera, "screen": self.screen}
        if self.presence is not None:
            out["faces"] = self.presence.faces
            out["presence_at"] = round(self.presence.pts, 3)
        if self.screen_text is not None:
            out["screen_lines"] = len(self.screen_text.lines)
            out["screen_at"] = round(self.screen_text.pts, 3)
        if self.jpeg is not None:
            out["image"] = self.jpeg_source
        return out
