"""The webhook SSRF guard: what is refused, DNS pinning, redirects, and that refusals are logged.

No test here needs DNS or the internet: names are answered by a resolver hook, and requests that
would leave the machine go to a recording transport instead.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

import pytest
from tools_helpers import (
    REFUSED_URLS,
    RecordingTransport,
    fixed_resolver,
    stream_response,
    webhook_tool,
)
from tools_http_server import HookServer

from talkie.brain.tools import NetworkPolicy, WebhookCaller, WebhookOptions, parse_host
from talkie.errors import InvalidInputError

PUBLIC = "93.184.216.34"  # a global address (never contacted: the transport records instead)



@pytest.mark.asyncio
@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_refused_before_any_connection(url: str, caplog: pytest.LogCaptureFixture) -> None:
    transport = RecordingTransport()
    calls: list[str] = []
    caller = WebhookCaller(transport=transport, resolve=fixed_resolver({}, calls))
    tool = webhook_tool(url, name="probe")
    with caplog.at_level(logging.WARNING, logger="talkie.brain.tools"):
        result = await caller.call(tool, {})
    assert not result.ok and result.reason == "refused", result
    assert result.status is None and result.content == ""
    assert transport.requests == [] and calls == []  # neither connected nor asked DNS
    assert result.spoken == "I couldn't reach that service."
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert refusals and "'probe' refused" in refusals[0].getMessage()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("records", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["10.1.2.3"], "private"),
        (["169.254.169.254"], "cloud metadata"),
        (["::1"], "loopback"),
        (["::ffff:192.168.0.1"], "private (inside an IPv6 address)"),
        (["fe80::1%eth0"], "link-local"),
        ([PUBLIC, "10.0.0.1"], "private"),  # one bad record is enough
    ],
)
async def test_dns_name_resolving_inside_is_refused(
    records: list[str], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RecordingTransport()
    caller = WebhookCaller(transport=transport, resolve=fixed_resolver({"sneaky.example": records}))
    with caplog.at_level(logging.WARNING, logger="talkie.brain.tools"):
        result = await caller.call(webhook_tool("https://sneaky.example/hook"), {})
    assert not result.ok and result.reason == "refused"
    assert "sneaky.example resolves to" in result.error and kind in result.error
    assert transport.requests == []
    assert any(kind in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_unknown_host_is_a_dns_failure() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    caller = WebhookCaller(transport=RecordingTransport(), resolve=broken)
    result = await caller.call(webhook_tool("https://nowhere.example/"), {})
    assert not result.ok and result.reason == "dns" and "nowhere.example" in result.error


@pytest.mark.asyncio
async def test_connects_to_the_checked_address_not_a_second_lookup() -> None:
    """DNS rebinding: the name resolves once; a second answer (loopback) is never used."""
    answers = [[PUBLIC], ["127.0.0.1"]]
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked) - 1, 1)]

    transport = RecordingTransport()
    caller = WebhookCaller(transport=transport, resolve=rebinding)
    result = await caller.call(webhook_tool("https://api.example.com:8443/v1/hook?x=1"), {})
    assert result.ok, result
    assert asked == ["api.example.com"]
    (request,) = transport.requests
    assert request.url.host == PUBLIC and request.url.port == 8443
    assert request.url.path == "/v1/hook" and request.url.params["x"] == "1"
    assert request.headers["host"] == "api.example.com:8443"
    # TLS: SNI and the certificate check use the name, not the IP.
    assert request.extensions["sni_hostname"] == "api.example.com"


@pytest.mark.asyncio
async def test_ipv6_address_is_pinned_in_brackets() -> None:
    transport = RecordingTransport()
    caller = WebhookCaller(
        transport=transport, resolve=fixed_resolver({"v6.example": ["2606:2800:220:1::1"]})
    )
    result = await caller.call(webhook_tool("http://v6.example/"), {})
    assert result.ok
    assert str(transport.requests[0].url).startswith("http://[2606:2800:220:1::1]/")
    assert transport.requests[0].headers["host"] == "v6.example"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1/admin", "http://0x7f.1/", "http://[::1]/", "file:///etc/passwd",
     "gopher://example.com/", "http://inside.example/"],
)  # fmt: skip
async def test_redirect_targets_are_checked(
    location: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RecordingTransport([stream_response(302, headers={"Location": location})])
    resolve = fixed_resolver({"api.example.com": [PUBLIC], "inside.example": ["10.0.0.7"]})
    caller = WebhookCaller(transport=transport, resolve=resolve)
    with caplog.at_level(logging.WARNING, logger="talkie.brain.tools"):
        result = await caller.call(webhook_tool("https://api.example.com/hook"), {})
    assert not result.ok and result.reason == "refused", result
    assert len(transport.requests) == 1  # the redirect was never followed
    assert any("refused" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_redirect_to_loopback_from_an_allowed_server(
    hook_server: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A real server the deployment allows (by host name) redirects to 127.0.0.1: refused."""
    options = WebhookOptions(allowed_hosts=("hooks.example",))
    caller = WebhookCaller(
        options=options, resolve=fixed_resolver({"hooks.example": ["127.0.0.1"]})
    )
    for target in (
        hook_server.url("/echo"),
        hook_server.url("/echo", host="localhost"),
        hook_server.url("/echo", host="2130706433"),
        hook_server.url("/echo", host="[::ffff:127.0.0.1]"),
    ):
        start = hook_server.url("/redirect", host="hooks.example")
        tool = webhook_tool(start, parameters={"type": "object"})
        with caplog.at_level(logging.WARNING, logger="talkie.brain.tools"):
            result = await caller.call(tool, {"to": target})
        assert not result.ok and result.reason == "refused", (target, result)
        assert "loopback" in result.error
    assert hook_server.paths() == ["/redirect"] * 4  # /echo was never reached
    assert sum("refused" in r.getMessage() for r in caplog.records) == 4


@pytest.mark.asyncio
async def test_secret_is_not_sent_over_plain_http_to_the_internet() -> None:
    transport = RecordingTransport()
    caller = WebhookCaller(
        transport=transport,
        resolve=fixed_resolver({"api.example.com": [PUBLIC]}),
        environ={"HOOK_TOKEN": "tok-123456"},
    )
    tool = webhook_tool("http://api.example.com/", secret_env="HOOK_TOKEN")
    result = await caller.call(tool, {})
    assert not result.ok and result.reason == "refused" and "plain http" in result.error
    assert transport.requests == [] and "tok-123456" not in result.error


# -- the policy on its own --


def test_parse_host_forms() -> None:
    loop4 = ipaddress.IPv4Address("127.0.0.1")
    for host in ("127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001", "017700000001",
                 "0177.0.0.01", "127.0.0.1.", "0x7F.0.0.1"):  # fmt: skip
        assert parse_host(host)[1] == loop4, host
    assert parse_host("[::ffff:127.0.0.1]")[1] == ipaddress.IPv6Address("::ffff:7f00:1")
    assert parse_host("Example.COM.") == ("example.com", None)
    assert parse_host("1password.com") == ("1password.com", None)
    for bad in ("08.0.0.1", "1.2.3.4.5", "256.1.1.1", "1.2.3.0x1ff", "a.b.0x", "fe80::1%25eth0"):
        with pytest.raises(ValueError):
            parse_host(bad)


def test_allow_private_networks_keeps_metadata_and_unspecified_refused() -> None:
    policy = NetworkPolicy(allow_private_networks=True)
    for allowed in ("127.0.0.1", "10.2.3.4", "192.168.0.10", "100.64.1.1", "fd00::1", "::1"):
        assert policy.refusal(ipaddress.ip_address(allowed)) is None, allowed
    for refused, kind in [
        ("169.254.169.254", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:169.254.169.254", "cloud metadata (inside an IPv6 address)"),
    ]:
        assert policy.refusal(ipaddress.ip_address(refused)) == kind


def test_allowed_networks_are_exact() -> None:
    policy = NetworkPolicy(allowed_networks=("10.1.2.0/24",), allowed_hosts=("*.corp.example",))
    assert policy.refusal(ipaddress.ip_address("10.1.2.3")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.1.2.3")) is None
    assert policy.refusal(ipaddress.ip_address("10.9.9.9")) == "private"
    assert policy.refusal(ipaddress.ip_address(PUBLIC)) is None
    assert policy.trusts_host("crm.corp.example") and not policy.trusts_host("corp.example.evil")
    with pytest.raises(InvalidInputError, match="allowed_networks"):
        NetworkPolicy(allowed_networks=("10.1.2.0/33",))
