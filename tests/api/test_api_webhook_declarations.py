"""Webhook tools are checked when a character declares them (create and PATCH), with the same
SSRF policy as every call and the server's own allow options: each refused address form is a
400 naming the field and the rule, and nothing is stored."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402
from tools_helpers import REFUSED_URLS, fixed_resolver  # noqa: E402

from talkie.brain.tools import WebhookCaller, WebhookOptions  # noqa: E402
from talkie.server.app import ServerOptions, create_app  # noqa: E402

PUBLIC = "https://93.184.216.34/hook"  # a global address literal (never contacted here)


def _tools(url: str, **webhook: Any) -> list[dict[str, Any]]:
    return [
        {"name": "ok", "description": "A fine tool", "kind": "webhook",
         "webhook": {"url": PUBLIC}},
        {"name": "lookup", "description": "Look something up", "kind": "webhook",
         "webhook": {"url": url, **webhook}},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    options = ServerOptions(request_burst=10_000, requests_per_minute=100_000)
    with LiveServer(options=options, conversation_factory=FakeConversation) as live:
        yield live


@pytest.fixture(scope="module")
def character(server: LiveServer, face_png: bytes) -> str:
    with server.admin() as admin:
        r = admin.post("/v1/characters?name=Hooks", content=face_png,
                       headers={"content-type": "image/png"})  # fmt: skip
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _refused(r: httpx.Response, url: str) -> str:
    assert r.status_code == 400, (url, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "webhook_refused", (url, error)
    message = str(error["message"])
    assert message.startswith("tools[1].webhook.url: "), message  # the field...
    rules = (
        "may only reach public addresses", "cloud metadata addresses are never reachable",
        "cannot be parsed",  # e.g. 0177.0.0.1, refused by the HTTP client itself
    )  # fmt: skip
    assert any(rule in message for rule in rules), message  # ...and the rule
    return message


def test_every_refused_address_form_is_refused_at_declaration(
    server: LiveServer, character: str
) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    urls = [
        *REFUSED_URLS,
        f"http://127.0.0.1:{port}/v1/keys",  # this very server's admin API
        f"http://[::1]:{port}/v1/keys",
        f"http://localhost:{port}/v1/characters",
        "http://0x7f.0x0.0x0.0x1/",
        "http://0x7f.1:8000/v1/keys",
        "http://3232235777/",  # decimal 192.168.1.1
        "http://0251.0376.0251.0376/latest/meta-data/",  # octal 169.254.169.254
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",  # 169.254.169.254, IPv6-mapped
        "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
    ]
    with server.admin() as admin:
        before = admin.get(f"/v1/characters/{character}").json()["tools"]
        messages = {}
        for url in urls:
            r = admin.patch(f"/v1/characters/{character}", json={"tools": _tools(url)})
            messages[url] = _refused(r, url)
        assert admin.get(f"/v1/characters/{character}").json()["tools"] == before
    print(f"{len(urls)} address forms refused; e.g. {messages['http://0x7f.1/']!r}")
    assert "cloud metadata" in messages["http://169.254.169.254/latest/meta-data/"]
    assert "loopback" in messages[f"http://127.0.0.1:{port}/v1/keys"]


def test_create_refuses_too_and_stores_nothing(
    server: LiveServer, face_png: bytes
) -> None:
    with server.admin() as admin:
        count = len(admin.get("/v1/characters?limit=100").json()["characters"])
        for url in ("http://169.254.169.254/", "http://[::1]/", "http://0x7f.1/"):
            r = admin.post(
                "/v1/characters", files={"image": ("me.png", face_png, "image/png")},
                data={"name": "Nope", "tools": json.dumps(_tools(url))},
            )  # fmt: skip
            _refused(r, url)
        assert len(admin.get("/v1/characters?limit=100").json()["characters"]) == count


def test_public_targets_and_unresolvable_names_are_accepted(
    server: LiveServer, character: str
) -> None:
    with server.admin() as admin:
        for url in (PUBLIC, "https://nowhere.invalid/hook"):  # the name: checked at each call
            r = admin.patch(f"/v1/characters/{character}", json={"tools": _tools(url)})
            assert r.status_code == 200, (url, r.text)
        # a secret is never sent over plain http: a tool that could only fail is refused
        r = admin.patch(
            f"/v1/characters/{character}",
            json={"tools": _tools("http://93.184.216.34/hook", secret_env="SHOP_KEY")},
        )  # fmt: skip
        assert r.status_code == 400 and "https" in r.json()["error"]["message"]


def test_the_servers_allow_options_apply_at_declaration(tmp_path: Path, face_png: bytes) -> None:
    policy = WebhookOptions(
        allow_private_networks=False, allowed_networks=("10.1.2.0/24",),
        allowed_hosts=("crm.internal",),
    )  # fmt: skip
    private = WebhookOptions(allow_private_networks=True)
    for options, accepted, refused in [
        (policy, ["http://10.1.2.3/", "http://crm.internal/hook"],
         ["http://10.1.3.3/", "http://127.0.0.1/", "http://169.254.169.254/"]),
        (private, ["http://127.0.0.1:9000/", "http://10.9.9.9/", "http://[fd12::1]/"],
         ["http://169.254.169.254/", "http://0.0.0.0/", "http://[ff02::1]/"]),
    ]:  # fmt: skip
        data_dir = tmp_path / str(id(options))
        app = create_app(options=ServerOptions(data_dir=data_dir, webhook=options),
                         conversation_factory=FakeConversation)  # fmt: skip
        key = (data_dir / "admin.key").read_text().strip()
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as admin:
            r = admin.post("/v1/characters?name=Allowed", content=face_png,
                           headers={"content-type": "image/png"})  # fmt: skip
            cid = r.json()["id"]
            for url in accepted:
                r = admin.patch(f"/v1/characters/{cid}", json={"tools": _tools(url)})
                assert r.status_code == 200, (url, r.text)
            for url in refused:
                _refused(admin.patch(f"/v1/characters/{cid}", json={"tools": _tools(url)}), url)


def _check(url: str, table: dict[str, Sequence[str]], **kwargs: Any) -> str | None:
    caller = WebhookCaller(resolve=fixed_resolver(table))
    return asyncio.run(caller.check_declaration(url, **kwargs))


def test_names_are_resolved_at_declaration_with_a_short_timeout() -> None:
    assert "10.0.0.7, a private address" in str(
        _check("https://intranet.example/hook", {"intranet.example": ["10.0.0.7"]})
    )
    # one bad record among good ones is enough to refuse (a call could be steered to it)
    assert "loopback" in str(
        _check("https://mixed.example/", {"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    )
    assert _check("https://fine.example/", {"fine.example": ["93.184.216.34"]}) is None

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["127.0.0.1"]

    caller = WebhookCaller(resolve=slow)
    found = asyncio.run(caller.check_declaration("https://slow.example/", dns_timeout=0.2))
    assert found is None  # undecided now: every call resolves and checks it again
