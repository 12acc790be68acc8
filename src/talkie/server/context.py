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

from talkie.brain.kb import KnowledgeBase
from talkie.brain.kb.embedding import LazyEmbedder
from talkie.server.auth import Authenticator, Principal
from talkie.server.characters import CharacterService
from talkie.server.errors import ApiError
from talkie.server.ratelimit import RateLimiter
from talkie.server.sessions import SessionRegistry
from talkie.store import MediaStore, Store

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
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(per_minute=600, burst=60))
    message_limiter: RateLimiter = field(
        default_factory=lambda: RateLimiter(per_minute=20, burst=5)
    )
    web_client_key: str = ""
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


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal:
    """The caller (401 without valid credentials; 403 for a publishable key off its origins)."""
    svc = services(request)
    credential = bearer.credentials if bearer is not None else api_key
    if credential is not None and len(credential) > 2000:
        raise ApiError(401, "invalid_key", "the API key is not valid")
    # Browsers leave out Origin on same-origin GETs; the Referer then names the page's origin.
    origin = request.headers.get("origin") or request.headers.get("referer")
    own_origin = f"{request.url.scheme}://{request.headers.get('host', '')}"
    found = await svc.run(svc.auth.authenticate, credential, origin, own_origin)
    request.state.key_id = found.key_id  # for the access log: ids only, never secrets
    if found.key is not None and found.key.kind == "publishable":
        # one publishable key serves every visitor of a site: limit each visitor, not the site
        client = request.client.host if request.client else "unknown"
        svc.limiter.check(f"key:{found.key.id}:{client}", "requests from this browser")
    elif found.key is not None:
        svc.limiter.check(f"key:{found.key.id}", "requests for this API key")
    else:
        svc.limiter.check(f"session:{found.session_id}", "requests for this session")
    return found


Caller = Annotated[Principal, Depends(principal)]
Svc = Annotated[Services, Depends(services)]
