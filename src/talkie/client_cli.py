"""`talkie characters|sessions|keys|documents ...`: manage a running server from the command line.

Each verb is a thin layer over ``talkie.client.TalkieClient``: ``--url`` and ``--key`` (default
``$TALKIE_URL`` / ``$TALKIE_API_KEY``, else the server's own admin key on this machine), readable
lines and tables by default, ``--json`` for scripts. Errors are ``TalkieError``s, which the CLI
prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkie.errors import InvalidInputError

if TYPE_CHECKING:
    from talkie.client import Character, Session, TalkieClient

Handler = Callable[[argparse.Namespace], int]
SESSION_STATUSES = ("active", "pending", "live", "ended")
SCOPES = ("admin", "characters", "sessions")


def add_client_commands(subparsers: Any) -> None:
    """Add ``characters``, ``sessions`` and ``keys`` to the ``talkie`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help="the server (default: $TALKIE_URL, else http://127.0.0.1:8000)"
    )
    common.add_argument(
        "--key", help="API key (default: $TALKIE_API_KEY, else the admin key of a server on this "
        "machine; prefer the variable: arguments are visible to other users)",
    )  # fmt: skip
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    def group(name: str, text: str) -> Callable[..., argparse.ArgumentParser]:
        parser = subparsers.add_parser(name, help=text, description=text)
        verbs = parser.add_subparsers(title="commands", metavar="COMMAND")
        parser.set_defaults(handler=lambda args: _usage(parser))

        def verb(verb_name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
            sub: argparse.ArgumentParser = verbs.add_parser(
                verb_name, help=text, description=text, parents=[common]
            )
            sub.set_defaults(handler=handler)
            return sub

        return verb

    verb = group("characters", "characters on a running server")
    p = verb("create", _characters_create, "create a character from a photo")
    p.add_argument("--image", type=Path, required=True, help="photo: JPEG, PNG or WebP")
    _character_fields(p)
    p = verb("list", _characters_list, "list characters")
    p.add_argument("--limit", type=_positive, help="show at most this many")
    verb("get", _characters_get, "show a character").add_argument("id")
    p = verb("update", _characters_update, "change a character's persona, voice or tools")
    p.add_argument("id")
    _character_fields(p)
    verb("delete", _characters_delete, "delete a character").add_argument("id")
    p = verb("preview", _characters_preview, "save the character as the video frames it (JPEG)")
    p.add_argument("id")
    p.add_argument("--out", type=Path, required=True, help="output .jpg path")
    p = verb("rig", _characters_rig, "re-rig a character from hand-placed points")
    p.add_argument("id")
    p.add_argument(
        "--points", type=Path, required=True,
        help='JSON file of point name -> [x, y] pixels in the photo, e.g. {"chin": [250, 480]}',
    )  # fmt: skip

    verb = group("sessions", "live sessions on a running server")
    p = verb("list", _sessions_list, "list sessions, newest first")
    p.add_argument("--status", choices=SESSION_STATUSES, help="active = pending or live")
    p.add_argument("--character", help="only this character's sessions")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many (50)")
    verb("get", _sessions_get, "show a session").add_argument("id")
    verb("end", _sessions_end, "hang up a session").add_argument("id")
    verb("transcript", _sessions_transcript, "what was said in a session").add_argument("id")

    verb = group("keys", "API keys of a running server (needs an admin key)")
    p = verb("create", _keys_create, "create an API key (its secret is shown once)")
    p.add_argument("--name", required=True, help="what the key is for")
    p.add_argument(
        "--scope", dest="scopes", action="append", choices=SCOPES, required=True,
        help="what it may do (repeatable): admin, characters, sessions",
    )  # fmt: skip
    p.add_argument(
        "--publishable", action="store_true",
        help="a key for web pages: works only from its --origin(s)",
    )  # fmt: skip
    p.add_argument(
        "--origin", dest="origins", action="append", default=[], metavar="URL",
        help="with --publishable: a page origin allowed to use it, e.g. https://example.org",
    )  # fmt: skip
    p.add_argument(
        "--tenant", default=None,
        help="whose characters and sessions it works with, e.g. the tenant of the site's "
        "secret key (default: a new tenant of its own; admin keys: admin)",
    )  # fmt: skip
    p.add_argument(
        "--character", dest="characters", action="append", default=[], metavar="ID",
        help="with --publishable: a character it may use (repeatable; default: all of its "
        "tenant's)",
    )  # fmt: skip
    verb("list", _keys_list, "list API keys (never their secrets)")
    verb("revoke", _keys_revoke, "revoke an API key at once").add_argument("id")

    add_document_commands(subparsers, common)


def _character_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="the character's name")
    p.add_argument("--system-prompt", help="who the character is and how it answers")
    p.add_argument("--greeting", help="what it says first")
    p.add_argument("--knowledge-file", type=Path, help="text file of facts it may use")
    p.add_argument("--language", help="language code, e.g. en, de, pt-BR")
    p.add_argument("--voice", help="a voice id from GET /v1/voices: piper, design:..., voice:ID")
    p.add_argument("--tools-file", type=Path, help="JSON file: a list of tool declarations")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def _client(args: argparse.Namespace) -> TalkieClient:
    from talkie.client import TalkieClient

    return TalkieClient(args.url, api_key=args.key)


# -- output --


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and datetimes -> JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _print_json(value: Any) -> int:
    print(json.dumps(_plain(value), indent=2, ensure_ascii=False))
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _show_character(c: Character) -> None:
    tools = ", ".join(str(t.get("name", "?")) for t in c.tools) or "-"
    knowledge = f"{_short(c.knowledge, 50)} ({len(c.knowledge)} characters)" if c.knowledge else "-"
    for label, value in (
        ("id", c.id), ("name", c.name), ("language", c.language), ("voice", c.voice),
        ("greeting", _short(c.greeting)), ("system prompt", _short(c.system_prompt)),
        ("knowledge", knowledge), ("tools", tools),
        ("face", c.rig_source + (" (bundled sample, read-only)" if c.sample else "")),
        ("created", _when(c.created_at)), ("updated", _when(c.updated_at)),
    ):  # fmt: skip
        print(f"{label + ':':15}{value}")


def _show_session(s: Session) -> None:
    for label, value in (
        ("id", s.id), ("character", s.character_id), ("status", s.status),
        ("end user", s.end_user_id or "-"), ("turns", str(s.turns)),
        ("created", _when(s.created_at)), ("started", _when(s.started_at)),
        ("ended", _when(s.ended_at)), ("end reason", s.end_reason or "-"),
    ):  # fmt: skip
        print(f"{label + ':':12}{value}")


# -- input files --


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read the {what} file ({exc})") from None


def _read_json(path: Path, what: str, example: str) -> Any:
    try:
        return json.loads(_read_text(path, what))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); write {example}"
        ) from None


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The character fields given on the command line (files read here)."""
    fields: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("name", "system_prompt", "greeting", "language", "voice")
        if getattr(args, k) is not None
    }
    if args.knowledge_file is not None:
        fields["knowledge"] = _read_text(args.knowledge_file, "knowledge")
    if args.tools_file is not None:
        tools = _read_json(args.tools_file, "tools", 'a list like [{"name": ..., "kind": "ui"}]')
        if isinstance(tools, dict) and isinstance(tools.get("tools"), list):
            tools = tools["tools"]  # a character's JSON, or the API's body, works too
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            raise InvalidInputError(f"{args.tools_file}: must hold a JSON list of tool objects")
        fields["tools"] = tools
    return fields


def _points(path: Path) -> dict[str, tuple[float, float]]:
    """``{"chin": [x, y], ...}``; the API's ``{"points": {"chin": {"x":, "y":}}}`` works too
    (the same formats as ``talkie.rig.manual.load_points``, without its heavy imports)."""
    data = _read_json(path, "points", 'an object like {"chin": [250, 480], ...}')
    if isinstance(data, dict) and set(data) == {"points"}:
        data = data["points"]
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(
            f'{path} must hold a JSON object of point name -> [x, y], e.g. {{"chin": [250, 480]}}'
        )
    points = {}
    for name, value in data.items():
        if isinstance(value, dict) and set(value) == {"x", "y"}:
            value = [value["x"], value["y"]]
        ok = isinstance(value, list) and len(value) == 2
        if not ok or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise InvalidInputError(f"{path}: point {name!r} must be [x, y] in pixels")
        points[str(name)] = (float(value[0]), float(value[1]))
    return points


# -- characters --


def _characters_create(args: argparse.Namespace) -> int:
    if not args.image.is_file():
        raise InvalidInputError(f"{args.image}: no such image file")
    fields = _fields(args)
    with _client(args) as client:
        character = client.characters.create(args.image, **fields)
    if args.json:
        return _print_json(character)
    if character.status == "needs_rig":
        print(
            f"created {character.id} ({character.name}); it needs its face points placed by hand "
            f"before it can talk: {character.rig_problem or 'no usable face found'}. Place them "
            f"in the web page's point editor, or: talkie characters rig {character.id} "
            "--points POINTS.json"
        )
        return 0
    print(f"created {character.id} ({character.name}; face from {character.rig_source})")
    return 0


def _characters_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        characters = []
        for character in client.characters.iter_all():
            characters.append(character)
            if args.limit and len(characters) >= args.limit:
                break
    if args.json:
        return _print_json(characters)
    rows = [
        (c.id, _short(c.name, 40), c.language, c.voice, "sample" if c.sample else c.rig_source,
         _when(c.created_at))
        for c in characters
    ]  # fmt: skip
    _table(("ID", "NAME", "LANG", "VOICE", "FACE", "CREATED"), rows, "no characters")
    return 0


def _characters_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        character = client.characters.get(args.id)
    if args.json:
        return _print_json(character)
    _show_character(character)
    return 0


def _characters_update(args: argparse.Namespace) -> int:
    fields = _fields(args)
    if not fields:
        raise InvalidInputError(
            "nothing to change: give --name, --system-prompt, --greeting, --knowledge-file, "
            "--language, --voice or --tools-file"
        )
    with _client(args) as client:
        character = client.characters.update(args.id, **fields)
    if args.json:
        return _print_json(character)
    print(f"updated {character.id}: {', '.join(f.replace('_', ' ') for f in fields)}")
    return 0


def _characters_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.characters.delete(args.id)
    if args.json:
        return _print_json({"deleted": args.id})
    print(f"deleted {args.id}")
    return 0


def _characters_preview(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix.lower() not in (".jpg", ".jpeg"):
        raise InvalidInputError(f"{out}: the preview is a JPEG; name it .jpg")
    if not out.resolve().parent.is_dir():
        raise InvalidInputError(f"{out}: the folder {out.resolve().parent} does not exist")
    with _client(args) as client:
        data = client.characters.preview(args.id)
    tmp = out.with_name(out.name + ".part")  # the output appears only when complete
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(f"{out}: cannot write the preview ({exc.strerror})") from None
    if args.json:
        return _print_json({"path": str(out), "bytes": len(data)})
    print(f"wrote {out} ({len(data) / 1024:.0f} KiB)")
    return 0


def _characters_rig(args: argparse.Namespace) -> int:
    points = _points(args.points)
    with _client(args) as client:
        character = client.characters.rerig(args.id, points)
    if args.json:
        return _print_json(character)
    print(f"re-rigged {character.id} from {len(points)} points (face: {character.rig_source})")
    return 0


# -- sessions --


def _sessions_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.sessions.list(
            status=args.status, character_id=args.character, limit=args.limit
        )
    if args.json:
        return _print_json(page.sessions)
    rows = [
        (s.id, s.character_id, s.status, str(s.turns), _when(s.created_at),
         _short(s.end_reason or "", 40))
        for s in page.sessions
    ]  # fmt: skip
    _table(("ID", "CHARACTER", "STATUS", "TURNS", "CREATED", "END REASON"), rows, "no sessions")
    if page.next_cursor:
        print(f"(more than {args.limit}; use --limit to see more)")
    return 0


def _sessions_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.sessions.get(args.id)
    if args.json:
        return _print_json(session)
    _show_session(session)
    return 0


def _sessions_end(args: argparse.Namespace) -> int:
    with _client(args) as client:
        session = client.sessions.end(args.id)
    if args.json:
        return _print_json(session)
    print(f"{session.id} ended ({session.end_reason or 'no reason given'})")
    return 0


def _sessions_transcript(args: argparse.Namespace) -> int:
    with _client(args) as client:
        transcript = client.sessions.transcript(args.id)
    if args.json:
        return _print_json(transcript)
    if not transcript.lines:
        print("nothing was said in this session")
    for line in transcript.lines:
        notes = [n for n, on in (("typed", line.typed), ("interrupted", line.interrupted)) if on]
        extra = f"  ({', '.join(notes)})" if notes else ""
        print(
            f"{line.turn:>3}  {line.at.astimezone():%H:%M:%S}  {line.speaker}: {line.text}{extra}"
        )
    return 0


# -- keys --


def _keys_create(args: argparse.Namespace) -> int:
    if args.origins and not args.publishable:
        raise InvalidInputError("--origin goes with --publishable (secret keys have no origins)")
    with _client(args) as client:
        created = client.keys.create(
            args.name, sorted(set(args.scopes)), publishable=args.publishable,
            origins=args.origins, tenant=args.tenant, characters=args.characters,
        )  # fmt: skip
    if args.json:
        return _print_json(created)
    key = created.key
    print(
        f"created {key.kind} key {key.id} ({key.name}; scopes: {', '.join(key.scopes)}; "
        f"tenant: {key.tenant})"
    )
    print(f"\n  {created.secret}\n")
    print("This is the only time the full key is shown: store it now.")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        keys = client.keys.list()
    if args.json:
        return _print_json(keys)
    rows = [
        (k.id, _short(k.name, 30), k.kind, ",".join(k.scopes), _short(k.tenant, 20),
         ",".join(k.origins) or "-", _when(k.created_at), _when(k.last_used_at),
         "revoked" if k.revoked else "active")
        for k in keys
    ]  # fmt: skip
    headers = (
        "ID", "NAME", "KIND", "SCOPES", "TENANT", "ORIGINS", "CREATED", "LAST USED", "STATE"
    )  # fmt: skip
    _table(headers, rows, "no keys")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        key = client.keys.revoke(args.id)
    if args.json:
        return _print_json(key)
    print(f"revoked key {key.id} ({key.name})")
    return 0


# -- documents (the knowledge base) --


def add_document_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    text = "a character's knowledge documents (Markdown or plain text)"
    parser = subparsers.add_parser("documents", help=text, description=text)
    verbs = parser.add_subparsers(title="commands", metavar="COMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    def verb(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = verbs.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        sub.set_defaults(handler=handler)
        sub.add_argument("character", help="the character's id")
        return sub

    p = verb("put", _documents_put, "upload a document (the same id again replaces it)")
    p.add_argument("file", type=Path, help=".md (split by its headings) or .txt")
    p.add_argument("--id", help="document id (default: the file name without extension)")
    verb("list", _documents_list, "list the character's documents")
    verb("delete", _documents_delete, "delete a document").add_argument("id")
    p = verb("search", _documents_search, "the passages a question finds")
    p.add_argument("question")


def _documents_put(args: argparse.Namespace) -> int:
    with _client(args) as client:
        doc = client.documents.put(args.character, args.file, document_id=args.id)
    if args.json:
        return _print_json(doc)
    print(f"{doc.id}: {doc.source}, {doc.passages} passages, {doc.chars} characters")
    return 0


def _documents_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        docs = client.documents.list(args.character)
    if args.json:
        return _print_json(docs)
    rows = [(d.id, d.source, str(d.passages), _when(d.updated_at)) for d in docs]
    _table(("ID", "SOURCE", "PASSAGES", "UPDATED"), rows, "no documents")
    return 0


def _documents_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.documents.delete(args.character, args.id)
    if args.json:
        return _print_json({"deleted": args.id})
    print(f"deleted {args.id}")
    return 0


def _documents_search(args: argparse.Namespace) -> int:
    with _client(args) as client:
        hits = client.documents.search(args.character, args.question)
    if args.json:
        return _print_json(hits)
    if not hits:
        print("nothing found")
    for hit in hits:
        where = f"{hit.source} > {hit.heading}" if hit.heading else hit.source
        print(f"[{hit.score:.2f}] {where}\n    {_short(hit.text, 200)}")
    return 0
