"""Ownership over real HTTP: one table of every /v1 route against five callers — the admin key,
two secret keys of two tenants (alpha, beta), and a publishable key of each (beta's limited to
one character) — with the status each must get (2xx, 403 for what the key's kind or scopes never
allow, 404 for what belongs to someone else). Then what the listings show each of them, and the
migration that gives existing data to the admin."""

from __future__ import annotations

import itertools
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from client_harness import offer_sdp  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402
from talkie.store import Store  # noqa: E402
from talkie.transport.webrtc import WebRtcOptions  # noqa: E402

CALLERS = ("admin", "A", "B", "PA", "PB")
ORIGINS = {"PA": "https://alpha.example", "PB": "https://beta.example"}
_ids = itertools.count()
DOCUMENT: dict[str, Any] = {
    "content": b"# Hours\nOpen nine to five.", "headers": {"content-type": "text/plain"}
}


@dataclass
class World:
    server: LiveServer
    keys: dict[str, str]
    image: bytes
    points: dict[str, Any]
    offer_sdp: str
    ids: dict[str, str]  # chA, chB, chB2 (beta's, not in PB's list), sA (alpha's session)

    def client(self, who: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        if who in ORIGINS:
            headers["Origin"] = ORIGINS[who]
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client(who) as http:
            return http.request(method, path, **kwargs)

    # fresh resources for the routes that destroy or use them up (made by their owner)

    def character(self, owner: str = "A", name: str = "Fresh") -> str:
        r = self.call(owner, "POST", f"/v1/characters?name={name}", content=self.image,
                      headers={"content-type": "image/png"})  # fmt: skip
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def session(self, owner: str = "A") -> str:
        r = self.call(owner, "POST", "/v1/sessions", json={"character_id": self.ids["chA"]})
        assert r.status_code == 201, r.text
        return str(r.json()["session"]["id"])

    def document(self, owner: str = "A") -> str:
        doc = f"doc{next(_ids)}"
        r = self.call(owner, "PUT", f"/v1/characters/{self.ids['chA']}/documents/{doc}",
                      **DOCUMENT)  # fmt: skip
        assert r.status_code == 200, r.text
        return doc

    def memory(self) -> str:
        user = f"user{next(_ids)}"
        store = self.server.app.state.services.store
        store.put_memory(self.ids["chA"], user, "likes tea")
        return user

    def key(self) -> str:
        r = self.call("admin", "POST", "/v1/keys", json={"name": "spare", "scopes": ["sessions"]})
        assert r.status_code == 201, r.text
        return str(r.json()["key"]["id"])


@pytest.fixture(scope="module")
def world(face_png: bytes) -> Iterator[World]:
    from talkie.media.image import decode_image_bytes
    from talkie.rig import build_rig
    from talkie.rig.manual import points_of_rig

    options = ServerOptions(
        max_sessions=20, request_burst=10_000, requests_per_minute=100_000,
        webrtc=WebRtcOptions(connect_timeout=2.0),
    )  # fmt: skip
    rig = build_rig(decode_image_bytes(face_png, name="face"))
    points = {k: {"x": x, "y": y} for k, (x, y) in points_of_rig(rig).items()}
    with LiveServer(options=options, conversation_factory=FakeConversation) as server:
        keys = {"admin": server.admin_key}
        world = World(server, keys, face_png, points, offer_sdp(), {})

        def key(**body: Any) -> str:
            r = world.call("admin", "POST", "/v1/keys", json={"name": "k", **body})
            assert r.status_code == 201, r.text
            return str(r.json()["secret"])

        keys["A"] = key(scopes=["characters", "sessions"], tenant="alpha")
        keys["B"] = key(scopes=["characters", "sessions"], tenant="beta")
        world.ids["chA"] = world.character("A", "Alpha")
        world.ids["chB"] = world.character("B", "Beta")
        world.ids["chB2"] = world.character("B", "Beta2")
        keys["PA"] = key(scopes=["characters", "sessions"], tenant="alpha", publishable=True,
                         origins=[ORIGINS["PA"]])  # fmt: skip
        keys["PB"] = key(scopes=["sessions"], tenant="beta", publishable=True,
                         origins=[ORIGINS["PB"]], characters=[world.ids["chB"]])  # fmt: skip
        world.ids["sA"] = world.session("A")
        yield world


# (route, method, path (may build a fresh resource: ``w`` is the World), body, expected status
# for admin, A, B, PA, PB). A = alpha's secret key, B = beta's; PA = alpha's publishable key
# (characters + sessions), PB = beta's publishable key, limited to chB. Targets are alpha's.
Path_ = Callable[["World"], str]
ROWS: list[tuple[str, str, Path_, Any, tuple[int, int, int, int, int]]] = [
    ("list characters", "GET", lambda w: "/v1/characters", None, (200, 200, 200, 200, 200)),
    ("create character", "POST", lambda w: "/v1/characters?name=New", "image",
     (201, 201, 201, 201, 403)),  # PB is limited to its character: it cannot add others
    ("get character", "GET", lambda w: f"/v1/characters/{w.ids['chA']}", None,
     (200, 200, 404, 200, 404)),
    ("preview", "GET", lambda w: f"/v1/characters/{w.ids['chA']}/preview.jpg", None,
     (200, 200, 404, 200, 404)),
    ("update character", "PATCH", lambda w: f"/v1/characters/{w.ids['chA']}",
     {"greeting": "Hello there!"}, (200, 200, 404, 403, 403)),
    # A page's key may place the points of its own drawings (the point editor): so for a
    # publishable key the answer is about the character (403: a detected face; 404: not its).
    ("re-rig", "PUT", lambda w: f"/v1/characters/{w.ids['chA']}/rig", "points",
     (200, 200, 404, 403, 404)),
    ("delete character", "DELETE", lambda w: f"/v1/characters/{w.character()}", None,
     (204, 204, 404, 403, 403)),
    ("kill switch", "DELETE", lambda w: f"/v1/characters/{w.character()}/sessions", None,
     (200, 403, 403, 403, 403)),
    ("put document", "PUT", lambda w: f"/v1/characters/{w.ids['chA']}/documents/d1", "doc",
     (200, 200, 404, 403, 403)),
    ("list documents", "GET", lambda w: f"/v1/characters/{w.ids['chA']}/documents", None,
     (200, 200, 404, 200, 404)),
    ("search", "GET", lambda w: f"/v1/characters/{w.ids['chA']}/search?q=hours", None,
     (200, 200, 404, 200, 404)),
    ("delete document", "DELETE",
     lambda w: f"/v1/characters/{w.ids['chA']}/documents/{w.document()}", None,
     (204, 204, 404, 403, 403)),
    ("get memory", "GET", lambda w: f"/v1/characters/{w.ids['chA']}/memories/{w.memory()}",
     None, (200, 200, 404, 403, 403)),
    ("forget memory", "DELETE",
     lambda w: f"/v1/characters/{w.ids['chA']}/memories/{w.memory()}", None,
     (204, 204, 404, 403, 403)),
    ("forget end user everywhere", "DELETE", lambda w: f"/v1/end-users/{w.memory()}/memories",
     None, (200, 200, 200, 403, 403)),  # B's call forgets nothing of alpha's (checked below)
    ("create session (alpha's character)", "POST", lambda w: "/v1/sessions", "chA",
     (201, 201, 404, 201, 404)),
    ("create session (beta's, PB's own)", "POST", lambda w: "/v1/sessions", "chB",
     (201, 404, 201, 404, 201)),
    ("create session (beta's, not PB's)", "POST", lambda w: "/v1/sessions", "chB2",
     (201, 404, 201, 404, 404)),
    ("list sessions", "GET", lambda w: "/v1/sessions", None, (200, 200, 200, 403, 403)),
    ("get session", "GET", lambda w: f"/v1/sessions/{w.ids['sA']}", None,
     (200, 200, 404, 403, 403)),
    ("transcript", "GET", lambda w: f"/v1/sessions/{w.ids['sA']}/transcript", None,
     (200, 200, 404, 403, 403)),
    ("traces", "GET", lambda w: f"/v1/sessions/{w.ids['sA']}/traces", None,
     (200, 200, 404, 403, 403)),
    ("send offer", "POST", lambda w: f"/v1/sessions/{w.session()}/offer", "offer",
     (200, 200, 404, 403, 403)),  # a page sends it with the session's token (test_api_auth)
    ("end session", "DELETE", lambda w: f"/v1/sessions/{w.session()}", None,
     (200, 200, 404, 403, 403)),
    ("list keys", "GET", lambda w: "/v1/keys", None, (200, 403, 403, 403, 403)),
    ("create key", "POST", lambda w: "/v1/keys", {"name": "x", "scopes": ["sessions"]},
     (201, 403, 403, 403, 403)),
    ("revoke key", "DELETE", lambda w: f"/v1/keys/{w.key()}", None, (200, 403, 403, 403, 403)),
]  # fmt: skip


def _request(world: World, body: Any) -> dict[str, Any]:
    if body == "image":
        return {"content": world.image, "headers": {"content-type": "image/png"}}
    if body == "points":
        return {"json": {"points": world.points}}
    if body == "doc":
        return DOCUMENT
    if body == "offer":
        return {"json": {"sdp": world.offer_sdp, "type": "offer"}}
    if body in ("chA", "chB", "chB2"):
        return {"json": {"character_id": world.ids[body]}}
    return {} if body is None else {"json": body}


def test_ownership_matrix(world: World) -> None:
    table = []
    mismatches = []
    for label, method, path, body, expected in ROWS:
        got = []
        for who, want in zip(CALLERS, expected, strict=True):
            r = world.call(who, method, path(world), **_request(world, body))
            got.append(r.status_code)
            if r.status_code != want:
                mismatches.append((label, who, want, r.status_code, r.text[:200]))
            if r.status_code in (403, 404):  # refusals are the JSON error, never a leak
                assert r.json()["error"]["code"], r.text
        table.append((label, method, got))
    width = max(len(label) for label, _, _ in table)
    print("\n" + " " * (width + 8) + "  ".join(f"{c:>5}" for c in CALLERS))
    for label, method, got in table:
        print(f"{label:<{width}} {method:<7}" + "  ".join(f"{s:>5}" for s in got))
    assert not mismatches, mismatches


def test_listings_show_each_caller_only_its_own(world: World) -> None:
    def characters(who: str) -> set[str]:
        return {c["id"] for c in world.call(who, "GET", "/v1/characters?limit=100").json()[
            "characters"]}  # fmt: skip

    ids = world.ids
    everything = characters("admin")
    assert {ids["chA"], ids["chB"], ids["chB2"], "astronaut"} <= everything
    assert ids["chA"] in characters("A") and ids["chA"] in characters("PA")
    assert not characters("A") & {ids["chB"], ids["chB2"], "astronaut"}
    assert not characters("B") & {ids["chA"], "astronaut"}
    assert characters("PB") == {ids["chB"]}  # only the character it is limited to
    tenants = {c["tenant"] for c in world.call("A", "GET", "/v1/characters?limit=100").json()[
        "characters"]}  # fmt: skip
    assert tenants == {"alpha"}

    def sessions(who: str) -> list[dict[str, Any]]:
        return list(world.call(who, "GET", "/v1/sessions?limit=200").json()["sessions"])

    assert {s["tenant"] for s in sessions("A")} == {"alpha"}
    assert {s["tenant"] for s in sessions("B")} == {"beta"}
    assert {"alpha", "beta"} <= {s["tenant"] for s in sessions("admin")}
    assert ids["sA"] not in {s["id"] for s in sessions("B")}


def test_forgetting_an_end_user_stays_within_the_tenant(world: World) -> None:
    user = world.memory()
    r = world.call("B", "DELETE", f"/v1/end-users/{user}/memories")
    assert r.status_code == 200 and r.json()["deleted"] == 0
    kept = world.call("A", "GET", f"/v1/characters/{world.ids['chA']}/memories/{user}")
    assert kept.status_code == 200
    r = world.call("A", "DELETE", f"/v1/end-users/{user}/memories")
    assert r.json()["deleted"] == 1


def test_keys_are_created_for_a_tenant(world: World) -> None:
    def create(**body: Any) -> httpx.Response:
        return world.call("admin", "POST", "/v1/keys", json={"name": "k", **body})

    plain = create(scopes=["characters"]).json()["key"]
    assert plain["tenant"] == plain["id"]  # a new tenant of its own: it sees nothing yet
    assert create(scopes=["admin"]).json()["key"]["tenant"] == "admin"
    for body, field in [
        ({"scopes": ["admin"], "tenant": "alpha"}, "tenant"),
        ({"scopes": ["sessions"], "tenant": "bad tenant!"}, "tenant"),
        ({"scopes": ["sessions"], "characters": [world.ids["chA"]]}, "characters"),  # secret
        ({"scopes": ["sessions"], "publishable": True, "origins": ["https://x.example"],
          "tenant": "beta", "characters": [world.ids["chA"]]}, "characters"),  # not beta's
        ({"scopes": ["sessions"], "publishable": True, "origins": ["https://x.example"],
          "tenant": "beta", "characters": ["ch_nope"]}, "characters"),
    ]:  # fmt: skip
        r = create(**body)
        assert r.status_code == 400 and field in r.json()["error"]["message"], (body, r.text)


def test_migration_gives_existing_data_to_the_admin(tmp_path: Path) -> None:
    path = tmp_path / "talkie.db"
    Store(f"sqlite:///{path}").close()
    now = time.time()
    with sqlite3.connect(path) as db:  # a version-5 database with data from before ownership
        for table in ("characters", "sessions", "api_keys"):
            db.execute(f"DROP INDEX IF EXISTS ix_{table}_tenant")
            db.execute(f"ALTER TABLE {table} DROP COLUMN tenant")
        db.execute("ALTER TABLE api_keys DROP COLUMN characters")
        db.execute("DELETE FROM schema_migrations WHERE version >= 6")
        db.execute(
            "INSERT INTO characters (id, name, system_prompt, greeting, knowledge, language, "
            "voice, tools, image_sha, rig_sha, rig_source, sample, owner_key, disabled, "
            "guardrails, created_at, updated_at) VALUES ('ch_old', 'Old', '', '', '', 'en', "
            f"'piper', '[]', 'x', 'y', 'detected', 0, 'k_shop', 0, '{{}}', {now}, {now})"
        )
        db.execute(
            "INSERT INTO sessions (id, character_id, key_id, status, created_at, turns, "
            f"remember) VALUES ('se_old', 'ch_old', 'k_shop', 'ended', {now}, 0, 0)"
        )
        for key_id, scopes, builtin in [("k_admin", "admin", 0), ("k_shop", "characters", 0),
                                        ("k_page", "sessions", 1)]:  # fmt: skip
            db.execute(
                "INSERT INTO api_keys (id, name, kind, secret_hash, scopes, origins, builtin, "
                f"created_at) VALUES ('{key_id}', 'n', 'secret', 'h', '{scopes}', '[]', "
                f"{builtin}, {now})"
            )
    store = Store(f"sqlite:///{path}")
    try:
        character, session = store.get_character("ch_old"), store.get_session("se_old")
        assert character is not None and character.tenant == "admin"
        assert session is not None and session.tenant == "admin"
        tenants = {k.id: k.tenant for k in store.list_keys()}
        assert tenants == {"k_admin": "admin", "k_shop": "k_shop", "k_page": "admin"}
        assert store.list_characters(limit=10, tenant="k_shop").items == []
    finally:
        store.close()
