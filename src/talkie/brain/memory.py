"""Conversation memory: recent turns word for word within a token budget, older turns folded into
a rolling summary, and (opt-in) what the character remembers of this person from earlier
sessions.

The brain receives ``ConversationMemory.context()``: a ``Turn("context", ...)`` first when there
is a summary or a recollection (an LLM gets it in its system message), then the recent turns.
The summary is extractive (what was asked, the first sentence of each answer), so it costs no
LLM call and no latency; it is bounded too, dropping its oldest lines first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from talkie.brain.base import Turn

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_LINE_CHARS = 160


def estimate_tokens(text: str) -> int:
    """About four characters per token for English (no tokenizer needed for a budget)."""
    return max(1, (len(text) + 3) // 4)


def fold_turn(turn: Turn) -> str:
    """One short line for a summary: what the user asked or said, what the character answered."""
    text = " ".join(turn.text.split())
    if turn.role == "assistant":
        text = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(text) > _LINE_CHARS:
        text = text[: _LINE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f"{'They said' if turn.role == 'user' else 'You said'}: {text}"


def bounded_lines(lines: list[str], max_tokens: int) -> list[str]:
    """The newest lines that fit in ``max_tokens`` (in their original order)."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        used += estimate_tokens(line)
        if used > max_tokens:
            break
        kept.append(line)
    return kept[::-1]


@dataclass
class ConversationMemory:
    """``budget_tokens`` for the recent turns verbatim; ``summary_tokens`` for the summary of
    older ones; ``recall``: notes from earlier sessions with this person (already bounded)."""

    budget_tokens: int = 1500
    summary_tokens: int = 400
    recall: str = ""
    turns: list[Turn] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def add(self, turn: Turn) -> None:
        self.turns.append(turn)
        while len(self.turns) > 1 and self._recent_tokens() > self.budget_tokens:
            self.summary.append(fold_turn(self.turns.pop(0)))
        self.summary = bounded_lines(self.summary, self.summary_tokens)

    def context(self) -> list[Turn]:
        """What the brain sees: the summary/recollection (if any), then the recent turns."""
        parts = []
        if self.recall.strip():
            parts.append("From earlier conversations with this person:\n" + self.recall.strip())
        if self.summary:
            parts.append("Earlier in this conversation:\n" + "\n".join(self.summary))
        head = [Turn("context", "\n\n".join(parts))] if parts else []
        return [*head, *self.turns]

    def _recent_tokens(self) -> int:
        return sum(estimate_tokens(t.text) for t in self.turns)
