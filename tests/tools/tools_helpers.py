"""Helpers shared by the tool tests (a module name unique in the test tree)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from talkie.brain.tools import Tool


def webhook_tool(
    url: str,
    *,
    method: str = "GET",
    name: str = "lookup",
    parameters: dict[str, Any] | None = None,
    timeout: float = 5.0,
    secret_env: str | None = None,
) -> Tool:
    webhook: dict[str, Any] = {"url": url, "method": method, "timeout_seconds": timeout}
    if secret_env:
        webhook["secret_env"] = secret_env
    return Tool.from_dict(
        {
            "name": name,
            "description": "Look something up",
            "kind": "webhook",
            "parameters": parameters or {"type": "object"},
            "webhook": webhook,
        }
    )


def fixed_resolver(table: dict[str, Sequence[str]], calls: list[str] | None = None) -> Any:
    """A resolver hook answering from ``table`` (no DNS); records the names asked in ``calls``."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers every request with ``responses`` in turn (default: 200 JSON) and keeps them."""

    def __init__(self, responses: Sequence[httpx.Response] = ()) -> None:
        self.requests: list[httpx.Request] = []
        self._responses = list(responses)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._responses:
            return self._responses.pop(0)
        return stream_response(200, b'{"ok": true}', {"Content-Type": "application/json"})


def stream_response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    """A response whose body is still a stream, as a real transport returns it."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))
