"""Calling a webhook tool safely.

The threat: a character's brain (an LLM anyone can talk to) decides *when* a tool runs and with
*which arguments*. So the URL, the method and the credentials come from the tool declaration
only, and the server must not become a proxy into its own network (SSRF). ``WebhookCaller``:

- sends the arguments as the JSON body (POST/PUT/PATCH) or the query string (GET/DELETE) of the
  declared URL, after validating them against the tool's schema;
- resolves the host once, checks EVERY address it resolves to, and connects to the checked
  address (the URL is rewritten to the IP; the ``Host`` header and the TLS SNI/certificate check
  keep the real name), so a DNS answer that changes between check and connect (rebinding) is
  never used;
- refuses loopback, private, link-local (cloud metadata), CGNAT, multicast, unspecified and
  reserved addresses, their IPv4-mapped/NAT64/6to4 IPv6 forms, numeric host tricks
  (``2130706433``, ``0x7f.1``, ``017700000001``), ``localhost`` names and non-http(s) schemes,
  unless ``WebhookOptions`` explicitly allows them;
- follows at most ``max_redirects`` redirects by hand, checking each target like the first, and
  drops the ``Authorization`` header when a redirect leaves the declared origin;
- bounds the whole call by a deadline and the response by a byte limit (read as a stream and
  cut, decompression bounded too);
- sends ``Authorization: Bearer <token>`` from the environment variable the declaration names,
  and scrubs that token from everything it returns or logs.

Nothing here raises for a remote problem: ``call`` returns a ``ToolResult`` with ``ok=False`` and
a short reason the brain can turn into words.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ipaddress
import json
import logging
import os
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from talkie.brain.tools.netguard import (
    IPAddress,
    NetworkPolicy,
    Resolver,
    is_loopback_name,
    parse_host,
    system_resolve,
)
from talkie.brain.tools.spec import Tool, ToolArgumentError
from talkie.errors import InvalidInputError

__all__ = ["ToolResult", "WebhookCaller", "WebhookOptions"]

log = logging.getLogger(__name__)


_REDACTED = "[redacted]"
_REDIRECTS = (301, 302, 303, 307, 308)
_BODY_METHODS = ("POST", "PUT", "PATCH")
_ERROR_SNIPPET_CHARS = 1000


@dataclass(frozen=True, kw_only=True)
class WebhookOptions(NetworkPolicy):
    """Deployment settings for webhook calls (the tool declaration cannot change these).
    The network fields (``allow_private_networks``, ``allowed_networks``, ``allowed_hosts``)
    are those of ``NetworkPolicy``."""

    #: Upper bound on a tool's own ``timeout_seconds`` (the whole call: DNS, redirects, body).
    max_timeout_seconds: float = 10.0
    #: The response body is cut after this many bytes (after decompression).
    max_response_bytes: int = 64 * 1024
    max_redirects: int = 3
    user_agent: str = "Talkie-webhook/1"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_timeout_seconds <= 0 or self.max_response_bytes <= 0 or self.max_redirects < 0:
            raise InvalidInputError("webhook options: limits must be positive")


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call.

    ``content`` is the parsed JSON object (a JSON value that is not an object is wrapped as
    ``{"result": value}``) or the text of the response; for an HTTP error status it carries the
    start of the error body. ``reason`` is a short code when ``ok`` is false: ``"arguments"``,
    ``"refused"``, ``"secret"``, ``"dns"``, ``"connect"``, ``"tls"``, ``"timeout"``, ``"http"``,
    ``"bad_json"``, ``"redirects"``, ``"protocol"``. ``truncated``: the body was cut at the size
    limit (then ``content`` is the cut text, never parsed).
    """

    ok: bool
    content: str | dict[str, Any] = ""
    error: str = ""
    status: int | None = None
    elapsed_ms: float = 0.0
    reason: str = ""
    truncated: bool = False

    @property
    def spoken(self) -> str:
        """A sentence the character can say when the call failed (empty when it worked)."""
        if self.ok:
            return ""
        if self.reason == "arguments":
            return "I didn't quite get the details for that request."
        if self.reason == "timeout":
            return "That service is taking too long to answer."
        return "I couldn't reach that service."

    def to_message(self) -> str:
        """The result as the JSON text of a ``tool`` message for an LLM."""
        if self.ok:
            return json.dumps({"ok": True, "result": self.content}, ensure_ascii=False)
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.status is not None:
            body["status"] = self.status
        if self.content:
            body["detail"] = self.content
        return json.dumps(body, ensure_ascii=False)


class _Failure(Exception):
    """Internal: ends a call with ``ok=False``; ``refusal`` marks a policy refusal."""

    def __init__(self, reason: str, message: str, *, refusal: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.refusal = refusal


@dataclass(frozen=True)
class _Target:
    url: httpx.URL  # with the host name: redirects are resolved against this
    host: str  # normalised name or IP literal
    address: IPAddress  # the checked address we connect to

    @property
    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return (self.url.scheme, self.host, self.url.port)


class WebhookCaller:
    """Calls webhook tools (see the module docstring for what it guarantees).

    ``resolve`` replaces the system resolver (tests; a deployment's own DNS); ``environ``
    replaces ``os.environ`` for the tools' secrets; ``ssl_context`` replaces the default
    certificate checks (a private CA for internal services); ``transport`` is an httpx
    transport for tests. The caller holds no open connections: each call uses its own
    short-lived client, so connections (and their TLS identity) are never shared between
    hosts or calls.
    """

    def __init__(
        self,
        *,
        options: WebhookOptions | None = None,
        resolve: Resolver | None = None,
        environ: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.options = options or WebhookOptions()
        self._resolve = resolve or system_resolve
        self._environ = environ
        self._transport = transport
        self._ssl = ssl_context

    async def call(self, tool: Tool, arguments: Any) -> ToolResult:
        """Call ``tool`` with ``arguments`` (a mapping or the JSON text of an LLM tool call).

        Raises ``InvalidInputError`` only for a tool that is not a webhook (a programming
        error); every other problem is an ``ok=False`` result. Cancellation propagates.
        """
        webhook = tool.webhook
        if tool.kind != "webhook" or webhook is None:
            raise InvalidInputError(f"tool {tool.name!r} is not a webhook tool")
        started = time.perf_counter()
        secret = ""
        try:
            try:
                args = tool.validate_arguments(arguments)
            except ToolArgumentError as exc:
                raise _Failure("arguments", str(exc)) from None
            secret = self._secret(webhook.secret_env)
            deadline = min(webhook.timeout_seconds, self.options.max_timeout_seconds)
            try:
                async with asyncio.timeout(deadline):
                    result = await self._run(tool, args, secret, deadline)
            except (TimeoutError, httpx.TimeoutException):
                raise _Failure(
                    "timeout", f"the service did not answer within {deadline:g} s"
                ) from None
        except _Failure as failure:
            message = _redact(failure.message, secret)
            if failure.refusal:
                log.warning("webhook tool %r refused: %s", tool.name, message)
            else:
                log.warning("webhook tool %r failed (%s): %s", tool.name, failure.reason, message)
            return ToolResult(
                ok=False, error=message, reason=failure.reason, elapsed_ms=_ms(started)
            )
        elapsed = _ms(started)
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "webhook tool %r: HTTP %s in %.0f ms",
            tool.name,
            result.status,
            elapsed,
        )
        return ToolResult(
            ok=result.ok,
            content=result.content,
            error=result.error,
            status=result.status,
            elapsed_ms=elapsed,
            reason=result.reason,
            truncated=result.truncated,
        )

    # -- steps --

    def _secret(self, name: str | None) -> str:
        if name is None:
            return ""
        env = os.environ if self._environ is None else self._environ
        value = env.get(name, "").strip()
        if not value:
            raise _Failure(
                "secret",
                f"the webhook secret is not configured: set the environment variable {name}",
                refusal=True,
            )
        return value

    async def _run(
        self, tool: Tool, args: dict[str, Any], secret: str, deadline: float
    ) -> ToolResult:
        assert tool.webhook is not None
        method = tool.webhook.method
        try:
            url = httpx.URL(tool.webhook.url)
        except httpx.InvalidURL:
            raise _Failure("refused", "the declared URL is malformed", refusal=True) from None
        body: Any = None
        if method in _BODY_METHODS:
            body = args
        else:
            url = url.copy_merge_params(_query_params(args))
        declared_origin: tuple[str, str, int | None] | None = None
        timeout = httpx.Timeout(deadline)
        async with self._client(timeout) as client:
            for hop in range(self.options.max_redirects + 1):
                target = await self._check_target(url, bool(secret))
                if declared_origin is None:
                    declared_origin = target.origin
                headers = {
                    "Host": target.url.netloc.decode("ascii"),
                    "User-Agent": self.options.user_agent,
                    "Accept": "application/json, text/plain;q=0.9, */*;q=0.5",
                    # Compressed bodies are a decompression-bomb risk: ask for none (and still
                    # decode gzip/deflate with a bound if the server ignores us).
                    "Accept-Encoding": "identity",
                }
                # The token is for the declared service only, never for where it redirects to.
                if secret and target.origin == declared_origin:
                    headers["Authorization"] = f"Bearer {secret}"
                extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
                request = client.build_request(
                    method, target.pinned_url, headers=headers, json=body, extensions=extensions
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.TimeoutException:
                    raise
                except httpx.ConnectError as exc:
                    if _caused_by(exc, ssl.SSLCertVerificationError):
                        raise _Failure(
                            "tls", f"the certificate of {target.host} could not be verified"
                        ) from None
                    raise _Failure(
                        "connect", f"could not connect to {target.host} ({_kind(exc)})"
                    ) from None
                except httpx.HTTPError as exc:
                    raise _Failure(
                        "protocol", f"the connection to {target.host} failed ({_kind(exc)})"
                    ) from None
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        if hop == self.options.max_redirects:
                            raise _Failure(
                                "redirects",
                                f"too many redirects (more than {self.options.max_redirects})",
                            )
                        try:
                            url = target.url.join(location)
                        except httpx.InvalidURL:
                            raise _Failure("protocol", "the service sent a bad redirect") from None
                        # As httpx does: 303, and 301/302 after a POST, continue as a GET.
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method == "POST"
                        ):
                            method, body = "GET", None
                        log.info("webhook tool %r: redirect %d", tool.name, response.status_code)
                        continue
                    return await self._result(response, secret)
                finally:
                    await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")

    def _client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        if self._transport is None and self._ssl is None:
            # Loading the CA bundle costs milliseconds: once per caller, not per call.
            self._ssl = httpx.create_ssl_context()
        # Cookies are refused: a webhook call is stateless, and a jar would carry cookies
        # across redirect hosts.
        no_cookies = http.cookiejar.CookieJar(
            policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
        )
        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._ssl if self._ssl is not None else True,
            # trust_env=False: an HTTP(S)_PROXY from the environment would do its own DNS
            # lookup and defeat the pinning.
            trust_env=False,
            follow_redirects=False,
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
            cookies=no_cookies,
        )

    async def check_declaration(
        self, url: str, *, has_secret: bool = False, dns_timeout: float = 2.0
    ) -> str | None:
        """Why a webhook declared with ``url`` would be refused by every call (``None``: it
        may be called): the same policy as a call, applied when a character declares its tools,
        so a dangerous target is refused at once rather than stored. IP literals in every form
        are judged here; a name is resolved with a short timeout, and one that does not
        resolve now is accepted (each call resolves and checks it again)."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return (
                "the URL cannot be parsed, so no call could use it: write the host as a name "
                "or a plain dotted address"
            )
        try:
            async with asyncio.timeout(dns_timeout):
                await self._check_target(parsed, has_secret)
        except TimeoutError:
            return None
        except _Failure as failure:
            if failure.reason == "dns":
                return None
            if "cloud metadata" in failure.message:
                return f"{failure.message}: cloud metadata addresses are never reachable"
            if "secret" in failure.message:
                return f"{failure.message}: use an https URL for a tool with secret_env"
            return (
                f"{failure.message}: webhook tools may only reach public addresses over http(s) "
                "unless the server allows more (talkie serve --webhook-allow-private, "
                "--webhook-allow-host HOST, --webhook-allow-network CIDR)"
            )
        return None

    async def _check_target(self, url: httpx.URL, has_secret: bool) -> _Target:
        if url.scheme not in ("http", "https"):
            raise _Failure("refused", f"the scheme {url.scheme!r} is not allowed", refusal=True)
        try:
            host, literal = parse_host(url.host)
        except ValueError as exc:
            raise _Failure("refused", f"bad host {url.host!r}: {exc}", refusal=True) from None
        trusted = literal is None and self.options.trusts_host(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        elif is_loopback_name(host):
            addresses = [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
        else:
            addresses = await self._lookup(host, url.port or (443 if url.scheme == "https" else 80))
        if not trusted:
            # Every address must pass: a name with one public and one private record could
            # otherwise be steered to the private one.
            for address in addresses:
                kind = self.options.refusal(address)
                if kind is not None:
                    shown = "" if literal is not None else f"{host} resolves to "
                    raise _Failure("refused", f"{shown}{address}, a {kind} address", refusal=True)
        address = addresses[0]
        if has_secret and url.scheme == "http" and address.is_global:
            raise _Failure(
                "refused", "will not send the webhook secret over plain http", refusal=True
            )
        return _Target(url=url, host=host, address=address)

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            found = await self._resolve(host, port)
        except OSError as exc:  # socket.gaierror and friends
            raise _Failure("dns", f"could not find {host} ({_kind(exc)})") from None
        addresses: list[IPAddress] = []
        for text in found:
            try:
                # A scoped link-local answer ("fe80::1%eth0") is still link-local.
                addresses.append(ipaddress.ip_address(text.split("%")[0]))
            except ValueError:
                raise _Failure("dns", f"{host} resolved to a malformed address") from None
        if not addresses:
            raise _Failure("dns", f"could not find {host} (no addresses)")
        return addresses

    async def _result(self, response: httpx.Response, secret: str) -> ToolResult:
        status = response.status_code
        data, truncated = await _read_capped(response, self.options.max_response_bytes)
        text = _redact(_decode(data, response, truncated), secret)
        content_type = response.headers.get("content-type", "").lower()
        content: str | dict[str, Any] = text
        if "json" in content_type and not truncated and text.strip():
            try:
                value = json.loads(text)
            except ValueError:
                if 200 <= status < 300:
                    raise _Failure("bad_json", "the service sent invalid JSON") from None
            else:
                content = value if isinstance(value, dict) else {"result": value}
                content = _redact_json(content, secret)
        if 200 <= status < 300:
            return ToolResult(ok=True, content=content, status=status, truncated=truncated)
        if isinstance(content, str):
            content = content[:_ERROR_SNIPPET_CHARS]
        if status >= 500:
            error = f"the service failed (HTTP {status})"
        elif status >= 400:
            error = f"the service refused the request (HTTP {status})"
        else:
            error = f"unexpected HTTP status {status}"
        return ToolResult(
            ok=False, content=content, error=error, status=status, reason="http",
            truncated=truncated,
        )  # fmt: skip


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (decoded) body, and whether there was more. Reads raw
    chunks and decompresses with a bound, so neither a huge body nor a zip bomb is held."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder: Any = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, auto-detected
    elif encoding not in ("", "identity"):
        raise _Failure("protocol", f"unsupported content encoding {encoding!r}")
    buffer = bytearray()
    if response.is_stream_consumed:
        # A transport that returned a body already read (httpx.MockTransport): it is in memory
        # and already decoded; only the cut applies.
        data = response.content
        return data[:limit], len(data) > limit
    try:
        async for chunk in response.aiter_raw():
            if decoder is not None:
                chunk = decoder.decompress(chunk, limit + 1 - len(buffer))
            buffer += chunk
            if len(buffer) > limit:
                return bytes(buffer[:limit]), True
    except zlib.error:
        raise _Failure("protocol", "the service sent a corrupt compressed body") from None
    except httpx.TimeoutException:
        raise
    except httpx.HTTPError as exc:
        raise _Failure("protocol", f"the response was cut off ({_kind(exc)})") from None
    return bytes(buffer), False


def _decode(data: bytes, response: httpx.Response, truncated: bool) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    # A cut can split a multi-byte character: drop the half character, not the text.
    return text.rstrip("\ufffd") if truncated else text


def _query_params(args: Mapping[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    """Arguments as query pairs: lists repeat the key, objects travel as JSON text."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in args.items():
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is None:
                continue
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            elif isinstance(item, dict | list):
                pairs.append((key, json.dumps(item, ensure_ascii=False)))
            else:
                pairs.append((key, str(item)))
    return pairs


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, _REDACTED) if secret else text


def _redact_json(value: Any, secret: str) -> Any:
    # The text was already scrubbed; this catches a token the JSON had escaped ("\/").
    if not secret:
        return value
    if isinstance(value, str):
        return _redact(value, secret)
    if isinstance(value, dict):
        return {_redact(str(k), secret): _redact_json(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_json(v, secret) for v in value]
    return value


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: exception chains can loop
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _kind(exc: BaseException) -> str:
    # Only the exception's class: its text may hold the URL with the caller's arguments.
    return type(exc).__name__


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
