"""What the /v1 routes share: the services of one server and the authentication dependency."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import Scope

from talkie.brain.kb import KnowledgeBase
from talkie.brain.kb.embedding import LazyEmbedder
from talkie.server.auth import Authenticator, Principal, server_origins
from talkie.server.characters import CharacterService
from talkie.server.errors import ApiError
from talkie.server.hosts import SessionHost
from talkie.server.hosts.inprocess import InProcessHost
from talkie.server.ratelimit import RateLimiter
from talkie.server.sessions import SessionRegistry
from talkie.store import CharacterRecord, MediaStore, SessionRecord, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# Declared so the OpenAPI document shows how to authenticate (and tools like schemathesis can).
_bearer = HTTPBearer(auto_error=False, description="API key (tk_/pk_) or session token (st_)")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


@dataclass
class Services:
    store: Store
    media: MediaStore
    characters: CharacterService
    auth: Authenticator
    registry: SessionRegistry
    options: Any  # ServerOptions (app.py)
    conversation_factory: Callable[..., Any]
    host: SessionHost = field(default_factory=InProcessHost)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(per_minute=600, burst=60))
    message_limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(per_minute=20, burst=5)
    )
    web_client_key: str = ""
    ops: Any = None  # talkie.server.ops.Ops: metrics, traces, admission (set by create_app)
    # One writer thread for session records: turns of a session are written in order, and the
    # event loop never waits for the database.
    writer: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="talkie-store"
        )
    )

    knowledge_path: Path | None = None
    _knowledge: KnowledgeBase | None = None
    _knowledge_lock: threading.Lock = field(default_factory=threading.Lock)

    def knowledge(self) -> KnowledgeBase:
        """The characters' knowledge base (opened on first use; its embedding model loads on
        the first document or search). A local SQLite file even with another database: it is a
        search index, rebuilt by uploading the documents again."""
        with self._knowledge_lock:
            if self._knowledge is None:
                path = self.knowledge_path or Path(self.options.data_dir) / "knowledge.db"
                self._knowledge = KnowledgeBase(path, embedder=LazyEmbedder())
            return self._knowledge

    def close(self) -> None:
        self.writer.shutdown(wait=True)
        with self._knowledge_lock:
            if self._knowledge is not None:
                self._knowledge.close()
        self.store.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking store/media call in a worker thread."""
        return await asyncio.to_thread(fn, *args)

    def write_later(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue a write on the writer thread (errors are logged, never raised into the loop)."""

        def guarded() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("a background database write failed")

        self.writer.submit(guarded)


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def identify(svc: Services, scope: Scope) -> Principal:
    """Who sends this request, from its headers alone (the body is not read yet): 401 without
    valid credentials, 403 for a publishable key off its origins, 429 over the rate limit.
    Runs in ``RequestGuard`` before anything else; the ``principal`` dependency reuses it."""
    headers = Headers(scope=scope)
    credential = None
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        credential = token.strip()
    elif headers.get("x-api-key"):
        credential = headers["x-api-key"].strip()
    if credential is not None and len(credential) > 2000:
        raise ApiError(401, "invalid_key", "the API key is not valid")
    # Browsers leave out Origin on same-origin GETs; the Referer then names the page's origin.
    origin = headers.get("origin") or headers.get("referer")
    # The bundled page's own origins: configured, or the socket this request came in on; a
    # Host header is the client's word and never counts.
    own = server_origins(svc.options.public_url, scope.get("server"))
    found = await svc.run(svc.auth.authenticate, credential, origin, own)
    if found.key is not None and found.key.kind == "publishable":
        # one publishable key serves every visitor of a site: limit each visitor, not the site
        client = scope.get("client")
        host = client[0] if client else "unknown"
        svc.limiter.check(f"key:{found.key.id}:{host}", "requests from this browser")
    elif found.key is not None:
        svc.limiter.check(f"key:{found.key.id}", "requests for this API key")
    else:
        svc.limiter.check(f"session:{found.session_id}", "requests for this session")
    return found


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The caller, as ``RequestGuard`` identified it before the body was read (the two
    security parameters only document the schemes in the OpenAPI document)."""
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # a route outside the guard's paths
        found = await identify(services(request), request.scope)
        request.state.principal = found
    request.state.key_id = found.key_id  # for the access log: ids only, never secrets
    return found


async def character_for(
    svc: Services, who: Principal, character_id: str, *, writable: bool = False
) -> CharacterRecord:
    """The character, if this caller may see it: 404 otherwise, the same answer whether it
    belongs to someone else or does not exist. ``writable``: a bundled sample is refused
    (403 ``read_only``)."""
    record = await svc.run(svc.store.get_character, character_id)
    if record is None or not who.sees_character(record):
        raise ApiError(404, "unknown_character", f"no character with id {character_id[:80]!r}")
    if writable:
        svc.characters.check_writable(record)
    return record


async def session_for(svc: Services, who: Principal, session_id: str) -> SessionRecord:
    """The session, if this caller may see it (404 otherwise, as for ``character_for``)."""
    record = await svc.run(svc.store.get_session, session_id)
    if record is None or not who.sees_session(record):
        raise ApiError(404, "unknown_session", f"no session {session_id[:80]!r}")
    return record


Caller = Annotated[Principal, Depends(principal)]
Svc = Annotated[Services, Depends(services)]
