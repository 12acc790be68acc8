"""A Python client for a Talkie server's /v1 REST API (synchronous, on httpx).

    from talkie.client import TalkieClient

    with TalkieClient() as talkie:                      # http://127.0.0.1:8000, or $TALKIE_URL
        nova = talkie.characters.create(image="me.jpg", name="Nova")
        created = talkie.sessions.create(nova.id)      # give created.token to the browser
        for line in talkie.sessions.transcript(created.session.id).lines:
            print(line.speaker, line.text)

The API key is ``api_key=``, else ``$TALKIE_API_KEY``, else the admin key the server wrote on its
first start (``$TALKIE_DATA_DIR/admin.key`` or ``~/.talkie/admin.key``), so nothing needs setting
up on the server's own machine. That file is only sent to a loopback address: pointing the client
at another server cannot leak this machine's admin key.

Every error is a ``talkie.errors.TalkieError`` with a one-line message: ``TalkieApiError`` for an
error answer from the server, plain ``TalkieError`` when the server cannot be reached. Keys never
appear in messages or reprs (only their public ids). This module imports only httpx and
``talkie.errors``: scripts using it start fast and need none of the server's dependencies.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, Unpack
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from talkie.client_types import (
    Answer,
    ApiKey,
    Character,
    CharacterFields,
    CharacterPage,
    Health,
    KeyCreated,
    Session,
    SessionCreated,
    SessionPage,
    Traces,
    Transcript,
    TranscriptLine,
    TurnTrace,
    Version,
)
from talkie.errors import InvalidInputError, TalkieError

__all__ = [
    "TalkieApiError",
    "TalkieClient",
    "Answer",
    "ApiKey",
    "Character",
    "CharacterFields",
    "CharacterPage",
    "Health",
    "KeyCreated",
    "Session",
    "SessionCreated",
    "SessionPage",
    "Traces",
    "Transcript",
    "TranscriptLine",
    "TurnTrace",
    "Version",
]

DEFAULT_URL = "http://127.0.0.1:8000"
ADMIN_KEY_FILE = "admin.key"  # written by the server on its first start (server/app.py)
START_HINT = "start it with `make run` or `talkie serve`, or point --url / TALKIE_URL at it"

T = TypeVar("T")


class TalkieApiError(TalkieError):
    """The server answered with an error: HTTP ``status``, a stable ``code`` (``forbidden``,
    ``invalid_field``...) and its one-line ``message`` (naming the field for 400s)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = " ".join(message.split())  # one line, whatever the server sent
        super().__init__(f"{self.message} (HTTP {status} {code})")


def _load(cls: type[T], data: Any, **nested: Any) -> T:
    """A response object -> ``cls``: unknown fields are ignored (newer servers may add some),
    ``*_at`` strings become datetimes, lists become tuples; ``nested`` gives fields already
    converted."""
    if not isinstance(data, dict):
        raise TalkieError(f"unexpected answer from the server: expected a {cls.__name__} object")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in nested:
            values[f.name] = nested[f.name]
            continue
        if f.name not in data and f.default is not dataclasses.MISSING:
            continue  # added later: an older server leaves it out
        if f.name not in data:
            raise TalkieError(
                f"unexpected answer from the server: {cls.__name__} has no {f.name!r} "
                "(is the client newer than the server?)"
            )
        value = data[f.name]
        if f.name.endswith("_at") and isinstance(value, str):
            value = _datetime(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


def _datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise TalkieError(f"unexpected answer from the server: bad time {text[:40]!r}") from None


def _items(data: Any, name: str) -> Sequence[Any]:
    items = data.get(name) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise TalkieError(f"unexpected answer from the server: no {name!r} list")
    return items


def _member(data: Any, name: str) -> Any:
    return data.get(name) if isinstance(data, dict) else None


# -- configuration --


def admin_key_path() -> Path:
    """The admin key a server on this machine wrote (its data folder as ``talkie serve``
    resolves it: ``$TALKIE_DATA_DIR``, else ``~/.talkie``)."""
    env = os.environ.get("TALKIE_DATA_DIR")
    return (Path(env) if env else Path.home() / ".talkie") / ADMIN_KEY_FILE


def _normalize_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"{_display_url(url)!r} is not a server address; use http://HOST:PORT "
            f"(e.g. {DEFAULT_URL})"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):  # people paste the API's base URL: the client adds /v1 itself
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _display_url(url: str) -> str:
    """The URL without any user:password part (it must not end up in messages)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_admin_key() -> str | None:
    try:
        text = admin_key_path().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # no server on this machine, or not ours to read
        return None
    return text or None


def _check_key(key: str, where: str) -> str:
    key = key.strip()
    # Checked here because httpx's own error for a bad header value would quote part of it.
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise InvalidInputError(f"the API key from {where} is malformed; copy the whole key")
    return key


def _key_id(key: str | None) -> str | None:
    """The public id of a ``tk_<id>_<secret>`` key (safe to show), or None."""
    if not key:
        return None
    prefix, _, rest = key.partition("_")
    key_id = rest.partition("_")[0]
    return key_id if prefix in ("tk", "pk") and key_id else None


def _segment(value: str, what: str) -> str:
    """An id as one URL path segment (an id like ``../keys`` must not reach another route)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what}: give an id")
    return quote(value.strip(), safe="")


# -- the client --


class TalkieClient:
    """A connection to one Talkie server.

    ``url``: the server (default ``$TALKIE_URL``, else http://127.0.0.1:8000). ``api_key``: see
    the module docstring. ``timeout``: seconds per request (creating a character rigs the photo,
    which can wait behind other uploads). ``transport``: an ``httpx.BaseTransport`` (e.g.
    ``httpx.MockTransport``), or a ready client with httpx's ``request()`` API (an
    ``httpx.Client``, or Starlette's ``TestClient`` to run an app in-process); a client passed in
    is used as is and not closed by ``close()``.

    Resources: ``characters``, ``sessions``, ``keys``, ``documents``, ``chat`` (text chat with a
    character, ``talkie.client_chat``); plus ``health()`` and ``version()``.
    """

    def __init__(
        self, url: str | None = None, *, api_key: str | None = None, timeout: float = 60.0,
        transport: httpx.BaseTransport | Any | None = None,
    ) -> None:  # fmt: skip
        self.url = _normalize_url(url or os.environ.get("TALKIE_URL") or DEFAULT_URL)
        self._key_source = "api_key / --key"
        if api_key is not None:
            key: str | None = _check_key(api_key, "api_key / --key")
        elif os.environ.get("TALKIE_API_KEY"):
            key = _check_key(os.environ["TALKIE_API_KEY"], "TALKIE_API_KEY")
            self._key_source = "TALKIE_API_KEY"
        elif _is_loopback(self.url):
            key = _read_admin_key()
            self._key_source = str(admin_key_path())
        else:
            key = None
        self.__key = key
        self.timeout = timeout
        if transport is None or isinstance(transport, httpx.BaseTransport):
            self._http: Any = httpx.Client(timeout=timeout, transport=transport)
            self._owns_http = True
        else:
            self._http = transport
            self._owns_http = False
        self.characters = Characters(self)
        self.sessions = Sessions(self)
        self.keys = Keys(self)
        from talkie.client_chat import Chat  # these build on this module
        from talkie.client_knowledge import Documents

        self.documents = Documents(self)
        self.chat = Chat(self)

    @property
    def key_id(self) -> str | None:
        """The public id of the API key in use (never the key itself), or None."""
        return _key_id(self.__key)

    def __repr__(self) -> str:
        key = f"key {self.key_id}" if self.key_id else ("a key" if self.__key else "no key")
        return f"<TalkieClient {_display_url(self.url)} with {key}>"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TalkieClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> Health:
        """Liveness, version and how many live sessions the server holds (no key needed)."""
        return _load(Health, self._json("GET", "/v1/health", auth=False))

    def version(self) -> Version:
        """The server's version, API version and database schema version (no key needed)."""
        return _load(Version, self._json("GET", "/v1/version", auth=False))

    # -- HTTP --

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise TalkieError(
                f"{_display_url(self.url)} answered {method} {path} with something other than "
                "JSON; is it a Talkie server?"
            ) from None

    def _request(
        self, method: str, path: str, *, auth: bool = True, token: str | None = None,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        credential = token if token is not None else (self.__key if auth else None)
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        shown = _display_url(self.url)
        try:
            # no per-request timeout: an owned client has it, an injected one keeps its own
            response = self._http.request(method, self.url + path, headers=headers, **kwargs)
        except httpx.ConnectError as exc:
            if "refused" in str(exc).lower():  # nothing listens there: the usual case
                problem = f"the Talkie server is not running at {shown}"
            else:
                problem = f"cannot reach the Talkie server at {shown} ({_reason(exc)})"
            raise TalkieError(f"{problem}; {START_HINT}") from None
        except httpx.TimeoutException:
            raise TalkieError(
                f"the Talkie server at {shown} did not answer {method} {path} within "
                f"{self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise TalkieError(
                f"talking to the Talkie server at {shown} failed: {_reason(exc)}"
            ) from None
        if response.status_code >= 400:
            raise self._api_error(response, token is not None or not auth)
        return response

    def _api_error(self, response: Any, own_credential: bool) -> TalkieApiError:
        status = int(response.status_code)
        try:
            detail = response.json()["error"]
            code, message = str(detail["code"]), str(detail["message"])
        except (ValueError, KeyError, TypeError):  # a proxy's HTML page, or not Talkie at all
            code = "http_error"
            message = f"HTTP {status} from {_display_url(self.url)} (not a Talkie API error)"
        if status == 401 and not own_credential:
            if self.__key is not None:
                message += f" (the key came from {self._key_source})"
            elif _is_loopback(self.url):
                message += (
                    f"; no API key: none in {admin_key_path()}, so pass --key or set "
                    "TALKIE_API_KEY (or TALKIE_DATA_DIR to the server's --data-dir)"
                )
            else:  # this machine's admin key is never sent elsewhere
                message += "; no API key: pass --key or set TALKIE_API_KEY"
        return TalkieApiError(status, code, message)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


class _Resource:
    def __init__(self, client: TalkieClient) -> None:
        self._client = client


class Characters(_Resource):
    """``/v1/characters``: characters made from one photo each."""

    def create(
        self, image: str | os.PathLike[str] | bytes, **fields: Unpack[CharacterFields]
    ) -> Character:
        """Create a character from a photo (a path, or the file's bytes: JPEG, PNG or WebP).
        The server rigs it before answering; a photo without a usable face (a drawing, an
        animal) comes back with ``status == "needs_rig"`` and ``rig_problem`` saying why: place
        its face points with ``rerig`` before it can talk. Fields left out (or None) get the
        server's defaults."""
        if isinstance(image, bytes):
            data, filename = image, "image"
        else:
            path = Path(image)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"{path}: cannot read the image ({exc.strerror})") from None
            filename = path.name
        form = _given(fields)
        if "tools" in form:  # a form field holds text: the server parses the JSON
            form["tools"] = json.dumps([dict(t) for t in form["tools"]])
        if "guardrails" in form:
            form["guardrails"] = json.dumps(dict(form["guardrails"]))
        body = self._client._json(
            "POST", "/v1/characters", files={"image": (filename, data)}, data=form
        )
        return _load(Character, body)

    def get(self, character_id: str) -> Character:
        """One character (404 ``unknown_character`` if there is none with this id)."""
        return _load(Character, self._client._json("GET", self._path(character_id)))

    def list(self, *, limit: int = 20, cursor: str | None = None) -> CharacterPage:
        """One page: samples first, then oldest first; pass ``next_cursor`` for the next."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = self._client._json("GET", "/v1/characters", params=params)
        characters = tuple(_load(Character, c) for c in _items(body, "characters"))
        return CharacterPage(characters, body.get("next_cursor"))

    def iter_all(self, *, page_size: int = 100) -> Iterator[Character]:
        """Every character, fetching pages as it goes."""
        page = self.list(limit=page_size)
        yield from page.characters
        while page.next_cursor:
            page = self.list(limit=page_size, cursor=page.next_cursor)
            yield from page.characters

    def update(self, character_id: str, **fields: Unpack[CharacterFields]) -> Character:
        """Change the given fields (one left out or None stays as it is; ``tools=[]`` removes
        all tools). Bundled samples are read-only (403 ``read_only``)."""
        body = _given(fields)
        if "tools" in body:
            body["tools"] = [dict(t) for t in body["tools"]]
        if "guardrails" in body:
            body["guardrails"] = dict(body["guardrails"])
        return _load(Character, self._client._json("PATCH", self._path(character_id), json=body))

    def delete(self, character_id: str) -> None:
        """Delete a character (its photo and rig too, unless another character shares them)."""
        self._client._request("DELETE", self._path(character_id))

    def preview(self, character_id: str) -> bytes:
        """The character framed as in the video: a 16:9 JPEG."""
        response = self._client._request("GET", self._path(character_id) + "/preview.jpg")
        return bytes(response.content)

    def rerig(
        self, character_id: str, points: Mapping[str, tuple[float, float] | Sequence[float]]
    ) -> Character:
        """Re-rig from hand-placed points (name -> (x, y) pixels in the character's photo), for
        drawings, mascots and animals that face detection misses (a ``needs_rig`` character
        becomes ready). Points that cannot be a face are a 422 ``bad_points`` naming them."""
        body = {"points": {name: _point(name, xy) for name, xy in points.items()}}
        return _load(
            Character, self._client._json("PUT", self._path(character_id) + "/rig", json=body)
        )

    @staticmethod
    def _path(character_id: str) -> str:
        return "/v1/characters/" + _segment(character_id, "character id")


class Sessions(_Resource):
    """``/v1/sessions``: live conversations with a character."""

    def create(
        self, character_id: str, *, end_user_id: str | None = None, remember: bool = False
    ) -> SessionCreated:
        """A pending session; hand ``token`` to the browser, which sends its WebRTC offer to
        ``offer_url`` with it (see ``offer``). The token expires in minutes. ``remember``
        (with ``end_user_id``): the character remembers this person across sessions."""
        body: dict[str, Any] = {"character_id": character_id}
        if end_user_id is not None:
            body["end_user_id"] = end_user_id
        if remember:
            body["remember"] = True
        data = self._client._json("POST", "/v1/sessions", json=body)
        session = _load(Session, _member(data, "session"))
        return _load(SessionCreated, data, session=session)

    def list(
        self, *, status: str | None = None, character_id: str | None = None, limit: int = 50,
        cursor: str | None = None,
    ) -> SessionPage:  # fmt: skip
        """One page, newest first. ``status``: ``active`` (pending or live), ``pending``,
        ``live`` or ``ended``."""
        given = {"status": status, "character_id": character_id, "cursor": cursor}
        params = {"limit": limit, **{k: v for k, v in given.items() if v is not None}}
        body = self._client._json("GET", "/v1/sessions", params=params)
        sessions = tuple(_load(Session, s) for s in _items(body, "sessions"))
        return SessionPage(sessions, body.get("next_cursor"))

    def get(self, session_id: str) -> Session:
        return _load(Session, self._client._json("GET", self._path(session_id)))

    def end(self, session_id: str) -> Session:
        """Hang up (ending an ended session changes nothing); returns the ended session."""
        return _load(Session, self._client._json("DELETE", self._path(session_id)))

    def transcript(self, session_id: str) -> Transcript:
        """What was said, turn by turn (the character's lines as heard, if interrupted)."""
        data = self._client._json("GET", self._path(session_id) + "/transcript")
        lines = tuple(_load(TranscriptLine, x) for x in _items(data, "lines"))
        return _load(Transcript, data, lines=lines)

    def traces(self, session_id: str) -> Traces:
        """Per-turn latency traces."""
        data = self._client._json("GET", self._path(session_id) + "/traces")
        turns = tuple(_load(TurnTrace, x) for x in _items(data, "turns"))
        return _load(Traces, data, turns=turns)

    def offer(self, session_id: str, sdp: str, token: str | None = None) -> Answer:
        """Send a WebRTC offer (what the browser does); returns the complete answer. ``token``:
        the session's token from ``create`` (else the client's API key is used)."""
        body = {"sdp": sdp, "type": "offer"}
        path = self._path(session_id) + "/offer"
        return _load(Answer, self._client._json("POST", path, json=body, token=token))

    @staticmethod
    def _path(session_id: str) -> str:
        return "/v1/sessions/" + _segment(session_id, "session id")


class Keys(_Resource):
    """``/v1/keys``: API keys (admin scope)."""

    def create(
        self, name: str, scopes: Sequence[str], *, publishable: bool = False,
        origins: Sequence[str] = (), tenant: str | None = None, characters: Sequence[str] = (),
    ) -> KeyCreated:  # fmt: skip
        """A new key. Scopes: ``admin``, ``characters``, ``sessions``. Publishable keys are for
        web pages and need the ``origins`` they may be used from. ``tenant``: whose characters
        and sessions the key works with (omitted: a new tenant of its own); ``characters``
        limits a publishable key to some of them. ``secret`` is the only copy of the full
        key."""
        if isinstance(scopes, str):  # a lone "admin" would otherwise be five one-letter scopes
            scopes = [scopes]
        body: dict[str, Any] = {
            "name": name, "scopes": list(scopes), "publishable": publishable,
            "origins": list(origins), "characters": list(characters),
        }  # fmt: skip
        if tenant is not None:
            body["tenant"] = tenant
        data = self._client._json("POST", "/v1/keys", json=body)
        key = _load(ApiKey, _member(data, "key"))
        return _load(KeyCreated, data, key=key)

    def list(self) -> tuple[ApiKey, ...]:
        """All keys, revoked ones included (never their secrets)."""
        return tuple(
            _load(ApiKey, k) for k in _items(self._client._json("GET", "/v1/keys"), "keys")
        )

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once (a key cannot revoke itself)."""
        return _load(ApiKey, self._client._json("DELETE", "/v1/keys/" + _segment(key_id, "key id")))


def _given(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(CharacterFields.__annotations__)
    if unknown:  # caught here: the server would only say "unknown field" after the upload
        raise TypeError(f"unknown character fields: {', '.join(sorted(unknown))}")
    return {k: v for k, v in fields.items() if v is not None}


def _point(name: str, xy: Any) -> dict[str, float]:
    try:
        x, y = xy
        return {"x": float(x), "y": float(y)}
    except (TypeError, ValueError):
        raise InvalidInputError(f"points.{name}: give (x, y) in pixels") from None
