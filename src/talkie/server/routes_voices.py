"""/v1/voices: list, preview, design, match and clone voices; a character uses one as
``voice:ID`` (or a built-in voice's id)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from talkie.media.audio import load_audio
from talkie.server.context import Caller, Svc, character_for
from talkie.server.errors import ApiError, errors
from talkie.server.models import VOICE_PATTERN, Character
from talkie.server.uploads import parse_multipart
from talkie.server.voices import BUILTIN_VOICES, VoiceService
from talkie.store import VoiceRecord
from talkie.voice.match import MAX_SAMPLE_SECONDS
from talkie.voice.workshop import MAX_PREVIEW_CHARS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/voices", tags=["voices"])
character_router = APIRouter(prefix="/v1/characters", tags=["characters"])

DEFAULT_PREVIEW = "Hello! This is how I sound. Shall we talk for a while?"


def voice_service(request: Request) -> VoiceService:
    voices: VoiceService = request.app.state.voices
    return voices


Voices = Annotated[VoiceService, Depends(voice_service)]


class Voice(BaseModel):
    id: str = Field(description="what a character's `voice` is set to (saved: `voice:ID`)")
    name: str
    kind: str = Field(description="builtin | design | matched | cloned")
    params: dict[str, Any] = Field(description="design parameters, prompt, match report")
    consent: str | None = None
    created_at: float | None = None

    @classmethod
    def of(cls, r: VoiceRecord) -> Voice:
        return cls(
            id=f"voice:{r.id}",
            name=r.name,
            kind=r.kind,
            params=r.params,
            consent=r.consent,
            created_at=r.created_at,
        )


class VoiceList(BaseModel):
    voices: list[Voice]


class DesignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = Field(default=None, max_length=500, description="e.g. 'a calm woman'")
    design: dict[str, Any] | None = Field(
        default=None,
        description="explicit parameters (pitch, pitch_range, formant, "
        "length_scale, noise_scale, noise_w, accent); they win over the prompt's",
    )


class NewVoice(DesignRequest):
    name: str = Field(min_length=1, max_length=200)


class DesignAnswer(BaseModel):
    id: str = Field(description="the design's spec: a character's `voice` may be set to it")
    design: dict[str, Any]
    notes: list[str] = Field(description="what the prompt was understood to ask for")


class PreviewRequest(DesignRequest):
    text: str = Field(default=DEFAULT_PREVIEW, min_length=1, max_length=MAX_PREVIEW_CHARS)
    voice: str | None = Field(
        default=None, max_length=400, description="a voice's id instead of a prompt/design"
    )


@router.get(
    "",
    response_model=VoiceList,
    responses=errors(401, 403),
    summary="The built-in voices and the voices this key saved",
)
async def list_voices(who: Caller, svc: Svc, voices: Voices) -> VoiceList:
    who.require("characters:read")
    saved = await svc.run(voices.list_for, who)
    builtin = [Voice.model_validate(v) for v in BUILTIN_VOICES]
    return VoiceList(voices=builtin + [Voice.of(r) for r in saved])


@router.post(
    "/design",
    response_model=DesignAnswer,
    responses=errors(400, 401, 403),
    summary="What a prompt designs (parameters and what was understood); saves nothing",
)
async def design_voice(body: DesignRequest, who: Caller, voices: Voices) -> DesignAnswer:
    who.require("characters:read")
    design, notes = voices.design(body.prompt, body.design)
    return DesignAnswer(id=design.to_spec(), design=design.as_dict(), notes=notes)


@router.post(
    "/preview",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, **errors(400, 401, 403, 404, 503)},
    summary="Hear a voice (a saved or built-in one, or a prompt/design) say a text, as WAV",
)
async def preview_voice(body: PreviewRequest, who: Caller, svc: Svc, voices: Voices) -> Response:
    who.require("characters:read")
    if body.voice:
        await svc.run(voices.check_usable, body.voice, who)
        spec = await svc.run(voices.resolve, body.voice)
    else:
        spec = voices.design(body.prompt, body.design)[0].to_spec()
    wav = await svc.run(voices.preview, spec, body.text)
    return Response(wav, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.post(
    "",
    status_code=201,
    response_model=Voice,
    responses=errors(400, 401, 403),
    summary="Save a designed voice (from a prompt and/or parameters)",
)
async def create_voice(body: NewVoice, who: Caller, svc: Svc, voices: Voices) -> Voice:
    who.require("characters:create")
    record = await svc.run(voices.create_design, who, body.name, body.prompt, body.design)
    return Voice.of(record)


async def _sample_form(request: Request, fields: set[str]) -> tuple[Any, dict[str, str], bytes]:
    """The ``sample`` recording (decoded, mono) and the text fields of a multipart form."""
    body = await request.body()  # its size was limited by the request guard
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_type", 'send multipart/form-data with a "sample" file')
    parts = {p.name: p for p in parse_multipart(bytes(body), content_type)}
    unknown = set(parts) - fields - {"sample"}
    if unknown:
        raise ApiError(400, "unknown_field", f"{sorted(unknown)[0][:60]!r} is not a known field")
    sample = parts.get("sample")
    if sample is None or not sample.data:
        raise ApiError(400, "no_sample", 'sample: the form has no "sample" recording')
    text = {k: p.data.decode("utf-8", "replace") for k, p in parts.items() if k != "sample"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample"
        path.write_bytes(sample.data)
        chunk = load_audio(path, max_seconds=MAX_SAMPLE_SECONDS + 1, sample_rate=16000)
    return chunk, text, sample.data


@router.post(
    "/match",
    status_code=201,
    response_model=Voice,
    responses=errors(400, 401, 403, 413, 415),
    summary="Save the designed voice closest to a 5-30 s recording (multipart: sample, name, "
    "accent); 'matched', not cloned: params.match reports the similarity",
)
async def match_voice(request: Request, who: Caller, svc: Svc, voices: Voices) -> Voice:
    who.require("characters:create")
    chunk, fields, _ = await _sample_form(request, {"name", "accent"})
    record = await svc.run(
        voices.create_match,
        who,
        fields.get("name", "Matched voice"),
        chunk.samples,
        chunk.sample_rate,
        fields.get("accent") or "en-us",
    )
    return Voice.of(record)


@router.post(
    "/clone",
    status_code=201,
    response_model=Voice,
    responses=errors(400, 401, 403, 409, 413, 415, 503),
    summary="Clone a voice on the operator's speech server (multipart: sample, name, consent: "
    "a statement that the speaker agreed; it is recorded). 409 if the server has none",
)
async def clone_voice(request: Request, who: Caller, svc: Svc, voices: Voices) -> Voice:
    who.require("characters:create")
    if who.key is None or who.key.kind != "secret":
        raise ApiError(403, "forbidden", "cloning a voice needs a secret API key")
    chunk, fields, _ = await _sample_form(request, {"name", "consent"})
    from talkie.media.audio import wav_bytes

    wav = wav_bytes(chunk)
    record = await svc.run(
        voices.create_clone, who, fields.get("name", "Cloned voice"), wav, fields.get("consent", "")
    )
    return Voice.of(record)


@router.get(
    "/{voice_id}",
    response_model=Voice,
    responses=errors(401, 403, 404),
    summary="A saved voice (with its consent record if cloned)",
)
async def get_voice(voice_id: str, who: Caller, svc: Svc, voices: Voices) -> Voice:
    who.require("characters:read")
    return Voice.of(await svc.run(voices.get, voice_id.removeprefix("voice:"), who))


@router.delete(
    "/{voice_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404, 409),
    summary="Delete a saved voice (409 while a character uses it)",
)
async def delete_voice(voice_id: str, who: Caller, svc: Svc, voices: Voices) -> Response:
    who.require("characters:manage")
    await svc.run(voices.delete, voice_id.removeprefix("voice:"), who)
    return Response(status_code=204)


class VoiceChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    voice: str = Field(max_length=100, pattern=VOICE_PATTERN, description="a voice's id")


@character_router.put(
    "/{character_id}/voice",
    response_model=Character,
    responses=errors(400, 401, 403, 404),
    summary="Give a character a voice (any key that may change characters; the page's "
    "publishable key for characters it created)",
)
async def set_character_voice(
    character_id: str, body: VoiceChoice, who: Caller, svc: Svc, voices: Voices
) -> Character:
    record = await character_for(svc, who, character_id, writable=True)  # 404: not theirs
    publishable_owner = (
        who.key is not None and who.key.kind == "publishable" and record.owner_key == who.key.id
    )
    if not publishable_owner:
        who.require("characters:manage")
    await svc.run(voices.check_usable, body.voice, who)
    updated = await svc.run(svc.characters.update, character_id, {"voice": body.voice})
    return Character.of(updated)
