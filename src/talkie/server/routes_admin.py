"""/v1/health, /v1/version (no authentication) and /v1/keys (admin)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from talkie import __version__
from talkie.server.auth import create_key
from talkie.server.context import Caller, Svc
from talkie.server.errors import ApiError, errors
from talkie.server.models import ApiKey, Health, KeyCreate, KeyCreated, KeyList, Version
from talkie.store.schema import LATEST_VERSION

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")


@router.get("/health", response_model=Health, tags=["server"], summary="Liveness")
async def health(svc: Svc) -> Health:
    return Health(
        status="ok", version=__version__, sessions=len(svc.registry),
        max_sessions=svc.options.max_sessions,
    )  # fmt: skip


@router.get("/version", response_model=Version, tags=["server"], summary="Versions")
async def version() -> Version:
    return Version(version=__version__, api="v1", schema_version=LATEST_VERSION)


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyCreated,
    responses=errors(400, 401, 403),
    tags=["keys"],
    summary="Create an API key (the secret is returned once)",
)
async def create_api_key(body: KeyCreate, who: Caller, svc: Svc) -> KeyCreated:
    who.require("keys:manage")
    new = await svc.run(
        lambda: create_key(
            svc.store, name=body.name, scopes=set(body.scopes), publishable=body.publishable,
            origins=tuple(body.origins), tenant=body.tenant, characters=body.characters,
        )
    )  # fmt: skip
    log.info("API key %s created by key %s", new.record.id, who.key_id)
    return KeyCreated(key=ApiKey.of(new.record), secret=new.secret)


@router.get(
    "/keys", response_model=KeyList, responses=errors(401, 403), tags=["keys"],
    summary="List API keys (never their secrets)",
)  # fmt: skip
async def list_api_keys(who: Caller, svc: Svc) -> KeyList:
    who.require("keys:manage")
    keys = await svc.run(lambda: svc.store.list_keys(include_revoked=True))
    return KeyList(keys=[ApiKey.of(k) for k in keys])


@router.delete(
    "/keys/{key_id}", response_model=ApiKey, responses=errors(400, 401, 403, 404, 409),
    tags=["keys"], summary="Revoke an API key (at once, for every request that follows)",
)  # fmt: skip
async def revoke_api_key(key_id: str, who: Caller, svc: Svc) -> ApiKey:
    who.require("keys:manage")
    record = await svc.run(svc.store.get_key, key_id)
    if record is None:
        raise ApiError(404, "unknown_key", f"no API key {key_id[:40]!r}")
    if record.id == who.key_id:
        raise ApiError(409, "own_key", "a key cannot revoke itself; use another admin key")
    if record.builtin:
        raise ApiError(
            409, "builtin_key", "this is the bundled web page's key; to lock the page down, "
            "restart with `talkie serve --no-web-uploads` (or do not expose the server)",
        )  # fmt: skip
    await svc.run(svc.store.revoke_key, key_id)
    log.info("API key %s revoked by key %s", key_id, who.key_id)
    updated = await svc.run(svc.store.get_key, key_id)
    assert updated is not None
    return ApiKey.of(updated)
