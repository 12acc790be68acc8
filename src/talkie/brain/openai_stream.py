"""The wire format of OpenAI-compatible chat completions: server-sent events, streamed deltas
(content, reasoning, tool-call fragments), error bodies, and the ``<think>`` filter.

Kept apart from the brain (``openai_compat``) so that the request logic reads in one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from talkie.brain.base import BrainUnavailable

__all__ = [
    "ThinkFilter",
    "as_text",
    "delta_parts",
    "error_detail",
    "json_events",
    "parse_event",
    "safe_url",
    "sse_events",
]

log = logging.getLogger(__name__)


class ThinkFilter:
    """Drops ``<think>...</think>`` blocks (reasoning models served by Ollama/llama.cpp put their
    thoughts in the content): a character must not read its thoughts aloud."""

    OPEN = "<think>"
    CLOSE = "</think>"

    def __init__(self) -> None:
        self._buf = ""
        self._inside = False
        self.seen = False

    def push(self, text: str) -> str:
        self._buf += text
        out: list[str] = []
        while self._buf:
            tag = self.CLOSE if self._inside else self.OPEN
            index = self._buf.find(tag)
            if index >= 0:
                if not self._inside:
                    out.append(self._buf[:index])
                self._buf = self._buf[index + len(tag) :]
                self._inside = not self._inside
                self.seen = True
                continue
            keep = _partial_suffix(self._buf, tag)
            if not self._inside:
                out.append(self._buf[: len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep :]
            break
        return "".join(out)

    def flush(self) -> str:
        out = "" if self._inside else self._buf
        self._buf = ""
        return out


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[dict[str, Any], None]:
    """Parse server-sent events into JSON objects; stops at ``[DONE]``.

    Servers put one JSON object on each ``data:`` line; a multi-line event (allowed by the SSE
    spec) is joined at the blank line that ends it.
    """
    pending: list[str] = []
    async for line in lines:
        if not line.strip():
            if pending:
                payload = "\n".join(pending)
                pending.clear()
                event = parse_event(payload)
                if event is not None:
                    yield event
            continue
        if not line.startswith("data:"):
            continue  # comments (": keep-alive"), "event:", "id:", "retry:"
        data = line[5:].removeprefix(" ")
        if data.strip() == "[DONE]":
            return
        if not pending:
            try:
                parsed = json.loads(data)
            except json.JSONDecodeError:
                pending.append(data)
                continue
            if isinstance(parsed, dict):
                yield parsed
            continue
        pending.append(data)
    if pending:
        event = parse_event("\n".join(pending))
        if event is not None:
            yield event


async def json_events(response: httpx.Response) -> AsyncGenerator[dict[str, Any], None]:
    """A server that ignored ``stream: true`` and sent one JSON body: one event."""
    raw = await response.aread()
    event = parse_event(raw.decode("utf-8", errors="replace"))
    if event is not None:
        yield event


def parse_event(payload: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(payload)
    except json.JSONDecodeError:
        log.debug("skipping an unparseable stream event (%d chars)", len(payload))
        return None
    return parsed if isinstance(parsed, dict) else None


def delta_parts(event: dict[str, Any], where: str) -> tuple[str, str, list[Any]]:
    """(content, reasoning, tool-call fragments) of one streamed chunk (or of a whole
    non-streamed answer). Raises ``BrainUnavailable`` for an error event."""
    if event.get("error"):
        raise BrainUnavailable(
            f"the LLM at {where} reported an error: {error_detail(event)}", reason="protocol"
        )
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", "", []
    choice = choices[0]
    delta = choice.get("delta") or choice.get("message") or {}
    if not isinstance(delta, dict):
        delta = {}
    content = delta.get("content")
    if content is None:
        content = choice.get("text")  # completion-style chunks
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    calls = delta.get("tool_calls")
    return as_text(content), as_text(reasoning), calls if isinstance(calls, list) else []


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(part.get("text", "") for part in value if isinstance(part, dict))
    return ""


def error_detail(raw: bytes | dict[str, Any]) -> str:
    """A short, single-line description from an error body (JSON or text)."""
    data: Any = raw
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = text
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message", "")))
        if isinstance(error, dict):
            error = error.get("message", "") or json.dumps(error)[:200]
        data = error
    return " ".join(str(data).split())[:200]


def safe_url(url: str) -> str:
    """scheme://host[:port]: enough to say where, without credentials or query strings."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "<invalid URL>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
