"""HTTPS through the pinned address: the TLS handshake still names (SNI) and verifies the host."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from tools_helpers import fixed_resolver, webhook_tool
from tools_http_server import HookServer
from tools_tls import client_context, make_certificates

from talkie.brain.tools import WebhookCaller, WebhookOptions

HOST = "hooks.example"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HookServer, bytes, list[str | None]]]:
    cert, key, ca = make_certificates(tmp_path, HOST)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []

    def remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: object) -> None:
        names.append(name)

    context.sni_callback = remember_sni
    server = HookServer(tls=context)
    try:
        yield server, ca, names
    finally:
        server.close()


@pytest.mark.asyncio
async def test_https_to_the_pinned_address_verifies_the_name(
    tls_server: tuple[HookServer, bytes, list[str | None]],
) -> None:
    server, ca, names = tls_server
    resolve = fixed_resolver({HOST: ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    options = WebhookOptions(allowed_hosts=(HOST, "other.example"))
    caller = WebhookCaller(options=options, resolve=resolve, ssl_context=client_context(ca))

    result = await caller.call(webhook_tool(server.url("/echo", host=HOST)), {"q": "1"})
    assert result.ok, result
    assert isinstance(result.content, dict)
    assert result.content["headers"]["host"] == f"{HOST}:{server.port}"
    assert names == [HOST]  # SNI carried the name, though we connected to 127.0.0.1

    # The same address under a name the certificate does not cover: the check fails.
    other = await caller.call(webhook_tool(server.url("/echo", host="other.example")), {})
    assert not other.ok and other.reason == "tls", other
    assert other.error == "the certificate of other.example could not be verified"


@pytest.mark.asyncio
async def test_untrusted_certificate_is_refused(
    tls_server: tuple[HookServer, bytes, list[str | None]],
) -> None:
    server, _, _ = tls_server
    options = WebhookOptions(allowed_hosts=(HOST,))
    # The default trust store does not know the throwaway CA.
    caller = WebhookCaller(options=options, resolve=fixed_resolver({HOST: ["127.0.0.1"]}))
    result = await caller.call(webhook_tool(server.url("/echo", host=HOST)), {})
    assert not result.ok and result.reason == "tls"
