"""Authentication and authorisation: API keys (scopes), publishable keys (origins), session
tokens (one session, short-lived), revocation, hashing at rest, and no secrets in logs."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.server.auth import Authenticator
from talkie.server.errors import ApiError


def _key(admin: TestClient, **body: Any) -> str:
    r = admin.post("/v1/keys", json={"name": "test", **body})
    assert r.status_code == 201, r.text
    secret: str = r.json()["secret"]
    return secret


def _as(api: TestClient, key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def test_no_or_bad_credentials_are_401(api: TestClient, admin_key: str) -> None:
    error_of(api.get("/v1/characters"), 401, "unauthorized")
    error_of(api.get("/v1/characters", headers=_as(api, "tk_nope_nope")), 401, "invalid_key")
    error_of(api.get("/v1/characters", headers=_as(api, "garbage")), 401, "invalid_key")
    error_of(api.get("/v1/characters", headers=_as(api, "x" * 5000)), 401)
    tampered = admin_key[:-2] + ("AA" if not admin_key.endswith("AA") else "BB")
    error_of(api.get("/v1/characters", headers=_as(api, tampered)), 401, "invalid_key")
    # the X-API-Key header works like Authorization: Bearer
    assert api.get("/v1/characters", headers={"X-API-Key": admin_key}).status_code == 200
    # health and version need no key (load balancers, monitoring)
    assert api.get("/v1/health").status_code == 200


def test_scopes(admin: TestClient, api: TestClient) -> None:
    # keys of the operator's own tenant: they see the bundled samples (see test_api_ownership)
    sessions_key = _key(admin, scopes=["sessions"], tenant="admin")
    characters_key = _key(admin, scopes=["characters"], tenant="admin")
    # a sessions key reads characters (to pick one) and creates sessions, but cannot edit them
    assert api.get("/v1/characters", headers=_as(api, sessions_key)).status_code == 200
    r = api.post("/v1/sessions", json={"character_id": "astronaut"}, headers=_as(api, sessions_key))
    assert r.status_code == 201, r.text
    error_of(
        api.patch("/v1/characters/astronaut", json={"name": "x"}, headers=_as(api, sessions_key)),
        403,
        "forbidden",
    )
    # a characters key cannot see sessions or keys
    error_of(api.get("/v1/sessions", headers=_as(api, characters_key)), 403, "forbidden")
    error_of(api.get("/v1/keys", headers=_as(api, characters_key)), 403, "forbidden")
    error_of(
        api.post("/v1/keys", json={"name": "x", "scopes": ["admin"]},
                 headers=_as(api, sessions_key)),
        403,
    )  # fmt: skip


def test_revoked_keys_stop_working_at_once(admin: TestClient, api: TestClient) -> None:
    key = _key(admin, scopes=["characters"])
    assert api.get("/v1/characters", headers=_as(api, key)).status_code == 200
    key_id = key.split("_")[1]
    r = admin.delete(f"/v1/keys/{key_id}")
    assert r.status_code == 200 and r.json()["revoked"] is True
    error_of(api.get("/v1/characters", headers=_as(api, key)), 401, "revoked_key")
    listed = {k["id"]: k for k in admin.get("/v1/keys").json()["keys"]}
    assert listed[key_id]["revoked"] is True and "secret" not in listed[key_id]
    error_of(admin.delete("/v1/keys/nokey"), 404, "unknown_key")


def test_publishable_keys_read_no_persona_knowledge_or_wiring(
    admin: TestClient, api: TestClient, face_png: bytes
) -> None:
    """A publishable key sits in a web page for anyone to copy: what it reads of a character is
    what the widget shows (name, picture, greeting...), never the persona, the knowledge, the
    guardrails or how its tools are wired."""
    tools = [{
        "name": "check_stock", "kind": "webhook", "description": "Check the stock",
        "webhook": {"url": "https://hooks.invalid/stock", "secret_env": "SHOP_TOKEN"},
    }]  # fmt: skip
    r = admin.post(
        "/v1/characters", files={"image": ("shop.png", face_png, "image/png")},
        data={"name": "Shop", "system_prompt": "Secret persona", "knowledge": "Internal prices",
              "tools": json.dumps(tools),
              "guardrails": json.dumps({"blocked_topics": ["competitors"]})},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    character_id = r.json()["id"]
    key = _key(
        admin, scopes=["sessions"], publishable=True, origins=["https://shop.example"],
        tenant="admin",
    )  # fmt: skip
    ok = _as(api, key, Origin="https://shop.example")
    seen = api.get(f"/v1/characters/{character_id}", headers=ok).json()
    listed = api.get("/v1/characters?limit=100", headers=ok).json()["characters"]
    (in_list,) = [c for c in listed if c["id"] == character_id]
    for character in (seen, in_list):
        assert character["name"] and character["preview_url"]
        assert character["system_prompt"] == "" and character["knowledge"] == ""
        assert character["guardrails"] == {}
        assert character["tools"] == [
            {"name": "check_stock", "kind": "webhook", "description": "Check the stock"}
        ]
    # a secret key still reads everything
    full = admin.get(f"/v1/characters/{character_id}").json()
    assert full["system_prompt"] == "Secret persona" and full["tools"][0]["webhook"]


def test_publishable_keys_work_only_from_their_origins(admin: TestClient, api: TestClient) -> None:
    key = _key(
        admin, scopes=["sessions"], publishable=True, origins=["https://shop.example"],
        tenant="admin",
    )  # fmt: skip
    ok = _as(api, key, Origin="https://shop.example")
    assert api.get("/v1/characters", headers=ok).status_code == 200
    r = api.post("/v1/sessions", json={"character_id": "astronaut"}, headers=ok)
    assert r.status_code == 201
    for origin in ("https://evil.example", "http://shop.example", "null"):
        bad = _as(api, key, Origin=origin)
        error_of(api.get("/v1/characters", headers=bad), 403, "origin_not_allowed")
    error_of(api.get("/v1/characters", headers=_as(api, key)), 403, "origin_not_allowed")
    # never anything but reading characters and starting sessions
    error_of(api.get("/v1/sessions", headers=ok), 403, "forbidden")
    error_of(api.delete("/v1/sessions/x", headers=ok), 403)
    # invalid key requests are 400s naming the field
    for body, field in [
        ({"scopes": ["sessions"], "publishable": True}, "origins"),
        ({"scopes": ["admin"], "publishable": True, "origins": ["https://a.b"]}, "scopes"),
        ({"scopes": ["sessions"], "publishable": True, "origins": ["ftp://a.b"]}, "origins"),
        ({"scopes": ["sessions"], "origins": ["https://a.b"]}, "origins"),
        ({"scopes": ["root"]}, "scopes"),
        ({"scopes": []}, "scopes"),
    ]:
        message = error_of(admin.post("/v1/keys", json={"name": "k", **body}), 400)
        assert field in message, (body, message)


def test_the_web_clients_key_works_from_the_servers_own_origin(api: TestClient) -> None:
    key = api.get("/api/config").json()["api_key"]
    own = {"Origin": "http://testserver"}
    assert api.get("/v1/characters", headers=_as(api, key, **own)).status_code == 200
    referer = {"Referer": "http://testserver/index.html"}  # same-origin GETs carry no Origin
    assert api.get("/v1/characters", headers=_as(api, key, **referer)).status_code == 200
    error_of(api.get("/v1/characters", headers=_as(api, key, Origin="https://other.example")), 403)


def test_the_web_clients_key_never_trusts_the_host_header(api: TestClient) -> None:
    """The page's allowed origin is the server's own address (the socket's, here TestClient's
    ``testserver``) or ``--public-url``; a request that names another Host does not move it."""
    key = api.get("/api/config").json()["api_key"]
    spoofed = _as(api, key, Host="evil.example", Origin="http://evil.example")
    error_of(api.get("/v1/characters", headers=spoofed), 403, "origin_not_allowed")
    spoofed = _as(api, key, Host="evil.example:8000", Referer="http://evil.example:8000/")
    error_of(api.get("/v1/characters", headers=spoofed), 403, "origin_not_allowed")


def test_the_web_clients_key_works_from_the_public_url(tmp_path: Path) -> None:
    from live_fakes import FakeConversation

    from talkie.server.app import ServerOptions, create_app

    options = ServerOptions(data_dir=tmp_path, public_url="https://talkie.example.org/app/")
    with TestClient(create_app(options=options, conversation_factory=FakeConversation)) as api:
        key = api.get("/api/config").json()["api_key"]
        public = _as(api, key, Origin="https://talkie.example.org")
        assert api.get("/v1/characters", headers=public).status_code == 200
        own = _as(api, key, Origin="http://testserver")  # the listening address still works
        assert api.get("/v1/characters", headers=own).status_code == 200
        error_of(api.get("/v1/characters", headers=_as(api, key, Origin="https://x.example.org")),
                 403)  # fmt: skip
        admin = {"Authorization": f"Bearer {(tmp_path / 'admin.key').read_text().strip()}"}
        listed = [k for k in api.get("/v1/keys", headers=admin).json()["keys"] if k["origins"]]
        assert [k["origins"] for k in listed] == [["https://talkie.example.org"]]
    # restarted without it: the page's key is replaced, its old origin forgotten
    options = ServerOptions(data_dir=tmp_path)
    with TestClient(create_app(options=options, conversation_factory=FakeConversation)) as api:
        new_key = api.get("/api/config").json()["api_key"]
        assert new_key != key
        error_of(api.get("/v1/characters", headers=_as(api, new_key,
                                                       Origin="https://talkie.example.org")), 403)
        error_of(api.get("/v1/characters", headers=_as(api, key, Origin="http://testserver")),
                 401, "revoked_key")  # fmt: skip


def test_session_tokens_open_only_their_own_session(admin: TestClient, api: TestClient) -> None:
    first = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()
    second = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()
    token = first["token"]
    sid, other = first["session"]["id"], second["session"]["id"]
    assert api.get(f"/v1/sessions/{sid}", headers=_as(api, token)).status_code == 200
    assert api.get(f"/v1/sessions/{sid}/transcript", headers=_as(api, token)).status_code == 200
    error_of(api.get(f"/v1/sessions/{other}", headers=_as(api, token)), 403, "forbidden")
    error_of(api.get("/v1/sessions", headers=_as(api, token)), 403)
    error_of(api.get("/v1/characters", headers=_as(api, token)), 403)
    error_of(api.get(f"/v1/sessions/{sid}", headers=_as(api, token[:-3] + "xyz")), 401)
    r = api.delete(f"/v1/sessions/{sid}", headers=_as(api, token))
    assert r.status_code == 200 and r.json()["status"] == "ended"
    # an ended session cannot be connected again
    offer = {"sdp": "v=0\r\n", "type": "offer"}
    error_of(api.post(first["offer_url"], json=offer, headers=_as(api, token)), 409)


def test_session_tokens_expire(admin: TestClient, api: TestClient) -> None:
    auth: Authenticator = api.app.state.services.auth  # type: ignore[attr-defined]
    token, _ = auth.session_token("se_whatever", ttl=-1)
    with pytest.raises(ApiError) as caught:
        auth.verify_session_token(token)
    assert caught.value.status == 401 and caught.value.code == "expired_token"
    error_of(api.get("/v1/sessions/se_whatever", headers=_as(api, token)), 401, "expired_token")


def test_keys_are_hashed_at_rest_and_never_logged(
    admin: TestClient, api: TestClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = _key(admin, scopes=["characters"])
    api.get("/v1/characters", headers=_as(api, key))
    api.get("/v1/characters", headers=_as(api, key + "x"))
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    time.sleep(0.1)
    with sqlite3.connect(data_dir / "talkie.db") as db:
        dump = "\n".join(db.iterdump())
    assert key_id in dump and secret not in dump
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged
    admin_file = data_dir / "admin.key"
    assert oct(os.stat(admin_file).st_mode & 0o777) == "0o600"
    admin_secret = admin_file.read_text().strip().split("_", 2)[2]
    assert admin_secret not in dump
    assert admin_secret not in logged


def test_a_key_cannot_revoke_itself(admin: TestClient, admin_key: str) -> None:
    error_of(admin.delete(f"/v1/keys/{admin_key.split('_')[1]}"), 409, "own_key")


def test_the_web_clients_key_cannot_be_revoked_by_accident(
    admin: TestClient, api: TestClient
) -> None:
    key_id = api.get("/api/config").json()["api_key"].split("_")[1]
    error_of(admin.delete(f"/v1/keys/{key_id}"), 409, "builtin_key")
