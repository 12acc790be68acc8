"""Hostile request bodies over real HTTP (raw sockets, so nothing is buffered on the client side):
huge declared or chunked bodies and slow trickles, with and without a key. Every one is refused
(401 without a key, before the body is read; 413 at the route's limit; 408 for a trickle), the
server never reads much more than the limit, and its memory stays flat: RSS is measured before
and after 50 hostile requests (sizes, not timings)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hostile_http import MIB, Outcome, hostile, rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402
from talkie.server.guard import CHARACTER_UPDATE_LIMIT, JSON_BODY_LIMIT, OFFER_BODY_LIMIT  # noqa: E402
from talkie.server.uploads import upload_body_limit  # noqa: E402

UPLOAD_LIMIT = 2 * MIB
# What the kernel's socket buffers on both sides hold before a sender notices a refusal: bytes
# sent by the client but never read by the server.
IN_FLIGHT = 16 * MIB
RSS_BOUND_MB = 50.0


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    options = ServerOptions(
        max_upload_bytes=UPLOAD_LIMIT, body_timeout=1.0, request_burst=10_000,
        requests_per_minute=100_000,
    )  # fmt: skip
    with LiveServer(options=options, conversation_factory=FakeConversation) as live:
        yield live


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _session_token(server: LiveServer) -> tuple[str, str]:
    with server.admin() as admin:
        created = admin.post("/v1/sessions", json={"character_id": "astronaut"}).json()
    return created["session"]["id"], created["token"]


# (method, path, limit of the route): the JSON, upload and offer routes
def _targets(session_id: str) -> list[tuple[str, str, int]]:
    return [
        ("POST", "/v1/sessions", JSON_BODY_LIMIT),
        ("PATCH", "/v1/characters/astronaut", CHARACTER_UPDATE_LIMIT),
        ("POST", f"/v1/sessions/{session_id}/offer", OFFER_BODY_LIMIT),
        ("POST", "/v1/characters", upload_body_limit(UPLOAD_LIMIT)),
        ("POST", "/v1/keys", JSON_BODY_LIMIT),
    ]


def _fifty(port: int, headers: dict[str, str], session_id: str) -> list[tuple[str, int, Outcome]]:
    """50 hostile requests: 200 MB and 60 MB chunked bodies, 200 MB declared lengths."""
    results = []
    for round_ in range(10):
        for method, path, limit in _targets(session_id):
            size = 200 * MIB if round_ % 2 == 0 else 60 * MIB
            chunked = round_ % 3 != 2  # every third round declares its length instead
            outcome = hostile(port, method, path, headers=headers, total=size, chunked=chunked)
            results.append((f"{method} {path} {'chunked' if chunked else 'declared'}", limit,
                            outcome))  # fmt: skip
    assert len(results) == 50
    return results


def test_without_a_key_nothing_is_read_and_memory_stays_flat(server: LiveServer) -> None:
    session_id, _ = _session_token(server)
    before = rss_mb()
    results = _fifty(_port(server), {}, session_id)
    after = rss_mb()
    print(f"no key: RSS {before:.0f} MB -> {after:.0f} MB after 50 hostile requests "
          f"({after - before:+.1f} MB); most body bytes sent before the 401: "
          f"{max(o.sent for _, _, o in results) / MIB:.0f} MiB")  # fmt: skip
    for label, _, outcome in results:
        assert outcome.status == 401, (label, outcome)
        assert outcome.sent <= IN_FLIGHT, (label, outcome)  # answered before the body was read
    assert after - before < RSS_BOUND_MB


def test_with_a_key_bodies_stop_at_the_routes_limit(server: LiveServer) -> None:
    session_id, token = _session_token(server)
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    before = rss_mb()
    results = _fifty(_port(server), admin, session_id)
    # the offer with its own session token, as the page sends it
    results += [("offer with token", OFFER_BODY_LIMIT, hostile(
        _port(server), "POST", f"/v1/sessions/{session_id}/offer",
        headers={"Authorization": f"Bearer {token}"}, total=60 * MIB,
    ))]  # fmt: skip
    after = rss_mb()
    print(f"admin key: RSS {before:.0f} MB -> {after:.0f} MB after 51 hostile requests "
          f"({after - before:+.1f} MB)")  # fmt: skip
    for label, limit, outcome in results:
        assert outcome.status == 413, (label, outcome)
        assert outcome.sent <= limit + IN_FLIGHT, (label, outcome)
    assert after - before < RSS_BOUND_MB
    with server.admin() as http:  # the server is fine, and nothing was changed
        assert http.get("/v1/health").json()["status"] == "ok"
        assert http.get("/v1/characters/astronaut").json()["name"] != "x"


def test_slow_trickles_are_cut_and_do_not_block_others(server: LiveServer) -> None:
    """Ten bodies trickling in at 1 KiB every 0.2 s: without a key, 401 at once; with a key, 408
    when the body's time is up (1 s + 1 s per 64 KiB, here). Meanwhile others are served."""
    port = _port(server)
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    outcomes: dict[str, list[Outcome]] = {"none": [], "key": []}

    def trickle(kind: str) -> None:
        headers = admin if kind == "key" else {}
        outcome = hostile(port, "POST", "/v1/sessions", headers=headers, total=MIB,
                          piece=1024, pause=0.2)  # fmt: skip
        outcomes[kind].append(outcome)

    threads = [threading.Thread(target=trickle, args=(k,)) for k in ["none", "key"] * 5]
    before = rss_mb()
    for t in threads:
        t.start()
    time.sleep(0.5)
    health = httpx.get(server.url + "/v1/health", timeout=5)  # served while they trickle
    for t in threads:
        t.join(60)
    after = rss_mb()
    print(f"trickles: RSS {before:.0f} -> {after:.0f} MB; statuses "
          f"{[o.status for o in outcomes['none']]} / {[o.status for o in outcomes['key']]}")
    assert health.status_code == 200
    assert [o.status for o in outcomes["none"]] == [401] * 5
    assert all(o.sent <= 2 * 1024 for o in outcomes["none"])  # refused on the headers alone
    assert [o.status for o in outcomes["key"]] == [408] * 5
    assert all(o.sent < 64 * 1024 for o in outcomes["key"])  # never reached the size limit
    assert after - before < RSS_BOUND_MB


def test_refusals_are_json_and_name_the_limit(server: LiveServer) -> None:
    with server.admin() as admin:
        r = admin.post("/v1/sessions", content=b"{" + b" " * (JSON_BODY_LIMIT + 1) + b"}",
                       headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        assert "64 KiB" in r.json()["error"]["message"]
        r = httpx.post(server.url + "/v1/sessions", json={"character_id": "astronaut"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        # health and version stay open, and a normal request still works
        assert httpx.get(server.url + "/v1/version").status_code == 200
        assert admin.post("/v1/sessions", json={"character_id": "astronaut"}).status_code == 201
