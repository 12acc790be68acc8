"""The live conversation's tool executor (``talkie.brain.tools.ToolExecutor``).

- A ``"ui"`` tool runs in the user's page: the session sends a ``ToolCallRequested`` event
  (``{"type": "tool_call", "id", "name", "arguments"}`` on the data channel), the page runs
  its handler and answers with the client event
  ``{"type": "tool_result", "id", "ok": bool, "result": any}``, which
  ``Conversation.handle_client_event`` hands to ``resolve``. No answer within ``ui_timeout``
  seconds is a failed call (``reason="timeout"``): the brain says so and the turn goes on.
- A ``"webhook"`` tool is called by the server through ``WebhookCaller`` (declared URL and method
  only, SSRF guard, deadline, size-capped response, secret from the server's environment).
- Every call, and every call the brain refused before running it, is recorded through
  ``record``: name, kind, ok, reason and elapsed milliseconds; never argument values, results
  or secrets (traces are kept and shown to API users).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from talkie.brain.tools import Tool, ToolResult, WebhookCaller

__all__ = ["MAX_RESULT_CHARS", "SessionTools"]

log = logging.getLogger(__name__)

#: A page's result longer than this (as JSON) is cut, as a webhook's body is.
MAX_RESULT_CHARS = 8000
_EXPIRED_KEPT = 64


class SessionTools:
    """Runs one conversation's tool calls (see the module docstring).

    The conversation ``attach``es itself: ``call_page(id, name, arguments)`` asks the page to
    run a UI tool; ``record`` receives each call's trace entry; ``before_call`` (optional) is
    called as a call starts (the conversation starts saying the text the brain streamed before
    the call, so it is heard while the tool works). Built before the conversation (the brain
    needs it as its executor), so these can be given later.
    """

    def __init__(
        self,
        *,
        tools: Sequence[Tool],
        call_page: Callable[[str, str, dict[str, Any]], None] | None = None,
        record: Callable[[dict[str, Any]], None] | None = None,
        webhooks: WebhookCaller | None = None,
        ui_timeout: float = 5.0,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        if ui_timeout <= 0:
            raise ValueError("ui_timeout must be positive")
        self.tools = tuple(tools)
        self.ui_timeout = ui_timeout
        self._kinds = {t.name: t.kind for t in self.tools}
        self._call_page = call_page or (lambda call_id, name, arguments: None)
        self._record = record or (lambda entry: None)
        self._webhooks = webhooks or WebhookCaller()
        self._before_call = before_call
        self._pending: dict[str, asyncio.Future[ToolResult]] = {}
        # Calls that timed out or were cut: a late answer is dropped quietly, not an error.
        self._expired: collections.deque[str] = collections.deque(maxlen=_EXPIRED_KEPT)

    def attach(
        self,
        *,
        call_page: Callable[[str, str, dict[str, Any]], None],
        record: Callable[[dict[str, Any]], None],
        before_call: Callable[[], None] | None = None,
    ) -> None:
        """Connect the executor to its conversation (see the class docstring)."""
        self._call_page, self._record, self._before_call = call_page, record, before_call

    async def run(self, tool: Tool, arguments: dict[str, Any]) -> ToolResult:
        """Run one call (arguments already validated); never raises except on cancellation."""
        started = time.perf_counter()
        if self._before_call is not None:
            self._before_call()
        try:
            if tool.kind == "ui":
                result = await self._ui(tool, arguments)
            else:
                result = await self._webhooks.call(tool, arguments)
        except asyncio.CancelledError:
            self._note(tool.name, tool.kind, ok=False, reason="cancelled", started=started)
            raise
        self._note(tool.name, tool.kind, ok=result.ok, reason=result.reason, started=started)
        return result

    def record_rejected(self, name: str, result: ToolResult) -> None:
        """A call the brain refused before running it (unknown tool, invalid arguments)."""
        kind = self._kinds.get(name, "unknown")
        log.info("tool %r (%s) not run: %s", name, kind, result.reason)
        self._note(name, kind, ok=False, reason=result.reason or "refused", started=None)

    def resolve(self, event: Mapping[str, Any]) -> None:
        """The page's ``tool_result`` client event. Raises ``ValueError`` for a malformed event
        or an id that was never issued (a late answer to a call that timed out or was cut by
        barge-in is dropped)."""
        call_id = event.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("'tool_result' needs a string 'id'")
        ok = event.get("ok")
        if not isinstance(ok, bool):
            raise ValueError("'tool_result' needs a boolean 'ok'")
        future = self._pending.get(call_id)
        if future is None:
            if call_id in self._expired:
                log.info("a tool result arrived after its call ended; dropped")
                return
            raise ValueError(f"'tool_result' for an unknown tool call {call_id[:40]!r}")
        if future.done():
            raise ValueError(f"tool call {call_id[:40]!r} was already answered")
        future.set_result(page_result(ok, event.get("result")))

    def cancel_all(self) -> None:
        """The conversation is closing: no page will answer any more."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    @property
    def pending(self) -> int:
        """UI calls waiting for the page."""
        return len(self._pending)

    # -- internals --

    async def _ui(self, tool: Tool, arguments: dict[str, Any]) -> ToolResult:
        call_id = "tc_" + secrets.token_hex(8)
        future: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._call_page(call_id, tool.name, arguments)
        try:
            async with asyncio.timeout(self.ui_timeout):
                return await future
        except TimeoutError:
            log.warning("ui tool %r: the page did not answer within %g s", tool.name,
                        self.ui_timeout)  # fmt: skip
            return ToolResult(
                ok=False, reason="timeout",
                error=f"the user's page did not answer within {self.ui_timeout:g} s",
            )  # fmt: skip
        finally:
            self._pending.pop(call_id, None)
            if not future.done() or future.cancelled():
                # Timed out or cut by barge-in: the page may still answer; that is no error.
                self._expired.append(call_id)

    def _note(self, name: str, kind: str, *, ok: bool, reason: str, started: float | None) -> None:
        elapsed = 0.0 if started is None else (time.perf_counter() - started) * 1000.0
        self._record(
            {"name": name, "kind": kind, "ok": ok, "reason": reason,
             "elapsed_ms": round(elapsed, 1)}
        )  # fmt: skip


def page_result(ok: bool, value: Any) -> ToolResult:
    """A page handler's answer as a ``ToolResult`` (cut to ``MAX_RESULT_CHARS`` as JSON)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # JSON from the data channel always serialises; be safe
        value, text = str(value), json.dumps(str(value))
    truncated = len(text) > MAX_RESULT_CHARS
    content: str | dict[str, Any]
    if truncated:
        content = text[:MAX_RESULT_CHARS]
    elif isinstance(value, dict | str):
        content = value
    elif value is None:
        content = ""
    else:
        content = {"result": value}
    if ok:
        return ToolResult(ok=True, content=content, truncated=truncated)
    error = value[:300] if isinstance(value, str) and value.strip() else "the page could not do it"
    return ToolResult(
        ok=False, error=error, reason="client", truncated=truncated,
        content=content if isinstance(content, dict) else "",
    )  # fmt: skip
