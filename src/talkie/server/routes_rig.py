"""/v1/characters/{id}/rig and /image: the face points of a character, for the point editor.

A character created from a drawing, an animal or a misread face is in the ``needs_rig`` state:
``GET .../rig`` gives a first guess of its points, ``POST .../rig/preview`` the mesh those points
make (and a test animation), ``PUT .../rig`` saves them (the same point format as ``talkie rig
--points``), after which it can talk. Errors about points are 422 ``bad_points`` naming them.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from talkie.server import rigging
from talkie.server.auth import Principal
from talkie.server.context import Caller, Services, Svc, character_for
from talkie.server.errors import errors
from talkie.server.models import Character, RigInfo, RigPoints, RigPreview
from talkie.store import CharacterRecord

router = APIRouter(prefix="/v1/characters", tags=["characters"])


@router.get(
    "/{character_id}/rig",
    response_model=RigInfo,
    responses=errors(400, 401, 403, 404),
    summary="The character's face points (a first guess while it needs them placed), what each "
    "point is, and the face mesh's triangles and outlines",
)
async def get_rig(character_id: str, who: Caller, svc: Svc) -> RigInfo:
    who.require("characters:read")
    await character_for(svc, who, character_id)  # 404 for another tenant's character
    info = await svc.run(rigging.rig_info, svc.characters, character_id)
    return RigInfo.model_validate(info)


@router.post(
    "/{character_id}/rig/preview",
    response_model=RigPreview,
    responses=errors(400, 401, 403, 404, 422),
    summary="The face mesh these points make and, unless frames=false, a test animation "
    "(open, close, blink); nothing is saved",
)
async def preview_rig(
    character_id: str, body: RigPoints, who: Caller, svc: Svc, frames: bool = True
) -> RigPreview:
    record, points = await _placing(character_id, body, who, svc)
    out = await svc.run(lambda: rigging.rig_preview(svc.characters, record, points, frames=frames))
    return RigPreview.model_validate(out)


@router.put(
    "/{character_id}/rig",
    response_model=Character,
    responses=errors(400, 401, 403, 404, 422),
    summary="Rig the character from hand-placed points (drawings, mascots, animals, a misread "
    "face): same format as `talkie rig --points`; a needs_rig character becomes ready",
)
async def rerig_character(character_id: str, body: RigPoints, who: Caller, svc: Svc) -> Character:
    _, points = await _placing(character_id, body, who, svc)
    return Character.of(await svc.run(rigging.rerig, svc.characters, character_id, points))


@router.get(
    "/{character_id}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}}},
        **errors(400, 401, 403, 404),
    },
    summary="The character's photo, oriented as the face points refer to it",
)
async def character_image(character_id: str, who: Caller, svc: Svc) -> Response:
    who.require("characters:read")
    record = await character_for(svc, who, character_id)
    data, kind = await svc.run(rigging.photo_bytes, svc.characters, record)
    return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=600"})


async def _placing(
    character_id: str, body: RigPoints, who: Principal, svc: Services
) -> tuple[CharacterRecord, dict[str, tuple[float, float]]]:
    """The character whose points ``who`` may place, and the points as (x, y) pairs."""
    record = await character_for(svc, who, character_id, writable=True)
    rigging.may_rig(who, record)
    return record, {name: (p.x, p.y) for name, p in body.points.items()}
