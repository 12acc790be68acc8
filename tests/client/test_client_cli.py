"""The `talkie characters|sessions|keys` verbs end to end: `talkie.cli.main` against the real
server, readable output by default, JSON with --json, one-line errors with exit status 2."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from client_harness import ASTRONAUT, ThreadedServer
from PIL import Image

from talkie.cli import main
from talkie.client import Character, TalkieClient


class Cli:
    """Runs ``talkie ...`` in-process against the test server with the admin key."""

    def __init__(self, url: str, key: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.url, self.key, self.capsys = url, key, capsys

    def run(self, *argv: str, key: bool = True, options: bool = True) -> tuple[int, str, str]:
        args = list(argv)
        if options:
            args += ["--url", self.url] + (["--key", self.key] if key else [])
        self.capsys.readouterr()
        try:
            status = main(args)
        except SystemExit as exc:  # argparse's own usage errors
            status = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return status, out, err

    def ok(self, *argv: str) -> str:
        status, out, err = self.run(*argv)
        assert status == 0, err
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self.ok(*argv, "--json"))

    def fails(self, *argv: str, key: bool = True) -> str:
        status, out, err = self.run(*argv, key=key)
        assert status == 2 and out == "", (status, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("talkie: error: "), err
        return lines[0]


@pytest.fixture()
def cli(server: ThreadedServer, admin_key: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(server.url, admin_key, capsys)


def test_characters_verbs(cli: Cli, tmp_path: Path) -> None:
    knowledge = tmp_path / "facts.txt"
    knowledge.write_text("Ada wrote the first program.\n", encoding="utf-8")
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"name": "wave", "description": "Wave", "kind": "ui"}]))
    created = cli.json(
        "characters", "create", "--image", str(ASTRONAUT), "--name", "Ada",
        "--greeting", "Hello!", "--knowledge-file", str(knowledge), "--tools-file", str(tools),
        "--language", "en", "--voice", "espeak:en",
    )  # fmt: skip
    cid = created["id"]
    assert created["name"] == "Ada" and created["knowledge"].startswith("Ada wrote")
    assert created["tools"][0]["name"] == "wave" and created["created_at"].endswith("+00:00")

    listing = cli.ok("characters", "list")
    header, *rows = listing.splitlines()
    assert header.split() == ["ID", "NAME", "LANG", "VOICE", "FACE", "CREATED"]
    assert any(r.startswith(cid) and "Ada" in r for r in rows)
    assert any(r.startswith("astronaut") and "sample" in r for r in rows)
    assert cid in [c["id"] for c in cli.json("characters", "list")]
    assert len(cli.json("characters", "list", "--limit", "1")) == 1

    shown = cli.ok("characters", "get", cid)
    assert f"id:            {cid}" in shown and "tools:         wave" in shown
    assert cli.json("characters", "get", cid)["greeting"] == "Hello!"

    out = cli.ok("characters", "update", cid, "--name", "Ada L.", "--system-prompt", "Be brief.")
    assert out.strip() == f"updated {cid}: name, system prompt"
    assert cli.json("characters", "update", cid, "--greeting", "Hi")["name"] == "Ada L."
    assert "nothing to change" in cli.fails("characters", "update", cid)

    jpeg = tmp_path / "ada.jpg"
    assert cli.ok("characters", "preview", cid, "--out", str(jpeg)).startswith(f"wrote {jpeg}")
    assert Image.open(io.BytesIO(jpeg.read_bytes())).size == (640, 360)
    assert not list(tmp_path.glob("*.part"))
    assert ".jpg" in cli.fails("characters", "preview", cid, "--out", str(tmp_path / "a.png"))

    points = tmp_path / "points.json"
    points.write_text(json.dumps({"points": {"chin": {"x": 5, "y": 6}}}))
    # The server checks the points (all the required ones must be given) and names what is
    # missing; the CLI's own check covers the file's shape.
    assert "HTTP 422 bad_points" in cli.fails("characters", "rig", cid, "--points", str(points))
    points.write_text('{"chin": "here"}')
    assert "'chin' must be [x, y]" in cli.fails("characters", "rig", cid, "--points", str(points))

    assert cli.ok("characters", "delete", cid).strip() == f"deleted {cid}"
    error = cli.fails("characters", "get", cid)
    assert error == f"talkie: error: no character with id '{cid}' (HTTP 404 unknown_character)"


def test_characters_rig(cli: Cli, tmp_path: Path) -> None:
    from talkie.media.image import load_image
    from talkie.rig import build_rig
    from talkie.rig.manual import points_of_rig

    created = cli.json("characters", "create", "--image", str(ASTRONAUT))
    points = tmp_path / "points.json"
    found = points_of_rig(build_rig(load_image(ASTRONAUT)))
    points.write_text(json.dumps({name: list(xy) for name, xy in found.items()}))
    out = cli.ok("characters", "rig", created["id"], "--points", str(points))
    assert out.startswith(f"re-rigged {created['id']} from {len(found)} points")
    cli.ok("characters", "delete", created["id"])


def test_sessions_verbs(
    cli: Cli, server: ThreadedServer, admin_key: str, character: Character
) -> None:
    with TalkieClient(server.url, api_key=admin_key) as client:
        sid = client.sessions.create(character.id).session.id

    listing = cli.ok("sessions", "list", "--status", "pending")
    assert listing.splitlines()[0].split()[:4] == ["ID", "CHARACTER", "STATUS", "TURNS"]
    assert any(r.startswith(sid) and "pending" in r for r in listing.splitlines())
    by_character = cli.json("sessions", "list", "--character", character.id)
    assert sid in [s["id"] for s in by_character]
    assert "status:     pending" in cli.ok("sessions", "get", sid)

    assert cli.ok("sessions", "end", sid).startswith(f"{sid} ended (ended by API key")
    assert cli.json("sessions", "end", sid)["status"] == "ended"
    assert cli.ok("sessions", "transcript", sid).strip() == "nothing was said in this session"
    assert cli.json("sessions", "transcript", sid) == {"session_id": sid, "lines": []}
    assert sid in [s["id"] for s in cli.json("sessions", "list", "--status", "ended")]
    assert "unknown_session" in cli.fails("sessions", "end", "se_nothing")
    status, _, err = cli.run("sessions", "list", "--status", "finished")
    assert status == 2 and "invalid choice" in err  # argparse's own check


def test_keys_verbs(cli: Cli) -> None:
    out = cli.ok("keys", "create", "--name", "deploy bot", "--scope", "characters",
                 "--scope", "sessions")  # fmt: skip
    assert out.startswith("created secret key ") and "scopes: characters, sessions" in out
    secret = next(w for w in out.split() if w.startswith("tk_"))
    key_id = secret.split("_")[1]
    made = cli.json("keys", "create", "--name", "page", "--scope", "sessions", "--publishable",
                    "--origin", "https://example.org")  # fmt: skip
    assert made["secret"].startswith("pk_") and made["key"]["origins"] == ["https://example.org"]

    table = cli.ok("keys", "list")
    assert any(r.startswith(key_id) and "active" in r for r in table.splitlines())
    assert secret not in table
    listed = {k["id"]: k for k in cli.json("keys", "list")}
    assert listed[key_id]["scopes"] == ["characters", "sessions"] and "secret" not in listed[key_id]

    assert cli.ok("keys", "revoke", key_id).strip() == f"revoked key {key_id} (deploy bot)"
    assert cli.json("keys", "revoke", made["key"]["id"])["revoked"] is True
    assert [k["revoked"] for k in cli.json("keys", "list") if k["id"] == key_id] == [True]
    new = ("keys", "create", "--name", "x", "--scope", "sessions")
    assert "--publishable" in cli.fails(*new, "--origin", "https://example.org")
    assert "origins" in cli.fails(*new, "--publishable")  # the server's 400 names the field

    # no key at all (the data folder is empty): the error says how to give one
    assert "TALKIE_API_KEY" in cli.fails("keys", "list", key=False)
    # the revoked key fails, naming its id but never printing the secret
    cli.key = secret
    error = cli.fails("characters", "list")
    assert key_id in error and "revoked" in error and secret not in error


def test_key_and_url_from_the_environment(
    cli: Cli, server: ThreadedServer, admin_key: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("TALKIE_URL", server.url)
    monkeypatch.setenv("TALKIE_DATA_DIR", str(server.data_dir))  # the server's own machine
    assert main(["keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)


def test_server_not_running(cli: Cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli.url = f"http://127.0.0.1:{port}"
    error = cli.fails("characters", "list")
    assert f"not running at http://127.0.0.1:{port}" in error and "talkie serve" in error


def test_local_mistakes_are_one_line(cli: Cli, tmp_path: Path) -> None:
    assert "no such image" in cli.fails("characters", "create", "--image", str(tmp_path / "x.jpg"))
    bad_tools = tmp_path / "tools.json"
    bad_tools.write_text("{not json")
    error = cli.fails("characters", "create", "--image", str(ASTRONAUT), "--tools-file",
                      str(bad_tools))  # fmt: skip
    assert "not valid JSON" in error
    missing = cli.fails("characters", "update", "ch_x", "--knowledge-file", str(tmp_path / "k"))
    assert "no such knowledge file" in missing
    status, _, err = cli.run("keys", "create", "--name", "x")
    assert status == 2 and "--scope" in err  # argparse: a required option
    status, _, err = cli.run("characters", options=False)
    assert status == 2 and "create" in err  # a group without a verb shows its verbs


def test_documents_through_the_client_and_the_cli(
    cli: Cli, client: TalkieClient, tmp_path: Path
) -> None:
    character = client.characters.create(ASTRONAUT, name="Librarian")
    policy = tmp_path / "Opening Hours.md"
    policy.write_text("# Opening hours\n\n## Weekdays\nWe open at nine and close at six.\n")
    out = cli.ok("documents", "put", character.id, str(policy))
    assert out.startswith("Opening-Hours: Opening Hours.md, 1 passages")
    listed = cli.json("documents", "list", character.id)
    assert [d["id"] for d in listed] == ["Opening-Hours"]
    hits = client.documents.search(character.id, "when do you close on weekdays")
    assert hits and "six" in hits[0].text and hits[0].heading.endswith("Weekdays")
    assert "nine" in cli.ok("documents", "search", character.id, "what time do you open")
    notes = client.documents.put(character.id, b"Parking is free.", document_id="parking",
                                 kind="text")  # fmt: skip
    assert notes.kind == "text" and notes.source == "parking"
    assert cli.ok("documents", "delete", character.id, "parking").strip() == "deleted parking"
    status, _, err = cli.run("documents", "delete", character.id, "parking")
    assert status == 2 and "unknown_document" in err
    client.characters.delete(character.id)
