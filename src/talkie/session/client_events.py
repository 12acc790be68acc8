"""What the page sends on the data channel, checked and typed before the session acts on it.

``parse_client_event`` turns one JSON object into a frozen message or raises ``ValueError``
with what is wrong (the transport reports it to the page); the conversation then only acts.
``tool_result`` and ``vision`` events keep their object: ``SessionTools.resolve`` and
``SessionVision.handle_event`` check their own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientEvent", "GroupModeChanged", "InterruptRequested", "ModeChanged", "PushToTalk",
    "SpeakerChanged", "TextTyped", "ToolResultSent", "VisionSwitched", "parse_client_event",
]  # fmt: skip

MAX_TYPED_CHARS = 2000


@dataclass(frozen=True)
class PushToTalk:
    down: bool


@dataclass(frozen=True)
class ModeChanged:
    hands_free: bool


@dataclass(frozen=True)
class TextTyped:
    text: str  # stripped, non-empty


@dataclass(frozen=True)
class InterruptRequested:
    pass


@dataclass(frozen=True)
class ToolResultSent:
    event: dict[str, Any]


@dataclass(frozen=True)
class VisionSwitched:
    event: dict[str, Any]


@dataclass(frozen=True)
class GroupModeChanged:
    """``{"type": "group", "on": true, "names": ["Nova"], "follow_up_s": 10}``: a meeting
    (answer only what is meant for the character); names default to the character's."""

    on: bool
    names: tuple[str, ...] = ()
    follow_up_s: float | None = None


@dataclass(frozen=True)
class SpeakerChanged:
    """``{"type": "speaker", "name": "Ada"}``: who is talking now, as the meeting shows it."""

    name: str


ClientEvent = (
    PushToTalk
    | ModeChanged
    | TextTyped
    | InterruptRequested
    | ToolResultSent
    | VisionSwitched
    | GroupModeChanged
    | SpeakerChanged
)
MAX_NAMES = 8
MAX_NAME_CHARS = 60


def _group(event: dict[str, Any]) -> GroupModeChanged:
    on = event.get("on")
    if not isinstance(on, bool):
        raise ValueError("'group' needs a boolean 'on'")
    names = event.get("names", [])
    if (
        not isinstance(names, list)
        or len(names) > MAX_NAMES
        or not all(isinstance(n, str) and 0 < len(n.strip()) <= MAX_NAME_CHARS for n in names)
    ):
        raise ValueError(
            f"'group' takes 'names': up to {MAX_NAMES} names of 1-{MAX_NAME_CHARS} characters"
        )
    follow = event.get("follow_up_s")
    if follow is not None and (
        isinstance(follow, bool) or not isinstance(follow, int | float) or not 0 <= follow <= 600
    ):
        raise ValueError("'follow_up_s' is a number of seconds from 0 to 600")
    return GroupModeChanged(on, tuple(n.strip() for n in names), follow)


def parse_client_event(event: Any) -> ClientEvent:
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError("an event is a JSON object with a string 'type'")
    kind = event["type"]
    if kind == "ptt":
        down = event.get("down")
        if not isinstance(down, bool):
            raise ValueError("'ptt' needs a boolean 'down'")
        return PushToTalk(down)
    if kind == "mode":
        hands_free = event.get("hands_free")
        if not isinstance(hands_free, bool):
            raise ValueError("'mode' needs a boolean 'hands_free'")
        return ModeChanged(hands_free)
    if kind == "text":
        text = event.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("'text' needs a non-empty string 'text'")
        if len(text) > MAX_TYPED_CHARS:
            raise ValueError(f"'text' is limited to {MAX_TYPED_CHARS} characters")
        return TextTyped(text.strip())
    if kind == "interrupt":
        return InterruptRequested()
    if kind == "tool_result":
        return ToolResultSent(event)
    if kind == "vision":
        return VisionSwitched(event)
    if kind == "group":
        return _group(event)
    if kind == "speaker":
        name = event.get("name")
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
            raise ValueError(
                f"'speaker' needs a string 'name' of up to {MAX_NAME_CHARS} characters"
            )
        return SpeakerChanged(name.strip())
    raise ValueError(f"unknown event type {kind!r}")
