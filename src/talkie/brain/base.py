"""The brain protocol: conversation history + the user's words -> the reply, streamed as text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from talkie.errors import EngineError
from talkie.messages import Sight


@dataclass(frozen=True)
class ToolExchange:
    """A tool call made while answering, and what came back: ``arguments`` is the JSON text the
    brain sent, ``result`` what the tool returned, as given to the model (cut to a few KB)."""

    id: str
    name: str
    arguments: str
    result: str


@dataclass(frozen=True)
class Turn:
    """One line of the conversation. For the character, ``text`` is what the user actually
    heard (a reply cut short by barge-in keeps only its spoken part). A ``"context"`` turn is
    not dialogue: it is memory (a summary of older turns, notes from earlier sessions) that a
    brain may use as background (``talkie.brain.memory``). An assistant turn's ``tools`` are
    the calls it made before saying ``text`` (kept so the next answer knows what was done and
    found, not only what was said). A ``"context"`` turn may carry ``sight``: what the
    character sees on the user's camera and screen as this answer starts (its ``text`` is the
    sight's description; a brain may read the structure, and one that takes images the
    picture). Such a turn is given to one answer and never kept in the history."""

    role: Literal["user", "assistant", "context"]
    text: str
    tools: tuple[ToolExchange, ...] = ()
    sight: Sight | None = None


def latest_sight(history: Sequence[Turn]) -> Sight | None:
    """The newest sight given with ``history`` (None: nothing is seen, no camera or screen)."""
    for turn in reversed(history):
        if turn.sight is not None:
            return turn.sight
    return None


@runtime_checkable
class Brain(Protocol):
    """Produces the character's replies. ``reply`` streams text deltas as soon as they exist;
    cancelling the iteration (barge-in) must stop all work for that reply promptly."""

    name: str

    def greeting(self) -> str: ...

    def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]: ...


class BrainUnavailable(EngineError):
    """The brain cannot answer right now: its server is down, refuses the request, is too slow
    to start answering, or its stream stalls. The session turns this into a short spoken apology.

    ``reason`` is one of ``"connect"``, ``"http"``, ``"first_token"``, ``"stall"``, ``"total"``,
    ``"protocol"``, ``"network"``; ``partial`` is true when some reply text was already streamed.
    """

    def __init__(self, message: str, *, reason: str, partial: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.partial = partial
