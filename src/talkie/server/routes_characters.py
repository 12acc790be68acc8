"""/v1/characters: create from a photo, get, list, update, delete, preview (the face points:
``routes_rig``)."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from talkie.brain.tools import WebhookCaller
from talkie.server.auth import Principal
from talkie.server.context import Caller, Services, Svc, character_for
from talkie.server.errors import ApiError, describe_validation, errors
from talkie.server.models import (
    Character,
    CharacterFields,
    CharacterList,
    CharacterUpdate,
    SessionsEnded,
)
from talkie.server.routes_sessions import end_character_sessions
from talkie.server.uploads import MAX_FIELD_CHARS, read_upload

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/characters", tags=["characters"])

_TEXT_FIELDS = frozenset(CharacterFields.model_fields)
_MULTIPART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"},
        "name": {"type": "string", "maxLength": 200},
        "system_prompt": {"type": "string", "maxLength": 20000},
        "greeting": {"type": "string", "maxLength": 1000},
        "knowledge": {"type": "string", "maxLength": 1000000},
        "language": {"type": "string", "maxLength": 35},
        "voice": {
            "type": "string",
            "maxLength": 100,
            "description": "a voice's id from GET /v1/voices: piper, design:..., voice:ID",
        },
        "tools": {"type": "string", "description": "JSON array of tool declarations"},
        "guardrails": {"type": "string", "description": "JSON object: the guardrail policy"},
    },
    "additionalProperties": False,
}
_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/webp": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Character,
    openapi_extra=_CREATE_BODY,
    responses=errors(400, 401, 403, 413, 415, 422, 503),
    summary="Create a character from a photo (rigged now; with no usable face: status needs_rig, "
    "place its face points with GET/PUT /v1/characters/{id}/rig; 422 if it is too small)",
)
async def create_character(
    request: Request,
    who: Caller,
    svc: Svc,
) -> Character:
    who.require("characters:create")
    upload = await read_upload(
        request, max_bytes=svc.options.max_upload_bytes, text_fields=_TEXT_FIELDS,
        max_field_chars=MAX_FIELD_CHARS,
    )  # fmt: skip
    fields = _form_fields(upload.fields)
    await check_webhook_tools(svc, fields.get("tools"))
    await svc.run(request.app.state.voices.check_usable, fields.get("voice"), who)
    tenant = who.tenant
    assert tenant is not None  # only keys may create characters
    created = await svc.run(
        lambda: svc.characters.create(upload.data, fields, owner_key=who.key_id, tenant=tenant)
    )
    log.info("character %s created by key %s (%s)", created.record.id, who.key_id,
             created.record.rig_source)  # fmt: skip
    return Character.of(created.record, rig_problem=created.rig_problem)


@router.get(
    "",
    response_model=CharacterList,
    responses=errors(400, 401, 403),
    summary="List the characters this key sees (samples first, then oldest first; paginated)",
)
async def list_characters(
    who: Caller,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> CharacterList:
    who.require("characters:read")
    tenant, ids = who.tenant_filter(), who.key.characters if who.key else ()
    page = await svc.run(
        lambda: svc.characters.list(limit=limit, cursor=cursor, tenant=tenant, ids=ids or None)
    )
    return CharacterList(
        characters=[_shown(who, Character.of(r)) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{character_id}",
    response_model=Character,
    responses=errors(400, 401, 403, 404),
    summary="Get a character",
)
async def get_character(character_id: str, who: Caller, svc: Svc) -> Character:
    who.require("characters:read")
    return _shown(who, Character.of(await character_for(svc, who, character_id)))


def _shown(who: Principal, character: Character) -> Character:
    publishable = who.key is not None and who.key.kind == "publishable"
    return character.for_public() if publishable else character


@router.patch(
    "/{character_id}",
    response_model=Character,
    responses=errors(400, 401, 403, 404),
    summary="Change a character's name, persona, greeting, language, voice or tools",
)
async def update_character(
    character_id: str,
    body: CharacterUpdate,
    request: Request,
    who: Caller,
    svc: Svc,
) -> Character:
    who.require("characters:manage")
    await character_for(svc, who, character_id, writable=True)
    changes = body.changes()
    await check_webhook_tools(svc, changes.get("tools"))
    await svc.run(request.app.state.voices.check_usable, changes.get("voice"), who)
    record = await svc.run(svc.characters.update, character_id, changes)
    return Character.of(record)


@router.delete(
    "/{character_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    summary="Delete a character (its photo and rig too, unless another character shares them)",
)
async def delete_character(character_id: str, who: Caller, svc: Svc) -> Response:
    who.require("characters:manage")
    await character_for(svc, who, character_id, writable=True)
    await svc.run(svc.characters.delete, character_id)
    log.info("character %s deleted by key %s", character_id[:40], who.key_id)
    return Response(status_code=204)


@router.get(
    "/{character_id}/preview.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
        **errors(400, 401, 403, 404),
    },
    summary="The character framed as in the video (16:9 JPEG)",
)
async def character_preview(character_id: str, who: Caller, svc: Svc) -> Response:
    who.require("characters:read")
    await character_for(svc, who, character_id)
    data = await svc.run(svc.characters.preview, character_id)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"}
    )


@router.delete(
    "/{character_id}/sessions",
    response_model=SessionsEnded,
    responses=errors(400, 401, 403, 404),
    summary="Kill switch (admin): end every session of this character now; disable=true also "
    "refuses new ones until re-enabled (PATCH disabled=false)",
)
async def end_all_sessions(
    character_id: str, who: Caller, svc: Svc, disable: bool = False
) -> SessionsEnded:
    who.require("sessions:kill")
    await character_for(svc, who, character_id)
    if disable:  # first, so no new session starts while the others are being ended
        await svc.run(svc.characters.set_disabled, character_id, True)
    ended = await end_character_sessions(svc, character_id, f"kill switch (key {who.key_id})")
    return SessionsEnded(character_id=character_id, ended=ended, disabled=disable)


def _form_fields(raw: dict[str, str]) -> dict[str, Any]:
    """Validate the form's text fields like the JSON update body (``tools`` is JSON text)."""
    data: dict[str, Any] = {k: v for k, v in raw.items() if v != ""}
    for name in ("tools", "guardrails"):
        if name in data:
            try:
                data[name] = json.loads(data[name])
            except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
                raise ApiError(400, "invalid_field", f"{name}: not valid JSON") from None
    try:
        fields = CharacterFields.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_field", describe_validation(exc.errors())) from None
    return fields.changes()


async def check_webhook_tools(svc: Services, tools: Any) -> None:
    """Refuse a webhook tool whose URL no call could ever reach (the call-time SSRF policy,
    with the server's allow options), naming the field and the rule."""
    caller = WebhookCaller(options=svc.options.webhook)
    for index, tool in enumerate(tools or ()):
        webhook = tool.get("webhook") if tool.get("kind") == "webhook" else None
        if not webhook:
            continue
        problem = await caller.check_declaration(
            str(webhook["url"]), has_secret=bool(webhook.get("secret_env"))
        )
        if problem is not None:
            raise ApiError(400, "webhook_refused", f"tools[{index}].webhook.url: {problem}")
