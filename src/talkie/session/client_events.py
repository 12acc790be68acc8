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
    "ClientEvent", "InterruptRequested", "ModeChanged", "PushToTalk", "TextTyped",
    "ToolResultSent", "VisionSwitched", "parse_client_event",
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


ClientEvent = (
    PushToTalk | ModeChanged | TextTyped | InterruptRequested | ToolResultSent | VisionSwitched
)


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
    raise ValueError(f"unknown event type {kind!r}")
