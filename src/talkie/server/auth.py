"""API keys, session tokens and who may do what.

- **Secret keys** (``tk_<id>_<secret>``) are for servers and scripts. Scopes: ``admin`` (all,
  including keys), ``characters`` (create/read/update/delete characters), ``sessions`` (create,
  list and end sessions, read transcripts and traces; read characters to pick one).
- **Publishable keys** (``pk_<id>_<secret>``) are for web pages: they only work from the origins
  they are bound to (the browser's ``Origin`` header), and only create sessions and read
  characters (plus create characters if they have the ``characters`` scope).
- **Session tokens** (``st_...``) are short-lived, signed, and bound to one session: the browser
  uses one to send its WebRTC offer, hang up and read its own transcript.

Ownership: every key works for a **tenant**. What a key creates (characters, their documents
and memories, sessions with their transcripts and traces) belongs to its tenant; a key sees only
its tenant's things, and anything else is "not found" (404, never 403: other tenants' ids are not
confirmed). Admin keys belong to the ``admin`` tenant and see every tenant. A publishable key
may further be limited to a list of its tenant's characters.

Only a SHA-256 of each key's secret is stored. The secrets are 256-bit random, so a slow password
hash would add nothing but latency; comparisons are constant-time. Keys never reach the logs: only
their public ids do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from talkie.server.errors import ApiError
from talkie.store import ADMIN_TENANT, ApiKeyRecord, CharacterRecord, SessionRecord, Store

SCOPES = ("admin", "characters", "sessions")
PUBLISHABLE_SCOPES = frozenset({"characters", "sessions"})
SESSION_TOKEN_TTL = 600.0  # seconds: time to connect; a live session outlasts its token
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_KEY_CHARACTERS = 100

# action -> scopes that allow it (admin allows everything)
_ACTIONS: dict[str, frozenset[str]] = {
    "characters:read": frozenset({"characters", "sessions"}),
    "characters:create": frozenset({"characters"}),
    "characters:manage": frozenset({"characters"}),  # update, delete
    "characters:rig": frozenset({"characters"}),  # place face points (see server.rigging)
    "sessions:create": frozenset({"sessions"}),
    "sessions:read": frozenset({"sessions"}),
    "sessions:end": frozenset({"sessions"}),
    "keys:manage": frozenset(),
    "sessions:kill": frozenset(),  # end every session of a character at once: admin only
    "ops:read": frozenset(),  # metrics, the admin page's data: admin only
    "memories:manage": frozenset({"sessions"}),  # read or forget what characters remember
}
# what a publishable key may ever do (whatever its scopes)
_PUBLISHABLE_ACTIONS = frozenset(
    {"characters:read", "characters:create", "characters:rig", "sessions:create"}
)
# what a session token may do, for its own session only
_SESSION_ACTIONS = frozenset({"sessions:read", "sessions:end", "sessions:connect"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key, or a browser holding one session's token."""

    key: ApiKeyRecord | None = None
    session_id: str | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def sees_every_tenant(self) -> bool:
        return self.key is not None and "admin" in self.key.scopes

    @property
    def tenant(self) -> str | None:
        """The tenant whose things this caller creates (``None`` for a session token)."""
        return self.key.tenant if self.key is not None else None

    def sees_character(self, record: CharacterRecord) -> bool:
        """Whether the character exists for this caller (else it is answered as not found)."""
        if self.key is None:
            return False
        if self.key.characters and record.id not in self.key.characters:
            return False
        return self.sees_every_tenant or record.tenant == self.key.tenant

    def sees_session(self, record: SessionRecord) -> bool:
        if self.key is None:
            return record.id == self.session_id
        return self.sees_every_tenant or record.tenant == self.key.tenant

    def tenant_filter(self) -> str | None:
        """The tenant to filter listings by (``None``: every tenant, for admin keys)."""
        return None if self.sees_every_tenant else self.tenant

    def allows(self, action: str, *, session_id: str | None = None) -> bool:
        if self.key is None:
            return (
                action in _SESSION_ACTIONS
                and session_id is not None
                and (session_id == self.session_id)
            )
        if self.key.kind == "publishable" and action not in _PUBLISHABLE_ACTIONS:
            return False
        if self.key.characters and action == "characters:create":
            return False  # a key limited to some characters cannot add others
        if "admin" in self.key.scopes:
            return True
        if action == "sessions:connect":  # sending the offer: any key that may create sessions
            action = "sessions:create"
        return bool(self.key.scopes & _ACTIONS.get(action, frozenset()))

    def require(self, action: str, *, session_id: str | None = None) -> None:
        if not self.allows(action, session_id=session_id):
            what = "this session token" if self.key is None else f"API key {self.key.id}"
            raise ApiError(403, "forbidden", f"{what} may not do {action}")


@dataclass(frozen=True)
class NewKey:
    secret: str  # shown once, never stored
    record: ApiKeyRecord


def create_key(
    store: Store,
    *,
    name: str,
    scopes: set[str] | frozenset[str],
    publishable: bool = False,
    origins: tuple[str, ...] = (),
    builtin: bool = False,
    tenant: str | None = None,
    characters: Sequence[str] = (),
) -> NewKey:
    """Create and store a key; the returned ``secret`` is the only copy of the full key.

    ``tenant``: whose things the key works with (admin keys: always ``admin``; others: the
    given tenant, or a new one named after the key). ``characters``: a publishable key's
    allowed characters, each one of that tenant's."""
    scopes = frozenset(scopes)
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise ApiError(400, "invalid_scopes", f"scopes: use some of {', '.join(SCOPES)}")
    if publishable:
        if not scopes <= PUBLISHABLE_SCOPES:
            raise ApiError(
                400, "invalid_scopes", "scopes: publishable keys allow only characters, sessions"
            )
        if not origins and not builtin:  # the bundled page's key also has the server's own
            raise ApiError(400, "origins_required", "origins: publishable keys need origins")
    elif origins:
        raise ApiError(400, "invalid_origins", "origins: only publishable keys have origins")
    if characters and not publishable:
        raise ApiError(
            400, "invalid_characters", "characters: only publishable keys are limited to "
            "characters (a secret key sees its tenant's)",
        )  # fmt: skip
    key_id = secrets.token_hex(6)
    tenant = _key_tenant(tenant, scopes, key_id)
    allowed = tuple(dict.fromkeys(characters))
    _check_key_characters(store, allowed, tenant)
    secret = secrets.token_urlsafe(32)
    prefix = "pk" if publishable else "tk"
    record = ApiKeyRecord(
        id=key_id, name=name, kind="publishable" if publishable else "secret",
        scopes=scopes, origins=tuple(normalize_origin(o) for o in origins), builtin=builtin,
        created_at=time.time(), last_used_at=None, revoked_at=None,
        secret_hash=_hash(secret), tenant=tenant, characters=allowed,
    )  # fmt: skip
    store.add_key(record)
    return NewKey(secret=f"{prefix}_{key_id}_{secret}", record=record)


def _key_tenant(tenant: str | None, scopes: frozenset[str], key_id: str) -> str:
    if "admin" in scopes:
        if tenant not in (None, ADMIN_TENANT):
            raise ApiError(
                400, "invalid_tenant", f"tenant: admin keys belong to the {ADMIN_TENANT!r} tenant"
            )
        return ADMIN_TENANT
    if tenant is None:
        return key_id
    if not TENANT_PATTERN.match(tenant):
        raise ApiError(
            400, "invalid_tenant",
            "tenant: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )  # fmt: skip
    return tenant


def _check_key_characters(store: Store, characters: Sequence[str], tenant: str) -> None:
    if len(characters) > MAX_KEY_CHARACTERS:
        raise ApiError(
            400, "invalid_characters", f"characters: at most {MAX_KEY_CHARACTERS} characters"
        )
    for character_id in characters:
        record = store.get_character(character_id)
        if record is None or record.tenant != tenant:
            raise ApiError(
                400, "invalid_characters",
                f"characters: {character_id[:80]!r} is not a character of tenant {tenant!r}",
            )  # fmt: skip


def server_origins(public_url: str | None, server: tuple[str, int | None] | None) -> set[str]:
    """The origins of this server's own pages: the configured public URL, and the address the
    connection was accepted on (the socket's, never a request header; for loopback also
    ``localhost``). The bundled page's key works from these."""
    found = set()
    if public_url:
        found.add(normalize_origin(public_url, strict=False))
    if server is not None and server[0]:
        host, port = server
        hosts = [host]
        try:
            if ipaddress.ip_address(host).is_loopback:
                hosts += ["localhost", "127.0.0.1", "::1"]
        except ValueError:
            pass
        for name in hosts:
            shown = f"[{name}]" if ":" in name else name
            for scheme in ("http", "https"):  # one socket serves one of them: either is ours
                origin = _origin_or_none(f"{scheme}://{shown}" + (f":{port}" if port else ""))
                if origin is not None:
                    found.add(origin)
    return found


def normalize_origin(origin: str, *, strict: bool = True) -> str:
    """``https://Example.org:443/`` -> ``https://example.org``; raises ``ApiError`` if invalid.
    ``strict=False`` accepts a full URL (a Referer) and keeps only its origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(
            400, "invalid_origins", f"origins: {origin[:100]!r} is not an http(s) origin"
        )
    if strict and (parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        raise ApiError(
            400, "invalid_origins", f"origins: {origin[:100]!r} must be scheme://host[:port] only"
        )
    default = {"http": 80, "https": 443}[parts.scheme]
    port = parts.port
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class Authenticator:
    """Turns a request's credentials into a ``Principal`` (or a 401/403 ``ApiError``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._token_key = store.setting("session_token_secret", secrets.token_hex(32)).encode()
        self._touched: dict[str, float] = {}

    def authenticate(
        self, credential: str | None, origin: str | None, own_origins: Collection[str] = ()
    ) -> Principal:
        """``origin``: the request's ``Origin`` header; ``own_origins``: this server's own
        origins (``server_origins``: configured or from the socket), where the bundled web
        client's key works besides its stored origins."""
        if not credential:
            raise ApiError(
                401, "unauthorized",
                "authentication required: send 'Authorization: Bearer <API key or session token>'",
            )  # fmt: skip
        if credential.startswith("st_"):
            return Principal(session_id=self.verify_session_token(credential))
        key = self._verify_key(credential)
        if key.kind == "publishable":
            allowed = set(key.origins)
            if key.builtin:
                allowed.update(own_origins)
            seen = _origin_or_none(origin) if origin else None
            if seen is None or seen not in allowed:
                raise ApiError(
                    403, "origin_not_allowed",
                    f"publishable key {key.id} is not allowed from origin "
                    f"{(origin or 'none')[:100]!r}",
                )  # fmt: skip
        now = time.time()
        if now - self._touched.get(key.id, 0.0) > 60.0:  # last-used time, at most once a minute
            self._touched[key.id] = now
            self.store.touch_key(key.id)
        return Principal(key=key)

    def _verify_key(self, credential: str) -> ApiKeyRecord:
        prefix, _, rest = credential.partition("_")
        key_id, _, secret = rest.partition("_")
        record = self.store.get_key(key_id) if prefix in ("tk", "pk") and key_id else None
        kind = {"tk": "secret", "pk": "publishable"}.get(prefix)
        if (
            record is None
            or record.kind != kind
            or not hmac.compare_digest(record.secret_hash, _hash(secret))
        ):
            raise ApiError(401, "invalid_key", "the API key is not valid")
        if not record.active:
            raise ApiError(401, "revoked_key", f"API key {record.id} has been revoked")
        return record

    # -- session tokens: st_<payload>.<signature>, payload = {"s": session id, "e": expiry} --

    def session_token(
        self, session_id: str, *, ttl: float = SESSION_TOKEN_TTL
    ) -> tuple[str, float]:
        expires = time.time() + ttl
        payload = _b64(json.dumps({"s": session_id, "e": round(expires, 3)}).encode())
        return f"st_{payload}.{self._sign(payload)}", expires

    def verify_session_token(self, token: str) -> str:
        payload, _, signature = token[3:].partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            raise ApiError(401, "invalid_token", "the session token is not valid")
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session_id, expires = str(data["s"]), float(data["e"])
        except (ValueError, KeyError, TypeError):
            raise ApiError(401, "invalid_token", "the session token is not valid") from None
        if expires < time.time():
            raise ApiError(
                401, "expired_token", "the session token has expired; create a new session"
            )
        return session_id

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._token_key, payload.encode(), hashlib.sha256).digest())


def _origin_or_none(origin: str) -> str | None:
    try:
        return normalize_origin(origin, strict=False)
    except ApiError:
        return None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
