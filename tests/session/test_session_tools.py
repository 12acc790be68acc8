"""Tools in the live conversation: a UI tool's round trip through client events, its timeout,
malformed results, a webhook through the LLM path with the text before the call spoken while the
tool works, and SSRF attempts refused (and logged) under the default network policy while the
character still answers. Every call shows in the turn's trace."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from brain_tools_fakes import SHOW_PRODUCT
from fake_openai import FakeOpenAIServer, Stream, ToolCallScript
from session_harness import running, wait_for
from tools_http_server import HookServer

from talkie.brain import LLMOptions
from talkie.brain.builtin_tools import UI_DONE, UI_TIMEOUT
from talkie.brain.tools import Tool, WebhookOptions
from talkie.session import Conversation, SessionOptions

pytestmark = pytest.mark.asyncio


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    try:
        yield server
    finally:
        server.close()


def webhook(name: str, url: str, method: str = "GET") -> Tool:
    return Tool.from_dict(
        {
            "name": name,
            "description": f"Look something up ({name})",
            "kind": "webhook",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "webhook": {"url": url, "method": method, "timeout_seconds": 3},
        }
    )


def converse(character: Any, *tools: Tool, **options: Any) -> Conversation:
    options.setdefault("brain", "builtin")
    return Conversation(
        character=dataclasses.replace(character, tools=tools),
        options=SessionOptions(greet=False, seed=4, **options),
    )


def check_trace_entry(entry: dict[str, Any], name: str, kind: str, ok: bool, reason: str) -> None:
    assert set(entry) == {"name", "kind", "ok", "reason", "elapsed_ms"}  # never arguments
    assert (entry["name"], entry["kind"], entry["ok"], entry["reason"]) == (name, kind, ok, reason)
    assert entry["elapsed_ms"] >= 0


async def test_ui_tool_round_trip(nova) -> None:  # type: ignore[no-untyped-def]
    conv = converse(nova, SHOW_PRODUCT)
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Show me the trail runner"})
        await wait_for(pulled, lambda p: p.of_type("tool_call"), timeout=10)
        call = pulled.of_type("tool_call")[0]
        assert call["name"] == "show_product"
        assert call["arguments"] == {"product": "trail runner"}
        # Malformed answers are refused like other bad events; the call still waits.
        for bad in (
            {"type": "tool_result", "id": "tc_never_issued", "ok": True},
            {"type": "tool_result", "id": call["id"], "ok": "yes"},
            {"type": "tool_result", "id": 7, "ok": True},
            {"type": "tool_result", "ok": True},
        ):
            with pytest.raises(ValueError):
                conv.handle_client_event(bad)
        conv.handle_client_event(
            {"type": "tool_result", "id": call["id"], "ok": True, "result": {"shown": "Trail"}}
        )
        with pytest.raises(ValueError, match="already answered|unknown"):
            conv.handle_client_event({"type": "tool_result", "id": call["id"], "ok": True})
        await wait_for(pulled, lambda p: p.of_type("turn"), timeout=20)
    assert " ".join(e["text"] for e in pulled.of_type("reply")) == UI_DONE
    (tool_event,) = pulled.of_type("tool")
    check_trace_entry({k: v for k, v in tool_event.items() if k not in ("type", "turn", "t")},
                      "show_product", "ui", True, "")  # fmt: skip
    trace = pulled.of_type("trace")[0]
    assert tool_event["turn"] == trace["turn"]
    (entry,) = trace["tools"]
    check_trace_entry(entry, "show_product", "ui", True, "")
    assert pulled.of_type("turn")[0]["trace"]["tools"] == trace["tools"]
    assert conv.tools.pending == 0


async def test_ui_tool_timeout_and_barge_in(nova) -> None:  # type: ignore[no-untyped-def]
    conv = converse(nova, SHOW_PRODUCT, ui_tool_timeout=0.4)
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Show me the trail runner"})
        await wait_for(pulled, lambda p: p.of_type("trace"), timeout=20)
        first = pulled.of_type("tool_call")[0]
        # A page that answers after the timeout is not told off: the answer is dropped.
        conv.handle_client_event({"type": "tool_result", "id": first["id"], "ok": True})
        # A new message while the page works on a call cuts it (barge-in).
        conv.handle_client_event({"type": "text", "text": "Show me the trail runner"})
        await wait_for(pulled, lambda p: len(p.of_type("tool_call")) == 2, timeout=10)
        conv.handle_client_event({"type": "text", "text": "Hello"})
        await wait_for(pulled, lambda p: len(p.of_type("turn")) == 3, timeout=20)
        second = pulled.of_type("tool_call")[1]
        conv.handle_client_event({"type": "tool_result", "id": second["id"], "ok": True})
    replies = [e["text"] for e in pulled.of_type("reply")]
    assert replies[0] == UI_TIMEOUT
    traces = {t["turn"]: t for t in pulled.of_type("trace")}
    (entry,) = traces[1]["tools"]
    check_trace_entry(entry, "show_product", "ui", False, "timeout")
    assert entry["elapsed_ms"] >= 400
    (cut,) = traces[2]["tools"]  # in its own turn, not in the one that interrupted it
    check_trace_entry(cut, "show_product", "ui", False, "cancelled")
    assert traces[2]["interrupted"] and traces[3]["tools"] == []
    assert conv.tools.pending == 0


async def test_llm_webhook_call_speaks_first_then_answers(
    nova, fake_openai: FakeOpenAIServer, hook_server: HookServer
) -> None:  # type: ignore[no-untyped-def]
    fake_openai.script(
        Stream(
            ["Let me check ", "that for you."],
            tool_calls=[ToolCallScript("order_status", {"order_id": "A-5521"}, id="call_1")],
        ),
        Stream(["Your order ", "is on its way."]),
    )
    tool = webhook("order_status", hook_server.url("/slow?s=2.0"))  # a slow service (2 s)
    conv = converse(
        nova, tool, brain=LLMOptions(base_url=fake_openai.base_url, model="fake"),
        webhook=WebhookOptions(allow_private_networks=True),  # the hook server is on 127.0.0.1
    )  # fmt: skip
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Where is my order A-5521?"})
        await wait_for(pulled, lambda p: p.of_type("turn"), timeout=20)
    (hook,) = hook_server.requests
    assert hook["method"] == "GET" and hook["query"] == {"s": ["2.0"], "order_id": ["A-5521"]}
    before, after = pulled.of_type("reply")
    assert before["text"] == "Let me check that for you."
    assert after["text"] == "Your order is on its way."
    (tool_event,) = pulled.of_type("tool")
    # The text before the call was spoken while the tool worked, not held back until after it.
    assert before["t"] < before["start"] < tool_event["t"] < after["start"]
    assert tool_event["elapsed_ms"] >= 2000
    (result,) = fake_openai.requests[1].tool_messages()
    assert result["tool_call_id"] == "call_1"
    assert json.loads(result["content"]) == {"ok": True, "result": {"slow": True}}
    (entry,) = pulled.of_type("trace")[0]["tools"]
    check_trace_entry(entry, "order_status", "webhook", True, "")
    # The call and its result stay in the history: the next turn's request shows the model
    # what was done and found, not only what was said.
    (turn,) = [t for t in conv.history if t.role == "assistant"]
    (exchange,) = turn.tools
    assert (exchange.id, exchange.name) == ("call_1", "order_status")
    assert json.loads(exchange.result) == {"ok": True, "result": {"slow": True}}
    assert turn.text == "Let me check that for you. Your order is on its way."
    messages = conv.brain.build_messages(conv.memory.context(), "When did it leave?")
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"], roles
    assert messages[2]["tool_calls"][0]["id"] == messages[3]["tool_call_id"] == "call_1"


def _private_name() -> str | None:
    """This machine's host name if DNS (here: /etc/hosts) maps it to non-public addresses only."""
    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except OSError:
        return None
    import ipaddress

    addresses = {ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos}
    return name if addresses and not any(a.is_global for a in addresses) else None


async def test_ssrf_attempts_are_refused_logged_and_answered(
    nova, fake_openai: FakeOpenAIServer, hook_server: HookServer, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    targets = {
        "loopback": hook_server.url("/echo"),  # a real server: it must never be reached
        "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "private": "http://10.0.0.7/admin",
        "localhost": hook_server.url("/echo", host="localhost"),
    }
    name = _private_name()
    if name is not None:  # a DNS name that resolves to a private address
        targets["dns_name"] = hook_server.url("/echo", host=name)
    tools = [webhook(key, url) for key, url in targets.items()]
    fake_openai.script(
        Stream([], tool_calls=[ToolCallScript(key, {}, id=f"call_{key}") for key in targets]),
        Stream(["Sorry, ", "I can't reach those systems."]),
    )
    conv = converse(nova, *tools, brain=LLMOptions(base_url=fake_openai.base_url, model="fake"))
    with caplog.at_level(logging.WARNING, logger="talkie.brain.tools.webhook"):
        async with running(conv) as pulled:
            conv.handle_client_event({"type": "text", "text": "Fetch the server's secrets."})
            await wait_for(pulled, lambda p: p.of_type("turn"), timeout=20)
    assert hook_server.requests == [], "no request reached the loopback server"
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    for key in targets:
        assert any(f"'{key}' refused" in message for message in refusals), (key, refusals)
    assert any("cloud metadata" in m for m in refusals)
    # The refusals went back to the model, and the character still answered.
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in
               fake_openai.requests[1].tool_messages()}  # fmt: skip
    assert set(results) == {f"call_{key}" for key in targets}
    assert all(r["ok"] is False and "address" in r["error"] for r in results.values())
    assert [e["text"] for e in pulled.of_type("reply")] == ["Sorry, I can't reach those systems."]
    entries = pulled.of_type("trace")[0]["tools"]
    assert sorted(e["name"] for e in entries) == sorted(targets)
    assert {(e["kind"], e["ok"], e["reason"]) for e in entries} == {("webhook", False, "refused")}
