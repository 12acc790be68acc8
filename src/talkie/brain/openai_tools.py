"""Tool calling for the OpenAI-compatible brain, with the standard chat-completions protocol.

One reply may take several requests ("rounds"):

1. the request carries ``tools`` (each declared tool's ``Tool.to_openai()``); the model streams
   text and/or ``tool_calls`` deltas: fragments keyed by ``index`` that carry the call's ``id``,
   the function ``name`` and pieces of its JSON ``arguments``, which ``ToolCallCollector``
   joins. Text before a call is yielded (spoken) as it comes;
2. when the stream ends with calls, each call's arguments are validated against its tool's
   schema and the calls run through the brain's ``ToolExecutor``, concurrently: the calls of one
   response are independent by the protocol's definition (the model issued them together).
   A call of an unknown tool or with invalid arguments is not run: its error goes back to the
   model, which can correct itself;
3. the follow-up request appends the assistant message with its ``tool_calls`` and one ``tool``
   message per call (``tool_call_id``, content = ``ToolResult.to_message()``); its text streams
   as usual, and it may call tools again.

After ``max_rounds`` rounds the next request carries no ``tools``, so the model has to answer in
words. Leaving the iteration (barge-in) cancels the running tools and closes the open stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.spec import Tool, ToolArgumentError
from talkie.brain.tools.webhook import ToolResult

__all__ = [
    "MAX_CALLS_PER_ROUND",
    "ToolCall",
    "ToolCallCollector",
    "assistant_message",
    "reply_with_tools",
    "run_calls",
]

log = logging.getLogger(__name__)

#: Calls beyond this many in one response are answered with an error instead of being run.
MAX_CALLS_PER_ROUND = 8
#: Said when the model only ever asked for tools and never answered in words.
GIVE_UP = "Sorry, I couldn't finish that. Could you ask me again?"

#: ``stream(messages, offer_tools, collector)``: one request, yielding cleaned text deltas and
#: feeding the tool-call fragments it sees to ``collector``.
StreamFn = Callable[
    [list[dict[str, Any]], bool, "ToolCallCollector"], AsyncGenerator[str, None]
]


@dataclass(frozen=True)
class ToolCall:
    """One complete call from the model. ``arguments`` is the JSON text it sent."""

    id: str
    name: str
    arguments: str


class ToolCallCollector:
    """Joins streamed ``tool_calls`` fragments into complete calls.

    OpenAI-style servers key fragments by ``index`` (the first one carries ``id`` and the name,
    later ones pieces of ``arguments``); some servers (Ollama, non-streamed answers) send each
    call whole, without an index, sometimes with ``arguments`` as an object. Both work here.
    """

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []
        self._by_index: dict[int, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def push(self, fragments: Sequence[Any]) -> bool:
        """Add the fragments of one chunk; returns whether any was a tool-call fragment."""
        seen = False
        for fragment in fragments:
            if not isinstance(fragment, dict):
                continue
            seen = True
            slot = self._slot(fragment)
            if isinstance(fragment.get("id"), str) and fragment["id"]:
                slot["id"] = fragment["id"]
            function = fragment.get("function")
            if not isinstance(function, dict):
                continue
            name = function.get("name")
            # Streamed names come whole in the first fragment; a few servers repeat them.
            if isinstance(name, str) and name and not slot["name"].endswith(name):
                slot["name"] += name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                slot["arguments"].append(arguments)
            elif isinstance(arguments, dict):
                slot["arguments"] = [json.dumps(arguments, ensure_ascii=False)]
        return seen

    def calls(self) -> list[ToolCall]:
        """The complete calls, in order; a call without an id gets one (``call_N``)."""
        out: list[ToolCall] = []
        for n, slot in enumerate(self._calls):
            out.append(
                ToolCall(
                    id=slot["id"] or f"call_{n}",
                    name=slot["name"].strip(),
                    arguments="".join(slot["arguments"]),
                )
            )
        return out

    def _new(self) -> dict[str, Any]:
        slot: dict[str, Any] = {"id": "", "name": "", "arguments": []}
        self._calls.append(slot)
        return slot

    def _slot(self, fragment: dict[str, Any]) -> dict[str, Any]:
        index = fragment.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            if index not in self._by_index:
                self._by_index[index] = self._new()
            return self._by_index[index]
        call_id = fragment.get("id")
        if isinstance(call_id, str) and call_id:
            for slot in self._calls:
                if slot["id"] == call_id:
                    return slot
            return self._new()
        function = fragment.get("function")
        named = isinstance(function, dict) and bool(function.get("name"))
        # No index and no id: a named fragment starts a call, a bare one continues the last.
        return self._calls[-1] if self._calls and not named else self._new()


def assistant_message(text: str, calls: Sequence[ToolCall]) -> dict[str, Any]:
    """The assistant turn that asked for ``calls`` (what it said first, if anything)."""
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }


async def run_calls(
    calls: Sequence[ToolCall], tools: Mapping[str, Tool], executor: ToolExecutor
) -> list[dict[str, Any]]:
    """Run ``calls`` concurrently; returns one ``tool`` message per call, in the calls' order."""
    results = await asyncio.gather(
        *(_run_one(call, n, tools, executor) for n, call in enumerate(calls))
    )
    return [
        {"role": "tool", "tool_call_id": call.id, "content": result.to_message()}
        for call, result in zip(calls, results, strict=True)
    ]


async def _run_one(
    call: ToolCall, n: int, tools: Mapping[str, Tool], executor: ToolExecutor
) -> ToolResult:
    tool = tools.get(call.name)
    if n >= MAX_CALLS_PER_ROUND or tool is None:
        if tool is None:
            error, reason = f"there is no tool named {call.name[:64]!r}", "unknown_tool"
        else:
            error = f"at most {MAX_CALLS_PER_ROUND} tool calls at once; this one was not run"
            reason = "too_many"
        refusal = ToolResult(ok=False, error=error, reason=reason)
        executor.record_rejected(call.name[:64], refusal)
        return refusal
    try:
        arguments = tool.validate_arguments(call.arguments)
    except ToolArgumentError as exc:
        # The model gets the problem and can retry; the log names the argument, not its value.
        log.info("tool %r: the model's arguments were refused (%s)", tool.name, exc.argument)
        result = ToolResult(ok=False, reason="arguments", error=str(exc))
        executor.record_rejected(tool.name, result)
        return result
    try:
        return await executor.run(tool, arguments)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the executor must not raise; if it does, the reply goes on
        log.error("tool %r: the executor failed", tool.name, exc_info=exc)
        return ToolResult(ok=False, reason="internal", error="the tool failed")


async def reply_with_tools(
    messages: list[dict[str, Any]],
    *,
    tools: Sequence[Tool],
    executor: ToolExecutor | None,
    stream: StreamFn,
    max_rounds: int,
) -> AsyncGenerator[str, None]:
    """The whole reply: stream a request, run the calls it asks for, stream the follow-up...
    (see the module docstring). Without an executor, no tools are offered."""
    by_name = {t.name: t for t in tools} if executor is not None else {}
    said = False
    for rounds in itertools.count():
        offer = bool(by_name) and rounds < max_rounds
        collector = ToolCallCollector()
        text: list[str] = []
        # aclosing: leaving this generator (barge-in) closes the HTTP stream at once.
        async with contextlib.aclosing(stream(messages, offer, collector)) as deltas:
            async for delta in deltas:
                text.append(delta)
                yield delta
        said = said or any(t.strip() for t in text)
        calls = collector.calls()
        if not calls:
            return
        if not offer or executor is None:
            log.warning("the model asked for %d tool call(s) when none were offered; ignored",
                        len(calls))  # fmt: skip
            if not said:
                yield GIVE_UP
            return
        log.debug("tool round %d: %s", rounds + 1, ", ".join(c.name for c in calls))
        results = await run_calls(calls, by_name, executor)
        messages = [*messages, assistant_message("".join(text).strip(), calls), *results]
