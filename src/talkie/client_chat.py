"""Text chat with a character from Python (``TalkieClient.chat``): ``/v1/chat/completions``.

    with TalkieClient() as talkie:
        thread = talkie.chat.thread("astronaut")
        print(thread.say("Hi! Who are you?").text)
        for delta in thread.stream("And what can you do?"):
            print(delta, end="", flush=True)

A ``ChatThread`` keeps the conversation (including the tool calls the server ran, so the next
answer knows what was done and found) and sends it with every message, as the endpoint is
stateless. ``complete``/``stream`` are the single-request calls, with OpenAI's ``messages``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from talkie.client import TalkieClient, _Resource
from talkie.errors import TalkieError

__all__ = ["Chat", "ChatReply", "ChatStream", "ChatThread"]


@dataclass(frozen=True)
class ChatReply:
    """One answer: its ``text``, the calls the client must run (``tool_calls``, with
    ``finish_reason == "tool_calls"``), the calls the server ran (``tool_exchanges``: id, name,
    arguments, result) and which brain answered."""

    text: str
    finish_reason: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_exchanges: tuple[dict[str, str], ...] = ()
    brain: str = ""

    def history_messages(self) -> list[dict[str, Any]]:
        """The messages to keep for the next request: the server-run calls and their results,
        then the assistant's answer (with any calls for the client to run)."""
        messages: list[dict[str, Any]] = []
        if self.tool_exchanges:
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": e["id"], "type": "function",
                 "function": {"name": e["name"], "arguments": e["arguments"]}}
                for e in self.tool_exchanges
            ]})  # fmt: skip
            messages += [
                {"role": "tool", "tool_call_id": e["id"], "content": e["result"]}
                for e in self.tool_exchanges
            ]
        answer: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            answer["tool_calls"] = list(self.tool_calls)
        if answer["content"] or self.tool_calls:
            messages.append(answer)
        return messages


@dataclass
class ChatStream:
    """Iterate for the text deltas; ``reply`` is the whole answer once the stream ended."""

    _lines: Iterator[str]
    reply: ChatReply | None = None
    _text: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        calls: dict[int, dict[str, Any]] = {}
        finish, extension = "stop", {}
        for line in self._lines:
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data.strip() == "[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                raise TalkieError(f"the chat failed: {chunk['error'].get('message', 'error')}")
            choice = chunk["choices"][0]
            delta = choice.get("delta", {})
            if delta.get("content"):
                self._text.append(delta["content"])
                yield delta["content"]
            for call in delta.get("tool_calls", []):
                calls[call.get("index", len(calls))] = {k: v for k, v in call.items()
                                                         if k != "index"}  # fmt: skip
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
                extension = chunk.get("talkie", {})
        self.reply = ChatReply(
            text=" ".join("".join(self._text).split()), finish_reason=finish,
            tool_calls=tuple(calls[i] for i in sorted(calls)),
            tool_exchanges=tuple(extension.get("tool_exchanges", ())),
            brain=str(extension.get("brain", "")),
        )  # fmt: skip


class Chat(_Resource):
    """``POST /v1/chat/completions``: text chat with a character (OpenAI-compatible)."""

    def complete(
        self, character_id: str, messages: Sequence[Mapping[str, Any]], **options: Any
    ) -> ChatReply:
        """One answer to ``messages`` (OpenAI's format). ``options``: ``tools``,
        ``tool_choice``, ``user`` and ``remember`` (the character remembers ``user``)."""
        body = self._client._json("POST", "/v1/chat/completions",
                                  json=_body(character_id, messages, options))  # fmt: skip
        choice = body["choices"][0]
        message = choice["message"]
        extension = body.get("talkie", {})
        return ChatReply(
            text=message.get("content") or "", finish_reason=choice["finish_reason"],
            tool_calls=tuple(message.get("tool_calls") or ()),
            tool_exchanges=tuple(extension.get("tool_exchanges", ())),
            brain=str(extension.get("brain", "")),
        )  # fmt: skip

    def stream(
        self, character_id: str, messages: Sequence[Mapping[str, Any]], **options: Any
    ) -> ChatStream:
        """Like ``complete``, streamed: iterate the returned ``ChatStream`` for text deltas."""
        body = _body(character_id, messages, {**options, "stream": True})
        response = self._client._request(
            "POST", "/v1/chat/completions", json=body,
            headers={"Accept": "text/event-stream"},
        )  # fmt: skip
        return ChatStream(iter(response.text.splitlines()))

    def thread(self, character_id: str, **options: Any) -> ChatThread:
        """A conversation that keeps its history (see the module docstring)."""
        return ChatThread(self._client, character_id, options)


class ChatThread:
    """A text conversation with one character; ``messages`` is its history."""

    def __init__(self, client: TalkieClient, character_id: str, options: Mapping[str, Any]):
        self._chat = Chat(client)
        self.character_id = character_id
        self.options = dict(options)
        self.messages: list[dict[str, Any]] = []

    def say(self, text: str) -> ChatReply:
        self.messages.append({"role": "user", "content": text})
        reply = self._chat.complete(self.character_id, self.messages, **self.options)
        self.messages += reply.history_messages()
        return reply

    def stream(self, text: str) -> Iterator[str]:
        self.messages.append({"role": "user", "content": text})
        stream = self._chat.stream(self.character_id, self.messages, **self.options)
        yield from stream
        if stream.reply is not None:
            self.messages += stream.reply.history_messages()


def _body(
    character_id: str, messages: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> dict[str, Any]:
    known = {"tools", "tool_choice", "user", "remember", "stream"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"unknown chat option(s): {', '.join(sorted(unknown))}")
    return {"model": character_id, "messages": [dict(m) for m in messages], **options}
