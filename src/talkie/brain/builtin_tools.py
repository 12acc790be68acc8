"""Tool use for the built-in brain (no LLM): pick a tool from the user's words, ask for what is
missing, run it, and say the outcome in a short sentence.

- Picking is ``pick_tool``: the request is matched against each tool's name, description and
  examples; chit-chat picks nothing and is answered as before.
- A required argument the request does not contain is asked for ("What's the order id?"); the
  next utterance, if it is a short answer, fills it and the tool runs. Anything else drops the
  question and is handled as a new request.
- The outcome is spoken: a UI action is confirmed ("Here you go: I've opened it on your
  screen."); a webhook's JSON answer is read from its ``message``/``answer``/``text``/``summary``
  field, else as a compact "key: value" list; a failure says what went wrong in plain words.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.journal import record_exchange
from talkie.brain.tools.matcher import DEFAULT_THRESHOLD, extract_arguments, pick_tool
from talkie.brain.tools.spec import Tool, ToolArgumentError
from talkie.brain.tools.webhook import ToolResult

__all__ = ["BuiltinToolUse", "ToolPlan", "spoken_outcome", "spoken_result"]

log = logging.getLogger(__name__)

UI_DONE = "Here you go: I've opened it on your screen."
UI_FAILED = "Sorry, I couldn't show that on your screen."
UI_TIMEOUT = "Sorry, your screen didn't respond in time."
UNCLEAR = "I didn't quite get the details for that. Could you say it another way?"
# Fields a service puts its answer in, in order of preference.
_MESSAGE_KEYS = ("message", "answer", "text", "summary", "spoken", "speech", "reply", "result")
_MAX_SPOKEN = 300
_MAX_FACTS = 5
# A reply to "What's the order id?" is short; a long utterance is a new request.
_MAX_ANSWER_WORDS = 8
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ToolPlan:
    """A tool to run with these arguments, or to ask for its ``missing`` required ones first."""

    tool: Tool
    arguments: dict[str, Any] = field(hash=False)
    missing: tuple[str, ...] = ()


class BuiltinToolUse:
    """The built-in brain's tools (one per conversation: it remembers the question it asked)."""

    def __init__(
        self,
        tools: Sequence[Tool],
        executor: ToolExecutor,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        tool_choice: str | Mapping[str, Any] = "auto",
    ) -> None:
        self.tools = tuple(tools)
        self.executor = executor
        self.threshold = threshold
        # OpenAI's tool_choice: "required" takes the best-matching tool however weak the match,
        # a named function that tool; "none" never reaches here (no tool use at all).
        self.forced: Tool | None = None
        if isinstance(tool_choice, Mapping):
            name = (tool_choice.get("function") or {}).get("name")
            self.forced = next((t for t in self.tools if t.name == name), None)
        elif tool_choice == "required":
            self.threshold = 0.0
        self._asked: ToolPlan | None = None

    def plan(self, user_text: str) -> ToolPlan | None:
        """What to do with ``user_text``: a tool to run (or to ask arguments for), or ``None``
        (no tool fits: answer it the usual way)."""
        asked, self._asked = self._asked, None
        choice = pick_tool(user_text, self.tools, threshold=self.threshold)
        if asked is not None and (choice is None or choice.tool == asked.tool):
            found, _ = extract_arguments(user_text, asked.tool)
            filled = {k: v for k, v in found.items() if k in asked.missing}
            if filled and len(_WORD.findall(user_text)) <= _MAX_ANSWER_WORDS:
                arguments = {**asked.arguments, **filled}
                missing = tuple(m for m in asked.missing if m not in arguments)
                return ToolPlan(asked.tool, arguments, missing)
        if self.forced is not None and (choice is None or choice.tool != self.forced):
            arguments, missing = extract_arguments(user_text, self.forced)
            return ToolPlan(self.forced, arguments, missing)
        if choice is None:
            return None
        log.debug("tool %r picked (score %.2f)", choice.tool.name, choice.score)
        return ToolPlan(choice.tool, dict(choice.arguments), choice.missing)

    def ask(self, plan: ToolPlan) -> str:
        """The question for ``plan.missing`` (remembered: the next utterance may answer it)."""
        self._asked = plan
        names = [_humanize(m) for m in plan.missing]
        wanted = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"I can do that. What's the {wanted}?"

    async def run(self, plan: ToolPlan) -> str:
        """Run the tool; returns what to say about the outcome."""
        tool = plan.tool
        try:
            arguments = tool.validate_arguments(plan.arguments)
        except ToolArgumentError as exc:
            self.executor.record_rejected(
                tool.name, ToolResult(ok=False, reason="arguments", error=str(exc))
            )
            return UNCLEAR
        result = await self.executor.run(tool, arguments)
        record_exchange(
            "call_" + secrets.token_hex(6), tool.name, json.dumps(arguments), result.to_message()
        )
        return spoken_result(tool, result)


def spoken_outcome(result_text: str) -> str:
    """What to say about a result the caller ran and sent back as text (a chat client's tool):
    its JSON's message field or facts, else the text itself."""
    try:
        value = json.loads(result_text)
    except ValueError:
        value = result_text
    if isinstance(value, Mapping) and "result" in value and len(value) <= 2:
        value = value["result"]  # the {"ok": true, "result": ...} envelope
    if isinstance(value, Mapping):
        message = _message(value)
        if message:
            return message
        facts = _facts(value)
        return f"Here's what I found. {facts}." if facts else "Done."
    text = " ".join(str(value).split())
    return _cut(text) if text else "Done."


def spoken_result(tool: Tool, result: ToolResult) -> str:
    """One or two short sentences about a tool's outcome, for the character to say."""
    if not result.ok:
        if tool.kind == "ui":
            return UI_TIMEOUT if result.reason == "timeout" else UI_FAILED
        return result.spoken
    content = result.content
    if tool.kind == "ui":
        return UI_DONE
    if isinstance(content, Mapping):
        message = _message(content)
        if message:
            return message
        facts = _facts(content)
        return f"Here's what I found. {facts}." if facts else "Done."
    text = " ".join(str(content).split())
    return _cut(text) if text else "Done."


def _message(content: Mapping[str, Any]) -> str:
    for key in _MESSAGE_KEYS:
        value = content.get(key)
        if isinstance(value, str) and value.strip():
            return _cut(" ".join(value.split()))
    return ""


def _facts(content: Mapping[str, Any]) -> str:
    """``{"status": "shipped", "eta_days": 2}`` -> ``"Status: shipped, eta days: 2"``."""
    parts: list[str] = []
    for key, value in content.items():
        if len(parts) >= _MAX_FACTS:
            break
        shown = _scalar(value)
        if shown is None and isinstance(value, list):
            items = [s for s in (_scalar(v) for v in value[:_MAX_FACTS]) if s]
            shown = ", ".join(items) if items else None
        if shown:
            parts.append(f"{_humanize(str(key))}: {shown}")
    text = ", ".join(parts)
    return _cut(text[:1].upper() + text[1:]).rstrip(".") if text else ""


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())[:80]
    return None


def _humanize(name: str) -> str:
    """``order_id`` / ``orderId`` -> ``order id``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return " ".join(spaced.lower().split())


def _cut(text: str) -> str:
    if len(text) <= _MAX_SPOKEN:
        return text
    return text[:_MAX_SPOKEN].rsplit(" ", 1)[0] + "..."
