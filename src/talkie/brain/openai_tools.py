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

- ``tool_choice`` (OpenAI's values) is honoured: ``"none"`` offers no tools, ``"required"`` and
  ``{"type": "function", "function": {"name": ...}}`` are sent with the first request (a named
  tool is the only one offered then); later rounds are ``"auto"``.
- Small local models (Qwen2.5) often write a call as bare JSON text (``{"name": ..,
  "arguments": {..}}``) instead of the protocol's ``tool_calls``: ``BareCallFilter`` holds back
  a reply that starts like JSON and, if it is a call of an offered tool, treats it as one.
- A call of a tool that the *caller* runs (``executor.defers(tool)``: a text-chat client's own
  tools) is not run here: ``DeferredToolCalls`` is raised with the round's calls, and the
  caller answers with them (``finish_reason: "tool_calls"``).
- Every call's exchange (call and result) is recorded in the current tool journal
  (``talkie.brain.tools.journal``), so the caller can keep it in the history; a history's
  assistant turns with ``tools`` become the protocol's messages again (``history_messages``).
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

from talkie.brain.base import ToolExchange
from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.journal import record_exchange
from talkie.brain.tools.spec import Tool, ToolArgumentError
from talkie.brain.tools.webhook import ToolResult
from talkie.errors import InvalidInputError

__all__ = [
    "MAX_CALLS_PER_ROUND",
    "BareCallFilter",
    "DeferredToolCalls",
    "ToolCall",
    "ToolCallCollector",
    "ToolChoiceValue",
    "assistant_message",
    "check_tool_choice",
    "exchange_messages",
    "reply_with_tools",
    "run_calls",
]

log = logging.getLogger(__name__)

#: Calls beyond this many in one response are answered with an error instead of being run.
MAX_CALLS_PER_ROUND = 8
#: Said when the model only ever asked for tools and never answered in words.
GIVE_UP = "Sorry, I couldn't finish that. Could you ask me again?"

#: OpenAI's ``tool_choice``: "auto", "none", "required" or {"type": "function", "function":
#: {"name": NAME}}.
ToolChoiceValue = str | dict[str, Any]

#: ``stream(messages, offer, tool_choice, collector)``: one request offering the tools ``offer``
#: (none: no ``tools`` field) with this ``tool_choice``, yielding cleaned text deltas and feeding
#: the tool-call fragments it sees to ``collector``.
StreamFn = Callable[
    [list[dict[str, Any]], Sequence[Tool], ToolChoiceValue, "ToolCallCollector"],
    AsyncGenerator[str, None],
]


class DeferredToolCalls(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """The model called tools that the caller runs (a chat client's tools): ``calls`` are the
    round's calls, ``text`` what the model said before them."""

    def __init__(self, calls: Sequence[ToolCall], text: str) -> None:
        super().__init__(f"{len(calls)} tool call(s) for the caller to run")
        self.calls = list(calls)
        self.text = text


def check_tool_choice(value: Any, tools: Sequence[Tool]) -> ToolChoiceValue:
    """Validate an OpenAI ``tool_choice`` against ``tools``; ``InvalidInputError`` names the
    problem. ``None`` means ``"auto"``."""
    if value is None:
        return "auto"
    if value in ("auto", "none", "required"):
        if value == "required" and not tools:
            raise InvalidInputError('tool_choice "required" needs at least one tool')
        return str(value)
    if isinstance(value, Mapping) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or name not in {t.name for t in tools}:
            raise InvalidInputError(f"tool_choice names no available tool ({str(name)[:64]!r})")
        return {"type": "function", "function": {"name": name}}
    raise InvalidInputError(
        'tool_choice must be "auto", "none", "required" or '
        '{"type": "function", "function": {"name": ...}}'
    )


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
    messages = []
    for call, result in zip(calls, results, strict=True):
        content = result.to_message()
        record_exchange(call.id, call.name, call.arguments, content)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    return messages


def exchange_messages(text: str, exchanges: Sequence[ToolExchange]) -> list[dict[str, Any]]:
    """An assistant turn that called tools, as protocol messages: the calls, their results, and
    (if it said anything after them) its words."""
    calls = [ToolCall(e.id, e.name, e.arguments) for e in exchanges]
    messages = [assistant_message("", calls)]
    messages += [
        {"role": "tool", "tool_call_id": e.id, "content": e.result} for e in exchanges
    ]
    if text.strip():
        messages.append({"role": "assistant", "content": text.strip()})
    return messages


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
    tool_choice: ToolChoiceValue = "auto",
) -> AsyncGenerator[str, None]:
    """The whole reply: stream a request, run the calls it asks for, stream the follow-up...
    (see the module docstring). Without an executor, or with ``tool_choice="none"``, no tools
    are offered."""
    by_name = {t.name: t for t in tools} if executor is not None else {}
    if tool_choice == "none":
        by_name = {}
    said = False
    for rounds in itertools.count():
        offer: Sequence[Tool] = list(by_name.values()) if rounds < max_rounds else []
        choice: ToolChoiceValue = tool_choice if rounds == 0 and offer else "auto"
        if isinstance(choice, dict):
            offer = [by_name[choice["function"]["name"]]]
        collector = ToolCallCollector()
        text: list[str] = []
        # aclosing: leaving this generator (barge-in) closes the HTTP stream at once.
        async with contextlib.aclosing(stream(messages, offer, choice, collector)) as deltas:
            async for delta in deltas:
                text.append(delta)
                yield delta
        said = said or any(t.strip() for t in text)
        calls = collector.calls()
        if not calls:
            return
        defers = getattr(executor, "defers", None)
        if offer and callable(defers) and any(
            c.name in by_name and defers(by_name[c.name]) for c in calls
        ):
            raise DeferredToolCalls(calls, "".join(text).strip())
        if not offer or executor is None:
            log.warning("the model asked for %d tool call(s) when none were offered; ignored",
                        len(calls))  # fmt: skip
            if not said:
                yield GIVE_UP
            return
        log.debug("tool round %d: %s", rounds + 1, ", ".join(c.name for c in calls))
        results = await run_calls(calls, by_name, executor)
        messages = [*messages, assistant_message("".join(text).strip(), calls), *results]


class BareCallFilter:
    """Recognises a tool call written as plain JSON text (see the module docstring).

    ``push(text)`` returns the text to speak now: everything, unless the reply so far starts
    like JSON (``{``, ``[`` or a code fence), which is held. ``finish(collector)`` at the end of
    the stream: held text that parses as calls of ``tools`` (``{"name", "arguments"}``, a list of
    them, or a ``tool_call`` wrapper) is handed to the collector and ``""`` returned; anything
    else is returned to be spoken after all.
    """

    def __init__(self, tools: Sequence[Tool]) -> None:
        self._names = {t.name for t in tools}
        self._held = ""
        self._decided = not self._names

    def push(self, text: str) -> str:
        if self._decided:
            return text
        self._held += text
        start = self._held.lstrip()
        if not start:
            return ""
        if start[0] in "{[" or start.startswith(("```", "<tool_call>")):
            return ""
        self._decided = True
        held, self._held = self._held, ""
        return held

    def finish(self, collector: ToolCallCollector) -> str:
        held, self._held = self._held, ""
        self._decided = True
        if not held.strip():
            return ""
        calls = _bare_calls(held, self._names)
        if not calls:
            return held
        collector.push(
            [{"id": f"call_{n}", "function": {"name": name, "arguments": arguments}}
             for n, (name, arguments) in enumerate(calls)]
        )  # fmt: skip
        return ""


def _bare_calls(text: str, names: set[str]) -> list[tuple[str, str]]:
    body = text.strip()
    body = body.removeprefix("<tool_call>").removesuffix("</tool_call>").strip()
    if body.startswith("```"):
        body = body.strip("`").strip()
        body = body.removeprefix("json").strip()
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while index < len(body):
        while index < len(body) and body[index] in " \t\r\n,":
            index += 1
        if index >= len(body):
            break
        try:
            value, index = decoder.raw_decode(body, index)
        except json.JSONDecodeError:
            return []
        found.extend(value if isinstance(value, list) else [value])
    calls = []
    for item in found:
        if not isinstance(item, dict):
            return []
        item = item.get("function", item) if isinstance(item.get("function"), dict) else item
        name = item.get("name")
        arguments = item.get("arguments", item.get("parameters", {}))
        if name not in names or not isinstance(arguments, dict | str):
            return []
        calls.append(
            (name, arguments if isinstance(arguments, str) else json.dumps(arguments))
        )
    return calls
