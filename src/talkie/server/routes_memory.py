"""What characters remember of end users across sessions (opt-in per session with
``remember: true``): read it, forget it for one character, or forget a person everywhere."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from talkie.server.context import Caller, Svc, character_for
from talkie.server.errors import ApiError, errors
from talkie.server.models import MemoriesDeleted, Memory, utc

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["memory"])
EndUser = Annotated[str, Path(min_length=1, max_length=200)]


@router.get(
    "/characters/{character_id}/memories/{end_user_id}",
    response_model=Memory,
    responses=errors(400, 401, 403, 404),
    summary="What a character remembers of one end user",
)
async def get_memory(character_id: str, end_user_id: EndUser, who: Caller, svc: Svc) -> Memory:
    who.require("memories:manage")
    await character_for(svc, who, character_id)
    found = await svc.run(svc.store.get_memory, character_id, end_user_id)
    if found is None:
        raise ApiError(404, "no_memory", "this character remembers nothing of this end user")
    return Memory(
        character_id=found.character_id, end_user_id=found.end_user_id, notes=found.notes,
        updated_at=utc(found.updated_at),
    )  # fmt: skip


@router.delete(
    "/characters/{character_id}/memories/{end_user_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    summary="Make a character forget one end user",
)
async def forget(character_id: str, end_user_id: EndUser, who: Caller, svc: Svc) -> Response:
    who.require("memories:manage")
    await character_for(svc, who, character_id)
    if not await svc.run(svc.store.delete_memories, end_user_id, character_id):
        raise ApiError(404, "no_memory", "this character remembers nothing of this end user")
    return Response(status_code=204)


@router.delete(
    "/end-users/{end_user_id}/memories",
    response_model=MemoriesDeleted,
    responses=errors(400, 401, 403),
    summary="Forget an end user everywhere (every character's memory of them that this key "
    "sees: its tenant's characters; an admin key: all)",
)
async def forget_everywhere(end_user_id: EndUser, who: Caller, svc: Svc) -> MemoriesDeleted:
    who.require("memories:manage")
    tenant = who.tenant_filter()
    deleted = await svc.run(
        lambda: svc.store.delete_memories(end_user_id, tenant=tenant)
    )
    log.info("forgot an end user in %d characters' memories (key %s)", deleted, who.key_id)
    return MemoriesDeleted(end_user_id=end_user_id, deleted=deleted)
