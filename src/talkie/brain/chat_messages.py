"""OpenAI chat ``messages`` -> what a brain takes: the history, the user's words, and the results
of tool calls the client ran.

- ``system``/``developer`` messages become ``"context"`` turns: notes that join the persona's
  system prompt, never replace it (the character's owner sets the persona and its guardrails;
  a chat client only adds to them);
- an ``assistant`` message with ``tool_calls``, the ``tool`` messages answering them and the
  assistant's following words become one assistant ``Turn`` with its ``tools``;
- the last ``user`` message is the question; assistant tool calls after it whose results
  follow (the client ran them) are ``continue_after``: the reply continues from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from talkie.brain.base import ToolExchange, Turn
from talkie.brain.tools.journal import MAX_HISTORY_RESULT_CHARS
from talkie.errors import InvalidInputError

__all__ = ["ChatInput", "message_text", "parse_chat_messages"]

MAX_MESSAGE_CHARS = 20_000


@dataclass(frozen=True)
class ChatInput:
    history: list[Turn]
    user_text: str
    continue_after: tuple[ToolExchange, ...]


def message_text(content: Any) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "input_text")
        )  # fmt: skip
    else:
        raise InvalidInputError("a message's content must be text or a list of text parts")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(f"a message is limited to {MAX_MESSAGE_CHARS} characters")
    return text


def parse_chat_messages(messages: Sequence[Mapping[str, Any]]) -> ChatInput:
    """See the module docstring. Raises ``InvalidInputError`` naming the problem (no user
    message, a tool result without its call, ...)."""
    last_user = max(
        (i for i, m in enumerate(messages) if m.get("role") == "user"), default=None
    )
    if last_user is None:
        raise InvalidInputError("messages must contain a user message")
    user_text = message_text(messages[last_user].get("content")).strip()
    if not user_text:
        raise InvalidInputError("the last user message is empty")
    history = _turns(messages[:last_user])
    after = _turns(messages[last_user + 1 :])
    continue_after: tuple[ToolExchange, ...] = ()
    if after:
        if len(after) != 1 or after[0].role != "assistant" or after[0].text or not after[0].tools:
            raise InvalidInputError(
                "after the last user message only the assistant's tool calls and their tool "
                "results may follow"
            )
        continue_after = after[0].tools
    return ChatInput(history, user_text, continue_after)


def _turns(messages: Sequence[Mapping[str, Any]]) -> list[Turn]:
    turns: list[Turn] = []
    pending: dict[str, tuple[str, str]] = {}  # open calls: id -> (name, arguments)
    exchanges: list[ToolExchange] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            if call_id not in pending:
                raise InvalidInputError(
                    f"messages[{index}]: a tool result for an unknown tool_call_id {call_id[:40]!r}"
                )
            name, arguments = pending.pop(call_id)
            result = message_text(message.get("content"))[:MAX_HISTORY_RESULT_CHARS]
            exchanges.append(ToolExchange(call_id, name, arguments, result))
            if not pending:
                turns.append(Turn("assistant", "", tuple(exchanges)))
                exchanges = []
            continue
        if pending:
            raise InvalidInputError(
                f"messages[{index}]: tool call(s) {', '.join(sorted(pending))[:80]} have no result"
            )
        text = message_text(message.get("content")).strip()
        if role in ("system", "developer"):
            if text:
                turns.append(Turn("context", text))
        elif role == "user":
            turns.append(Turn("user", text))
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise InvalidInputError(f"messages[{index}].tool_calls must be a list")
            for call in calls:
                call_id, name, arguments = _call(call, index)
                pending[call_id] = (name, arguments)
            if text or not calls:
                _add_assistant_text(turns, text)
        else:
            raise InvalidInputError(f"messages[{index}]: unknown role {str(role)[:20]!r}")
    if pending:
        raise InvalidInputError(f"tool call(s) {', '.join(sorted(pending))[:80]} have no result")
    return turns


def _add_assistant_text(turns: list[Turn], text: str) -> None:
    last = turns[-1] if turns else None
    if last is not None and last.role == "assistant" and last.tools and not last.text:
        turns[-1] = Turn("assistant", text, last.tools)  # the words after its tool calls
    else:
        turns.append(Turn("assistant", text))


def _call(call: Any, index: int) -> tuple[str, str, str]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise InvalidInputError(f"messages[{index}].tool_calls: each call needs a function name")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidInputError(f"messages[{index}].tool_calls: each call needs an id")
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return call_id, function["name"][:64], arguments[:MAX_HISTORY_RESULT_CHARS]
