"""Typed events a live conversation sends out (to the transport, the page and the server).

Each is a frozen dataclass stamped with ``t``, the media time it happened. ``to_json()`` gives
the wire form the page reads (``{"type": ..., "t": ..., fields}``); the server reads the objects
themselves (``isinstance(event, TurnFinished)``), never re-parses dicts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Backchannel",
    "Interrupted",
    "Overheard",
    "ReplySpoken",
    "SessionError",
    "SessionEvent",
    "StateChanged",
    "ToolCallFinished",
    "ToolCallRequested",
    "TurnFinished",
    "TurnTraced",
    "UserTranscript",
    "VideoLowered",
    "VisionObserved",
]


@dataclass(frozen=True)
class SessionEvent:
    """Base of every event: ``t`` is the media time (seconds on the conversation's clock)."""

    type: ClassVar[str] = "event"
    t: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = round(value, 3) if f.name == "t" else value
        return out


@dataclass(frozen=True)
class StateChanged(SessionEvent):
    """The character is ``listening``, ``thinking`` or ``speaking``."""

    type: ClassVar[str] = "state"
    state: str = "listening"


@dataclass(frozen=True)
class UserTranscript(SessionEvent):
    """What the user said: partial while they speak, final per segment or typed message."""

    type: ClassVar[str] = "transcript"
    text: str = ""
    final: bool = False
    typed: bool = False
    speaker: str = ""  # who said it, where a meeting tells ("meeting" when it cannot)


@dataclass(frozen=True)
class Overheard(SessionEvent):
    """In group mode: words that were not for the character (not answered)."""

    type: ClassVar[str] = "overheard"
    text: str = ""
    speaker: str = ""


@dataclass(frozen=True)
class Backchannel(SessionEvent):
    """The user said "mm-hm", "yeah", ... while the character talked: recorded, not a turn."""

    type: ClassVar[str] = "backchannel"
    text: str = ""


@dataclass(frozen=True)
class ReplySpoken(SessionEvent):
    """A clause of the character's reply (to turn ``turn``), placed to start playing at media
    time ``start`` for ``duration`` seconds."""

    type: ClassVar[str] = "reply"
    text: str = ""
    start: float = 0.0
    turn: int = 0
    duration: float = 0.0


@dataclass(frozen=True)
class Interrupted(SessionEvent):
    """The character stopped talking (``reason``: barge-in, typed message, client, ...)."""

    type: ClassVar[str] = "interrupted"
    reason: str = ""


@dataclass(frozen=True)
class VideoLowered(SessionEvent):
    """The session's video is below what was asked for (the machine was busy when it started):
    ``width`` x ``height`` at ``fps``, and why. The voice is not affected."""

    type: ClassVar[str] = "video_lowered"
    width: int = 0
    height: int = 0
    fps: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class SessionError(SessionEvent):
    """A short message for the user (the brain is not answering, an internal error).
    ``stage``: what failed, for operators ("llm", "tts", "asr", "video", or "session" for
    anything else)."""

    type: ClassVar[str] = "error"
    message: str = ""
    stage: str = "session"


@dataclass(frozen=True)
class ToolCallRequested(SessionEvent):
    """Run this UI tool in the page and answer with a ``tool_result`` client event."""

    type: ClassVar[str] = "tool_call"
    id: str = ""
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCallFinished(SessionEvent):
    """A finished (or refused) tool call, for the trace: never arguments or results."""

    type: ClassVar[str] = "tool"
    turn: int | None = None
    name: str = ""
    kind: str = ""
    ok: bool = False
    reason: str = ""
    elapsed_ms: float = 0.0

    def entry(self) -> dict[str, Any]:
        """The call as a trace entry (what ``TurnTrace.tools`` holds)."""
        return {
            "name": self.name, "kind": self.kind, "ok": self.ok, "reason": self.reason,
            "elapsed_ms": self.elapsed_ms,
        }  # fmt: skip


@dataclass(frozen=True)
class TurnTraced(SessionEvent):
    """A turn's latency trace (``TurnTrace.as_event`` without the type)."""

    type: ClassVar[str] = "trace"
    turn: int = 0
    marks: dict[str, float] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)
    latency: float | None = None
    interrupted: bool = False
    error: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    vision: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VisionObserved(SessionEvent):
    """What the character noticed on the user's camera or screen (``source``): ``what`` is
    ``appeared`` / ``left`` (a person), ``looking`` / ``looked_away``, ``hand_raised``,
    ``screen_text`` (the screen's text changed; ``lines`` is how many lines were read, the text
    itself stays on the server) or ``off`` (the input was switched off). ``delay`` is how long
    after the frame's arrival the observation was ready (seconds)."""

    type: ClassVar[str] = "vision"
    source: str = ""
    what: str = ""
    faces: int = 0
    lines: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class TurnFinished(SessionEvent):
    """A finished turn, for transcripts: what the user said (empty for the greeting), what the
    character said that was heard (cut at barge-in), the user's backchannels during the answer,
    wall-clock times and the latency trace."""

    type: ClassVar[str] = "turn"
    turn: int = 0
    user_text: str = ""
    typed: bool = False
    said: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    interrupted: bool = False
    backchannels: tuple[str, ...] = ()
    trace: dict[str, Any] = field(default_factory=dict)
