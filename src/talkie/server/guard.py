"""No request costs memory before it is authorised: the first thing every request meets.

``RequestGuard`` is ASGI middleware in front of the routes. From the request line and headers
alone it

1. authenticates the caller (``context.identify``: 401/403/429) for every ``/v1`` path except
   the public ones, BEFORE a byte of the body is read (FastAPI reads and parses a JSON body
   before it resolves any dependency, so the check cannot live in a dependency alone);
2. refuses a declared ``Content-Length`` above the route's limit (413) at once;
3. counts the body while the route reads it and stops at the limit (413), so a chunked body
   that never declared its size is cut too, never buffered whole;
4. bounds the time the body may take to arrive (408): a slow trickle cannot hold a request
   open for long.

Refusals before the body is read close the connection (``Connection: close``): the server does
not go on reading, even to discard, what a refused client keeps sending. Limits are per route:
JSON bodies are small; uploads, knowledge documents and WebRTC offers have their own.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from talkie.brain.kb import MAX_DOCUMENT_BYTES
from talkie.server.context import Services, identify
from talkie.server.errors import ApiError, error_response
from talkie.server.uploads import SAMPLE_BODY_LIMIT, upload_body_limit

KIB = 1024
MIB = 1024 * KIB
JSON_BODY_LIMIT = 64 * KIB  # every JSON body not listed below (sessions, keys, rigs...)
CHAT_BODY_LIMIT = 1024 * KIB  # a text chat's history (the server folds long ones anyway)
CHARACTER_UPDATE_LIMIT = 8 * MIB  # knowledge text (1M characters), persona, 32 tools
OFFER_BODY_LIMIT = 512 * KIB  # an SDP offer of up to 100,000 characters, JSON-escaped
MIN_BODY_RATE = 64 * KIB  # bytes per second a body must keep up after the grace time
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/version"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, message: str = "") -> None:
        super().__init__(
            413, message or f"the request body is larger than this endpoint accepts "
            f"({_size(limit)})",
        )  # fmt: skip
        self.limit = limit


class BodyTooSlow(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"the request body did not arrive within {seconds:.0f} s; send it faster"
        )


_SAMPLE_TOO_LARGE = "sample: at most 20 MB (30 s of speech is plenty)"
_CHAT_TOO_LARGE = "the chat is larger than 1 MiB: send only the recent messages"


@dataclass(frozen=True)
class BodyRule:
    method: str
    path: re.Pattern[str]
    limit: int
    message: str = ""  # what to tell the user when the body is larger


def body_rules(*, max_upload_bytes: int) -> tuple[BodyRule, ...]:
    """The routes whose bodies may be larger than ``JSON_BODY_LIMIT``."""

    def rule(method: str, template: str, limit: int, message: str = "") -> BodyRule:
        pattern = re.escape(template).replace(r"\{id\}", "[^/]+")
        return BodyRule(method, re.compile(f"^{pattern}$"), limit, message)

    photo = (
        f"the photo is too large (the limit is {_size(max_upload_bytes)}); "
        "save it as a smaller JPEG"
    )
    return (
        rule("POST", "/v1/characters", upload_body_limit(max_upload_bytes), photo),
        rule("PATCH", "/v1/characters/{id}", CHARACTER_UPDATE_LIMIT),
        rule("PUT", "/v1/characters/{id}/documents/{id}", MAX_DOCUMENT_BYTES),
        rule("POST", "/v1/sessions/{id}/offer", OFFER_BODY_LIMIT),
        rule("POST", "/v1/chat/completions", CHAT_BODY_LIMIT, _CHAT_TOO_LARGE),
        rule("POST", "/v1/voices/match", SAMPLE_BODY_LIMIT, _SAMPLE_TOO_LARGE),
        rule("POST", "/v1/voices/clone", SAMPLE_BODY_LIMIT, _SAMPLE_TOO_LARGE),
    )


class RequestGuard:
    """ASGI middleware: authenticate, then read the body within its size and time limits."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services
        opts = services.options
        self.rules = body_rules(max_upload_bytes=opts.max_upload_bytes)
        self.grace = float(opts.body_timeout)

    def rule_for(self, method: str, path: str) -> BodyRule:
        for rule in self.rules:
            if rule.method == method and rule.path.match(path):
                return rule
        return _DEFAULT_RULE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        rule = self.rule_for(scope["method"], path)
        try:
            if path.startswith("/v1/") and path not in PUBLIC_PATHS:
                scope.setdefault("state", {})["principal"] = await identify(self.services, scope)
            _check_declared_length(scope, rule)
        except ApiError as exc:
            await _refuse(scope, send, exc.status, exc.code, exc.message, exc.headers)
            return
        except BodyTooLarge as exc:
            await _refuse(scope, send, 413, "too_large", str(exc.detail))
            return
        seconds = self.grace + rule.limit / MIN_BODY_RATE
        body = _BoundedBody(receive, rule=rule, seconds=seconds)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body, watch)
        except (BodyTooLarge, BodyTooSlow) as exc:  # a route that let the error escape
            if started:
                raise
            code = "too_large" if isinstance(exc, BodyTooLarge) else "body_timeout"
            await _refuse(scope, send, exc.status_code, code, str(exc.detail))


class _BoundedBody:
    """``receive`` that counts the body and keeps its deadline. Once the body is complete,
    messages pass straight through (a route may wait for the client to disconnect)."""

    def __init__(self, receive: Receive, *, rule: BodyRule, seconds: float) -> None:
        self._receive = receive
        self.rule = rule
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds
        self.received = 0
        self._complete = False

    async def __call__(self) -> Message:
        if self._complete:
            return await self._receive()
        remaining = self._deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(self._receive(), remaining)
        except TimeoutError:
            raise BodyTooSlow(self.seconds) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.rule.limit:
                raise BodyTooLarge(self.rule.limit, self.rule.message)
            self._complete = not message.get("more_body", False)
        else:
            self._complete = True  # disconnected
        return message


_DEFAULT_RULE = BodyRule("", re.compile(""), JSON_BODY_LIMIT)


def _check_declared_length(scope: Scope, rule: BodyRule) -> None:
    declared = Headers(scope=scope).get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise ApiError(400, "bad_length", "the Content-Length header is not a number")
    if int(declared) > rule.limit:
        raise BodyTooLarge(rule.limit, rule.message)


async def _refuse(
    scope: Scope, send: Send, status: int, code: str, message: str,
    headers: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Answer without reading the body, and close the connection after the answer: whatever
    the client still sends is never read."""
    response = error_response(status, code, message, {**(headers or {}), "Connection": "close"})

    async def nothing() -> Any:
        return {"type": "http.disconnect"}

    await response(scope, nothing, send)


def _size(limit: int) -> str:
    if limit >= MIB:
        return f"{limit / MIB:.1f} MiB".replace(".0 ", " ")
    return f"{limit // KIB} KiB"
