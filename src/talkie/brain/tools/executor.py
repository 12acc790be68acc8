"""Who runs a brain's tool calls.

A brain decides *that* a tool runs and *with which arguments*; it never runs one itself. It hands
the call to a ``ToolExecutor`` it was given: the live session's executor forwards ``"ui"`` tools
to the browser page and calls ``"webhook"`` tools through ``WebhookCaller`` (SSRF guard, size and
time limits), and records every call in the turn's trace. The brain turns the ``ToolResult`` into
words (the built-in brain) or into a ``tool`` message for the model (an LLM brain).

Arguments reach the executor already validated against the tool's schema.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from talkie.brain.tools.spec import Tool
from talkie.brain.tools.webhook import ToolResult

__all__ = ["ToolExecutor"]


@runtime_checkable
class ToolExecutor(Protocol):
    """Runs one tool call. Never raises for a failed call (it returns ``ok=False`` with a short
    ``reason``); cancellation (barge-in) propagates and must stop the call promptly."""

    async def run(self, tool: Tool, arguments: dict[str, Any]) -> ToolResult: ...

    def record_rejected(self, name: str, result: ToolResult) -> None:
        """A call the brain refused before running it (no tool of that name, arguments that do
        not fit the schema): recorded like the others, so every call the brain was asked for
        shows in the turn's trace."""
        ...
