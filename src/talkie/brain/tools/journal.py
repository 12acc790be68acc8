"""The tool calls of one reply, collected for the conversation's history.

A brain's ``reply`` streams text only; the calls it makes on the way are recorded here, so the
caller can keep them with the assistant's turn (``Turn.tools``) and the next request shows the
model what it did and found. The caller opens a journal around the reply (``tool_journal()``);
brains call ``record_exchange`` for each call whose result they saw. A context variable carries
the journal, so concurrent replies (a speculative answer next to the one being heard) keep their
own, and the tasks a reply starts (concurrent calls) write to their reply's list.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator
from typing import Any

from talkie.brain.base import ToolExchange

__all__ = ["MAX_HISTORY_RESULT_CHARS", "record_exchange", "tool_journal"]

#: A result kept in the history is cut to this many characters (a webhook may answer 64 KiB).
MAX_HISTORY_RESULT_CHARS = 2000

_JOURNAL: contextvars.ContextVar[list[ToolExchange] | None] = contextvars.ContextVar(
    "talkie_tool_journal", default=None
)


@contextlib.contextmanager
def tool_journal() -> Iterator[list[ToolExchange]]:
    """Collect the exchanges recorded until the block ends (in the order they finished)."""
    journal: list[ToolExchange] = []
    token = _JOURNAL.set(journal)
    try:
        yield journal
    finally:
        _JOURNAL.reset(token)


def record_exchange(call_id: str, name: str, arguments: Any, result: str) -> None:
    """Record one call in the current journal (nothing happens outside one)."""
    journal = _JOURNAL.get()
    if journal is None:
        return
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    if len(result) > MAX_HISTORY_RESULT_CHARS:
        result = result[: MAX_HISTORY_RESULT_CHARS - 3] + "..."
    journal.append(ToolExchange(id=call_id, name=name, arguments=arguments, result=result))
