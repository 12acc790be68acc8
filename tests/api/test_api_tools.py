"""Tools at the API and store edge: declarations reach the session's character, tool calls are
stored with each turn's trace (migration 5) and listed by /traces, and the webhook network policy
comes from `talkie serve` flags and the environment."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.brain.tools import Tool, WebhookOptions
from talkie.errors import InvalidInputError
from talkie.server.app import ServerOptions, create_app
from talkie.server.cli import add_serve_command, serve_options, webhook_options
from talkie.store import SessionRecord, Store, TraceRecord
from talkie.store.schema import LATEST_VERSION

CALLS = [
    {"name": "show_card", "kind": "ui", "ok": True, "reason": "", "elapsed_ms": 41.5},
    {"name": "check_stock", "kind": "webhook", "ok": False, "reason": "refused", "elapsed_ms": 2.0},
]
TOOLS = [
    {
        "name": "show_card",
        "description": "Show a product card",
        "kind": "ui",
        "parameters": {
            "type": "object",
            "properties": {"title": {"type": "string"}},
            "required": ["title"],
        },
    },
    {
        "name": "check_stock",
        "description": "Is a product in stock?",
        "kind": "webhook",
        "webhook": {"url": "https://shop.example/stock", "method": "GET", "secret_env": "SHOP_KEY"},
    },
]


def _session(store: Store, session_id: str, character_id: str = "astronaut") -> None:
    store.add_session(
        SessionRecord(
            id=session_id, character_id=character_id, key_id=None, end_user_id=None,
            status="ended", created_at=time.time(), started_at=None, ended_at=None,
            end_reason=None, turns=0, tenant="admin",
        )
    )  # fmt: skip


def test_migration_5_adds_tool_calls_to_old_traces(tmp_path: Path) -> None:
    path = tmp_path / "talkie.db"
    store = Store(f"sqlite:///{path}")
    _session(store, "se_old")
    store.close()
    with sqlite3.connect(path) as db:  # make it a version-4 database with a trace in it
        db.execute("ALTER TABLE turn_traces DROP COLUMN tools")
        db.execute("DELETE FROM schema_migrations WHERE version = 5")
        db.execute(
            "INSERT INTO turn_traces (session_id, turn, latency, interrupted, error, marks, at) "
            "VALUES ('se_old', 1, 0.5, 0, '', '{\"answer_start\": 1.0}', 1.0)"
        )
    store = Store(f"sqlite:///{path}")
    try:
        (old,) = store.traces("se_old")
        assert old.tools == [] and old.marks == {"answer_start": 1.0}
        store.record_turn([], TraceRecord("se_old", 2, 0.4, False, "", {}, 2.0, tools=CALLS))
        assert store.traces("se_old")[1].tools == CALLS
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))


def test_traces_endpoint_lists_tool_calls(api: TestClient, admin: TestClient) -> None:
    created = admin.post("/v1/sessions", json={"character_id": "astronaut"})
    assert created.status_code == 201, created.text
    session_id = created.json()["session"]["id"]
    store: Store = api.app.state.services.store  # type: ignore[attr-defined]
    malformed = {"name": "x", "kind": "ui", "ok": True, "elapsed_ms": "soon"}
    store.record_turn(
        [], TraceRecord(session_id, 1, 0.3, False, "", {}, time.time(), tools=[*CALLS, malformed])
    )
    (turn,) = admin.get(f"/v1/sessions/{session_id}/traces").json()["turns"]
    assert turn["tools"] == CALLS  # the malformed entry is left out, not a 500
    schema = admin.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["ToolCallTrace"]["properties"]) == {
        "name", "kind", "ok", "reason", "elapsed_ms"
    }  # fmt: skip


def test_declared_tools_reach_the_live_character(
    api: TestClient, admin: TestClient, face_png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    r = admin.post(
        "/v1/characters",
        files={"image": ("me.png", face_png, "image/png")},
        data={"name": "Shopkeeper", "tools": json.dumps(TOOLS)},
    )
    assert r.status_code == 201, r.text
    character_id = r.json()["id"]
    service = api.app.state.services.characters  # type: ignore[attr-defined]
    character = service.load(character_id)
    assert character.tools == tuple(Tool.from_dict(t) for t in TOOLS)
    assert character.tools[1].webhook.secret_env == "SHOP_KEY"  # the name only, never a value
    # A schema the brain's validator would misread is refused at the API already.
    bad = [{**TOOLS[0], "parameters": {"type": "object", "properties": {"n": {"type": "int"}}}}]
    message = error_of(admin.patch(f"/v1/characters/{character_id}", json={"tools": bad}), 400)
    assert "parameters.properties.n.type" in message
    # A stored declaration that no longer validates is left out, with a warning.
    store: Store = api.app.state.services.store  # type: ignore[attr-defined]
    store.update_character(character_id, {"tools": [TOOLS[0], {"name": "broken"}]})
    with caplog.at_level(logging.WARNING, logger="talkie.server.characters"):
        character = service.load(character_id)
    assert [t.name for t in character.tools] == ["show_card"]
    assert any("tool left out" in r.getMessage() for r in caplog.records)


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_webhook_policy_from_flags_and_environment() -> None:
    assert webhook_options(_serve_args(), {}) == WebhookOptions()
    options = webhook_options(
        _serve_args("--webhook-allow-host", "crm.internal", "--webhook-allow-network",
                    "10.1.2.0/24", "--webhook-allow-host", "*.corp.example"),
        {"TALKIE_WEBHOOK_ALLOW_HOSTS": "a.example, crm.internal",
         "TALKIE_WEBHOOK_ALLOW_NETWORKS": "192.168.5.0/24"},
    )  # fmt: skip
    assert options.allow_private_networks is False
    assert options.allowed_hosts == ("a.example", "crm.internal", "*.corp.example")
    assert options.allowed_networks == ("192.168.5.0/24", "10.1.2.0/24")
    assert webhook_options(_serve_args("--webhook-allow-private"), {}).allow_private_networks
    from_env = webhook_options(_serve_args(), {"TALKIE_WEBHOOK_ALLOW_PRIVATE": "1"})
    assert from_env.allow_private_networks
    with pytest.raises(InvalidInputError, match="allowed_networks"):
        webhook_options(_serve_args("--webhook-allow-network", "10.0.0.0/33"), {})
    with pytest.raises(InvalidInputError, match="TALKIE_WEBHOOK_ALLOW_PRIVATE"):
        webhook_options(_serve_args(), {"TALKIE_WEBHOOK_ALLOW_PRIVATE": "maybe"})


def test_serve_flags_for_the_public_url_and_session_limits() -> None:
    options = serve_options(_serve_args(), {})
    assert options.public_url is None
    assert (options.webrtc.limits.max_duration, options.webrtc.limits.idle_timeout) == (3600, 300)
    options = serve_options(
        _serve_args("--public-url", "https://talkie.example.org", "--max-session-minutes", "0",
                    "--idle-minutes", "1.5"), {},
    )  # fmt: skip
    assert options.public_url == "https://talkie.example.org"
    assert (options.webrtc.limits.max_duration, options.webrtc.limits.idle_timeout) == (None, 90)
    from_env = serve_options(_serve_args(), {"TALKIE_PUBLIC_URL": "http://10.0.0.2:8000"})
    assert from_env.public_url == "http://10.0.0.2:8000"
    for argv, flag in [(("--public-url", "talkie.example.org"), "--public-url"),
                       (("--idle-minutes", "-1"), "--idle-minutes"),
                       (("--max-session-minutes", "1e9"), "--max-session-minutes")]:  # fmt: skip
        with pytest.raises(InvalidInputError, match=flag):
            serve_options(_serve_args(*argv), {})


def test_the_server_passes_its_webhook_policy_to_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import talkie.session.conversation as conversation_module

    made: list[Any] = []

    class Recorder:
        def __init__(self, *, character: Any, options: Any) -> None:
            made.append(options)

    monkeypatch.setattr(conversation_module, "Conversation", Recorder)
    policy = WebhookOptions(allow_private_networks=True, allowed_hosts=("crm.internal",))
    app = create_app(options=ServerOptions(data_dir=tmp_path, webhook=policy))
    app.state.services.conversation_factory(object())
    app.state.services.close()
    (options,) = made
    assert options.webhook == policy
    assert dataclasses.replace(options, webhook=WebhookOptions()) == type(options)()
