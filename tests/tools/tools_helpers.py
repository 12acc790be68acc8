"""Helpers shared by the tool tests (a module name unique in the test tree)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from talkie.brain.tools import Tool

# Every form of a non-public webhook target the SSRF guard refuses (the API refuses them when a
# tool is declared, too: tests/api/test_api_webhook_declarations.py).
REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1./",  # trailing dot
    "http://127.1/",  # inet_aton shorthand
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::7f00:1]/",  # NAT64 form of 127.0.0.1
    "http://[2002:7f00:1::1]/",  # 6to4 form of 127.0.0.1
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[ff02::1]/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f.1/",  # hex
    "http://0x7f000001/",
    "http://017700000001/",  # octal
    "http://0177.0.0.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "https://127.0.0.1:8443/",
    "http://1.2.3.4.5/",  # numeric but not an address
    "http://example.123/",  # ends in a number: an address or nothing
]


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
