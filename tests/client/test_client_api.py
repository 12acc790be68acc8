"""Every ``TalkieClient`` method against the real server, and how its errors come back."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from client_harness import ASTRONAUT, TURN_TEXT, ThreadedServer, offer_sdp
from PIL import Image

from talkie.client import Character, TalkieApiError, TalkieClient
from talkie.errors import TalkieError

UI_TOOL = {"name": "show_map", "description": "Show a map of a place", "kind": "ui"}


def _api_error(excinfo: pytest.ExceptionInfo[TalkieApiError], status: int, code: str) -> str:
    err = excinfo.value
    assert (err.status, err.code) == (status, code), str(err)
    assert "\n" not in str(err) and err.message in str(err)
    return err.message


def test_health_and_version(client: TalkieClient) -> None:
    health = client.health()
    assert health.status == "ok" and health.max_sessions >= 1 and health.sessions >= 0
    version = client.version()
    assert version.api == "v1" and version.version == health.version
    assert version.schema_version >= 1


def test_character_lifecycle(client: TalkieClient) -> None:
    created = client.characters.create(
        ASTRONAUT, name="Zoë", system_prompt="You are Zoë, a pilot.", greeting="Salut !",
        knowledge="Zoë flies gliders.\nShe lives in Lyon.", language="fr", voice="espeak:fr",
        tools=[UI_TOOL],
    )  # fmt: skip
    assert created.id.startswith("ch_") and created.name == "Zoë" and not created.sample
    assert (created.language, created.voice, created.greeting) == ("fr", "espeak:fr", "Salut !")
    assert created.knowledge.startswith("Zoë flies") and created.rig_source
    assert created.tools[0]["name"] == "show_map" and isinstance(created.tools, tuple)
    assert created.created_at.tzinfo is not None
    assert abs((created.created_at - datetime.now(UTC)).total_seconds()) < 60
    with pytest.raises(AttributeError):  # frozen
        created.name = "x"  # type: ignore[misc]

    assert client.characters.get(created.id) == created
    updated = client.characters.update(created.id, greeting="Bonjour !", tools=[])
    assert updated.greeting == "Bonjour !" and updated.tools == () and updated.name == "Zoë"
    assert updated.updated_at >= created.updated_at
    # None leaves a field as it is
    assert client.characters.update(created.id, name=None).greeting == "Bonjour !"

    jpeg = client.characters.preview(created.id)
    assert jpeg[:2] == b"\xff\xd8" and Image.open(io.BytesIO(jpeg)).size == (640, 360)

    client.characters.delete(created.id)
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.get(created.id)
    assert created.id in _api_error(excinfo, 404, "unknown_character")
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.delete(created.id)
    _api_error(excinfo, 404, "unknown_character")


def test_create_from_bytes_with_defaults(client: TalkieClient) -> None:
    created = client.characters.create(ASTRONAUT.read_bytes())
    try:
        assert created.name and created.greeting and created.system_prompt  # server defaults
        assert created.voice == "piper" and created.tools == ()
    finally:
        client.characters.delete(created.id)


def test_list_pages_and_iterate(client: TalkieClient, character: Character) -> None:
    first = client.characters.list(limit=1)
    assert len(first.characters) == 1 and first.characters[0].sample  # samples come first
    assert first.next_cursor
    second = client.characters.list(limit=1, cursor=first.next_cursor)
    assert second.characters[0].id != first.characters[0].id
    everyone = list(client.characters.iter_all(page_size=1))
    ids = [c.id for c in everyone]
    assert ids[0] == first.characters[0].id and character.id in ids
    assert len(ids) == len(set(ids))
    assert ids == [c.id for c in client.characters.iter_all()]


def test_rerig_from_points(client: TalkieClient) -> None:
    from talkie.media.image import load_image
    from talkie.rig import build_rig
    from talkie.rig.manual import points_of_rig

    points = points_of_rig(build_rig(load_image(ASTRONAUT)))
    created = client.characters.create(ASTRONAUT, name="Manual")
    try:
        rigged = client.characters.rerig(created.id, points)
        assert rigged.id == created.id and rigged.rig_source != created.rig_source
        with pytest.raises(TalkieApiError) as excinfo:
            client.characters.rerig(created.id, {"left_eye": (1, 2)})
        assert "left_eye" in _api_error(excinfo, 422, "bad_points")
        with pytest.raises(TalkieApiError) as excinfo:
            client.characters.rerig(created.id, {})
        assert "points" in _api_error(excinfo, 400, "invalid_request")
    finally:
        client.characters.delete(created.id)


def test_session_lifecycle(client: TalkieClient, character: Character) -> None:
    created = client.sessions.create(character.id, end_user_id="user-42")
    session = created.session
    assert session.id.startswith("se_") and session.status == "pending"
    assert (session.character_id, session.end_user_id, session.turns) == (
        character.id,
        "user-42",
        0,
    )
    assert created.token.startswith("st_") and created.token not in repr(created)
    assert created.offer_url == f"/v1/sessions/{session.id}/offer"
    assert created.token_expires_at > datetime.now(UTC)

    assert session.id in [s.id for s in client.sessions.list(status="pending").sessions]
    assert session.id in [s.id for s in client.sessions.list(status="active").sessions]
    mine = client.sessions.list(character_id=character.id, limit=200).sessions
    assert session.id in [s.id for s in mine] and {s.character_id for s in mine} == {character.id}

    with pytest.raises(TalkieApiError) as excinfo:
        client.sessions.offer(session.id, "not an sdp", created.token)
    assert "SDP" in _api_error(excinfo, 400, "invalid_input")

    answer = client.sessions.offer(session.id, offer_sdp(), created.token)
    assert answer.session_id == session.id and answer.type == "answer"
    assert answer.sdp.startswith("v=0")
    assert client.sessions.get(session.id).status == "live"
    with pytest.raises(TalkieApiError) as excinfo:  # one offer per session
        client.sessions.offer(session.id, offer_sdp(), created.token)
    _api_error(excinfo, 409, "session_live")

    # TinyConversation reports one turn at once; the server writes it on its writer thread.
    deadline = time.monotonic() + 10
    while not (transcript := client.sessions.transcript(session.id)).lines:
        assert time.monotonic() < deadline, "the turn never reached the transcript"
        time.sleep(0.05)
    assert transcript.session_id == session.id
    assert [(x.speaker, x.text) for x in transcript.lines] == [
        ("user", TURN_TEXT[0]), ("character", TURN_TEXT[1]),
    ]  # fmt: skip
    assert transcript.lines[0].typed and not transcript.lines[1].interrupted
    traces = client.sessions.traces(session.id)
    assert [t.turn for t in traces.turns] == [1]
    assert traces.turns[0].latency == pytest.approx(0.42)
    assert traces.turns[0].marks["answer_start"] == pytest.approx(1.42)

    ended = client.sessions.end(session.id)
    assert ended.status == "ended" and ended.end_reason and ended.ended_at is not None
    assert client.sessions.end(session.id).ended_at == ended.ended_at  # ending again: no change
    assert session.id in [s.id for s in client.sessions.list(status="ended").sessions]
    assert session.id not in [s.id for s in client.sessions.list(status="active").sessions]


def test_session_token_reads_only_its_own_session(
    server: ThreadedServer, client: TalkieClient, character: Character
) -> None:
    created = client.sessions.create(character.id)
    other = client.sessions.create(character.id)
    with TalkieClient(server.url, api_key=created.token) as browser:
        assert browser.sessions.get(created.session.id).id == created.session.id
        assert browser.sessions.transcript(created.session.id).lines == ()
        with pytest.raises(TalkieApiError) as excinfo:
            browser.sessions.get(other.session.id)
        _api_error(excinfo, 403, "forbidden")
        assert browser.sessions.end(created.session.id).status == "ended"
    client.sessions.end(other.session.id)


def test_keys(server: ThreadedServer, client: TalkieClient, character: Character) -> None:
    made = client.keys.create("ci bot", ["sessions"], tenant="admin")  # the operator's tenant
    key = made.key
    assert made.secret.startswith(f"tk_{key.id}_") and made.secret not in repr(made)
    assert (key.name, key.kind, key.scopes, key.tenant, key.revoked) == (
        "ci bot",
        "secret",
        ("sessions",),
        "admin",
        False,
    )
    listed = {k.id: k for k in client.keys.list()}
    assert listed[key.id] == key and client.key_id in listed

    with TalkieClient(server.url, api_key=made.secret) as bot:
        assert bot.key_id == key.id
        bot.sessions.list(limit=1)
        assert bot.characters.get(character.id).id == character.id  # sessions may read characters
        with pytest.raises(TalkieApiError) as excinfo:
            bot.characters.create(ASTRONAUT)
        assert key.id in _api_error(excinfo, 403, "forbidden")
        with pytest.raises(TalkieApiError) as excinfo:
            bot.keys.list()
        _api_error(excinfo, 403, "forbidden")

        revoked = client.keys.revoke(key.id)
        assert revoked.id == key.id and revoked.revoked
        with pytest.raises(TalkieApiError) as excinfo:
            bot.sessions.list()
        _api_error(excinfo, 401, "revoked_key")
        assert made.secret not in str(excinfo.value) and made.secret not in repr(bot)

    page = client.keys.create("widget", "sessions", publishable=True, origins=["https://Ex.org/"])
    assert page.key.kind == "publishable" and page.key.origins == ("https://ex.org",)
    assert page.secret.startswith("pk_")
    client.keys.revoke(page.key.id)
    with pytest.raises(TalkieApiError) as excinfo:
        client.keys.create("widget", ["sessions"], publishable=True)
    assert "origins" in _api_error(excinfo, 400, "origins_required")
    with pytest.raises(TalkieApiError) as excinfo:
        client.keys.revoke(client.key_id or "")
    _api_error(excinfo, 409, "own_key")
    with pytest.raises(TalkieApiError) as excinfo:
        client.keys.revoke("nope")
    _api_error(excinfo, 404, "unknown_key")


def test_error_mapping(server: ThreadedServer, client: TalkieClient, character: Character) -> None:
    with TalkieClient(server.url) as anonymous:  # no key anywhere: data dir is empty
        assert anonymous.key_id is None
        assert anonymous.health().status == "ok"  # needs no key
        with pytest.raises(TalkieApiError) as excinfo:
            anonymous.characters.list()
        assert "TALKIE_API_KEY" in _api_error(excinfo, 401, "unauthorized")
    with TalkieClient(server.url, api_key="tk_000000000000_wrong") as wrong:
        with pytest.raises(TalkieApiError) as excinfo:
            wrong.characters.list()
        _api_error(excinfo, 401, "invalid_key")

    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.update(character.id, name="x" * 300)
    assert "name" in _api_error(excinfo, 400, "invalid_request")
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.create(ASTRONAUT, voice="nonsense voice")
    assert "voice" in _api_error(excinfo, 400, "invalid_field")
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.create(b"hello, not an image")
    assert "image" in _api_error(excinfo, 415, "not_an_image")
    with pytest.raises(TalkieApiError) as excinfo:
        client.sessions.create("nobody")
    _api_error(excinfo, 404, "unknown_character")
    with pytest.raises(TalkieApiError) as excinfo:
        client.sessions.get("se_nothing")
    _api_error(excinfo, 404, "unknown_session")
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.update("astronaut", name="Mine now")
    _api_error(excinfo, 403, "read_only")
    # an id is one path segment: "../keys" cannot reach another route
    with pytest.raises(TalkieApiError) as excinfo:
        client.characters.get("../keys")
    _api_error(excinfo, 404, "not_found")


def test_local_file_errors(client: TalkieClient, tmp_path: Path) -> None:
    with pytest.raises(TalkieError, match="cannot read the image"):
        client.characters.create(tmp_path / "missing.jpg")
    with pytest.raises(TypeError, match="mood"):
        client.characters.update("ch_x", mood="happy")  # type: ignore[call-arg]
    with pytest.raises(TalkieError, match="points.chin"):
        client.characters.rerig("ch_x", {"chin": (1, 2, 3)})
    with pytest.raises(TalkieError, match="give an id"):
        client.sessions.get(" ")
