"""Allowed webhook calls against a real HTTP server on 127.0.0.1 (tests can only reach loopback,
so the deployment options allow it: ``allow_private_networks`` or an explicit CIDR)."""

from __future__ import annotations

import logging
import socket
import time

import httpx
import pytest
from tools_helpers import fixed_resolver, webhook_tool
from tools_http_server import HookServer

from talkie.brain.tools import WebhookCaller, WebhookOptions
from talkie.errors import InvalidInputError

PRIVATE = WebhookOptions(allow_private_networks=True)
LOOPBACK_CIDR = WebhookOptions(allowed_networks=("127.0.0.0/8",))
SECRET = "sk-live-8f3a9c2e71d44b6a"
CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "metric": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.asyncio
async def test_get_sends_arguments_as_query(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=LOOPBACK_CIDR)
    tool = webhook_tool(hook_server.url("/echo?key=fixed"), parameters=CITY_SCHEMA)
    args = {"city": "São Paulo", "days": 3, "metric": True, "tags": ["a", "b"]}
    result = await caller.call(tool, args)
    assert result.ok and result.status == 200, result
    assert isinstance(result.content, dict)
    assert result.content["method"] == "GET" and result.content["body"] is None
    assert result.content["query"] == {
        "key": ["fixed"],  # the declared query is kept
        "city": ["São Paulo"],
        "days": ["3"],
        "metric": ["true"],
        "tags": ["a", "b"],
    }
    assert result.elapsed_ms > 0
    assert result.to_message().startswith('{"ok": true, "result": {')


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_body_methods_send_json(hook_server: HookServer, method: str) -> None:
    caller = WebhookCaller(options=PRIVATE)
    tool = webhook_tool(hook_server.url("/echo"), method=method, parameters=CITY_SCHEMA)
    # The JSON text of an LLM tool call is accepted as it comes.
    result = await caller.call(tool, '{"city": "Oslo", "days": 2}')
    assert result.ok, result
    assert isinstance(result.content, dict)
    assert result.content["method"] == method
    assert result.content["body"] == {"city": "Oslo", "days": 2}
    assert result.content["headers"]["content-type"] == "application/json"
    assert result.content["query"] == {}


@pytest.mark.asyncio
async def test_delete_uses_query(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=PRIVATE)
    tool = webhook_tool(hook_server.url("/echo"), method="DELETE")
    result = await caller.call(tool, {"id": 7})
    assert result.ok and isinstance(result.content, dict)
    assert result.content["method"] == "DELETE" and result.content["query"] == {"id": ["7"]}


@pytest.mark.asyncio
async def test_secret_header_sent_but_never_shown(
    hook_server: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caller = WebhookCaller(options=PRIVATE, environ={"HOOK_TOKEN": SECRET})
    caplog.set_level(logging.DEBUG)
    echo = webhook_tool(hook_server.url("/echo"), secret_env="HOOK_TOKEN")
    result = await caller.call(echo, {})
    assert result.ok
    # The server got it...
    assert hook_server.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    # ...but what comes back is scrubbed, even when the service echoes it.
    assert SECRET not in str(result)
    for path in ("/leak", "/leak?as=text", "/fail"):
        result = await caller.call(webhook_tool(hook_server.url(path), secret_env="HOOK_TOKEN"), {})
        assert SECRET not in str(result) and SECRET not in result.to_message()
    leak = await caller.call(webhook_tool(hook_server.url("/leak"), secret_env="HOOK_TOKEN"), {})
    assert leak.content == {"you_sent": "Bearer [redacted]", "token": "[redacted]"}
    assert SECRET not in caplog.text
    assert "webhook tool 'lookup'" in caplog.text


@pytest.mark.asyncio
async def test_missing_secret_is_a_clear_error(
    hook_server: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caller = WebhookCaller(options=PRIVATE, environ={})
    tool = webhook_tool(hook_server.url("/echo"), secret_env="ORDERS_API_TOKEN")
    with caplog.at_level(logging.WARNING, logger="talkie.brain.tools"):
        result = await caller.call(tool, {})
    assert not result.ok and result.reason == "secret"
    assert "ORDERS_API_TOKEN" in result.error
    assert hook_server.requests == []  # nothing was sent without it
    assert "ORDERS_API_TOKEN" in caplog.text


@pytest.mark.asyncio
async def test_authorization_dropped_when_redirected_elsewhere(hook_server: HookServer) -> None:
    options = WebhookOptions(allowed_hosts=("a.example", "b.example"))
    resolve = fixed_resolver({"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    caller = WebhookCaller(options=options, resolve=resolve, environ={"HOOK_TOKEN": SECRET})
    tool = webhook_tool(hook_server.url("/redirect", host="a.example"), secret_env="HOOK_TOKEN")
    result = await caller.call(tool, {"to": hook_server.url("/echo", host="b.example")})
    assert result.ok and isinstance(result.content, dict), result
    first, second = hook_server.requests
    assert first["headers"]["authorization"] == f"Bearer {SECRET}"
    assert first["headers"]["host"] == f"a.example:{hook_server.port}"
    assert "authorization" not in second["headers"]
    assert second["headers"]["host"] == f"b.example:{hook_server.port}"


@pytest.mark.asyncio
async def test_redirects_followed_up_to_the_limit(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=PRIVATE)
    # 303 after a POST continues as a GET without the body (browser rules).
    tool = webhook_tool(hook_server.url("/redirect?code=303&to=/echo"), method="POST")
    result = await caller.call(tool, {"city": "Rome"})
    assert result.ok and isinstance(result.content, dict), result
    assert result.content["method"] == "GET" and result.content["body"] is None

    hook_server.requests.clear()
    loop = await caller.call(webhook_tool(hook_server.url("/loop")), {})
    assert not loop.ok and loop.reason == "redirects"
    assert hook_server.paths() == ["/loop"] * 4  # the first request and 3 redirects


@pytest.mark.asyncio
async def test_timeout(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=PRIVATE)
    tool = webhook_tool(hook_server.url("/slow?s=3"), timeout=0.3)
    started = time.perf_counter()
    result = await caller.call(tool, {})
    assert not result.ok and result.reason == "timeout"
    assert result.spoken == "That service is taking too long to answer."
    assert time.perf_counter() - started < 2.0


@pytest.mark.asyncio
async def test_deployment_caps_the_tool_timeout(hook_server: HookServer) -> None:
    options = WebhookOptions(allow_private_networks=True, max_timeout_seconds=0.3)
    result = await WebhookCaller(options=options).call(
        webhook_tool(hook_server.url("/slow?s=3"), timeout=30), {}
    )
    assert not result.ok and result.reason == "timeout" and result.elapsed_ms < 2000


@pytest.mark.asyncio
async def test_oversized_response_is_cut(hook_server: HookServer) -> None:
    options = WebhookOptions(allow_private_networks=True, max_response_bytes=1000)
    result = await WebhookCaller(options=options).call(
        webhook_tool(hook_server.url("/big?n=5000000")), {}
    )
    assert result.ok and result.truncated and result.status == 200
    assert result.content == "x" * 1000
    # Streamed and cut: the server could not push the whole 5 MB before we hung up.
    time.sleep(0.2)
    assert hook_server.big_sent < 5_000_000


@pytest.mark.asyncio
async def test_default_limit_is_64_kib(hook_server: HookServer) -> None:
    result = await WebhookCaller(options=PRIVATE).call(
        webhook_tool(hook_server.url("/big?n=200000")), {}
    )
    assert result.truncated and len(result.content) == 64 * 1024


@pytest.mark.asyncio
async def test_compressed_bomb_is_cut(hook_server: HookServer) -> None:
    options = WebhookOptions(allow_private_networks=True, max_response_bytes=2000)
    result = await WebhookCaller(options=options).call(
        webhook_tool(hook_server.url("/bomb?n=20000000")), {}
    )
    assert result.ok and result.truncated and result.content == "0" * 2000


@pytest.mark.asyncio
async def test_server_error_is_not_ok(hook_server: HookServer) -> None:
    result = await WebhookCaller(options=PRIVATE).call(webhook_tool(hook_server.url("/fail")), {})
    assert not result.ok and result.status == 500 and result.reason == "http"
    assert result.error == "the service failed (HTTP 500)"
    assert result.content == {"error": "boom"}  # the body, for the LLM to explain
    assert '"status": 500' in result.to_message()
    missing = await WebhookCaller(options=PRIVATE).call(
        webhook_tool(hook_server.url("/missing")), {}
    )
    assert not missing.ok and missing.status == 404 and missing.content == "no such order"


@pytest.mark.asyncio
async def test_text_and_non_object_json(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=PRIVATE)
    text = await caller.call(webhook_tool(hook_server.url("/text")), {})
    assert text.ok and text.content == "Your order is on its way." and not text.truncated
    listing = await caller.call(webhook_tool(hook_server.url("/list")), {})
    assert listing.ok and listing.content == {"result": [1, 2, 3]}


@pytest.mark.asyncio
async def test_bad_json_is_not_ok(hook_server: HookServer) -> None:
    result = await WebhookCaller(options=PRIVATE).call(
        webhook_tool(hook_server.url("/badjson")), {}
    )
    assert not result.ok and result.reason == "bad_json" and result.status is None


@pytest.mark.asyncio
async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = await WebhookCaller(options=PRIVATE).call(
        webhook_tool(f"http://127.0.0.1:{port}/"), {}
    )
    assert not result.ok and result.reason == "connect"
    assert result.spoken == "I couldn't reach that service."


@pytest.mark.asyncio
async def test_invalid_arguments_never_reach_the_server(hook_server: HookServer) -> None:
    caller = WebhookCaller(options=PRIVATE)
    tool = webhook_tool(hook_server.url("/echo"), parameters=CITY_SCHEMA)
    for args, argument in [
        ({}, "city"),
        ({"city": "Oslo", "days": 9}, "days"),
        ({"city": "Oslo", "url": "http://169.254.169.254/"}, "url"),
    ]:
        result = await caller.call(tool, args)
        assert not result.ok and result.reason == "arguments"
        assert f"argument {argument!r}" in result.error
    bad_json = await caller.call(tool, "{city: Oslo")
    assert not bad_json.ok and bad_json.reason == "arguments" and "JSON" in bad_json.error
    assert hook_server.requests == []


@pytest.mark.asyncio
async def test_loopback_refused_without_the_option(hook_server: HookServer) -> None:
    result = await WebhookCaller().call(webhook_tool(hook_server.url("/echo")), {})
    assert not result.ok and result.reason == "refused" and "loopback" in result.error
    assert hook_server.requests == []


@pytest.mark.asyncio
async def test_ui_tool_is_not_called() -> None:
    from talkie.brain.tools import Tool

    tool = Tool.from_dict({"name": "show_page", "description": "Show a page", "kind": "ui"})
    with pytest.raises(InvalidInputError):
        await WebhookCaller().call(tool, {})


@pytest.mark.asyncio
async def test_mock_transport_with_a_read_body() -> None:
    """httpx.MockTransport hands back bodies already read; the caller copes."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"n": 1}))
    caller = WebhookCaller(
        transport=transport, resolve=fixed_resolver({"api.example.com": ["93.184.216.34"]})
    )
    result = await caller.call(webhook_tool("https://api.example.com/"), {})
    assert result.ok and result.content == {"n": 1}
