"""Request and response bodies of the /v1 API (they define the served OpenAPI document).

Requests forbid unknown fields and bound every string, so a typo or a hostile payload is a 400
naming the field rather than something silently ignored or stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from talkie.brain.tools.spec import check_schema
from talkie.errors import InvalidInputError
from talkie.store import ApiKeyRecord, CharacterRecord, SessionRecord, TraceRecord, TranscriptEntry

ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
VOICE_PATTERN = (
    r"^(piper|espeak(:[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,12})?)?"
    r"|voice:v_[A-Za-z0-9_-]{6,40}|design:[a-z_]+=[a-z0-9.-]+(,[a-z_]+=[a-z0-9.-]+)*|design:"
    r"|remote:[A-Za-z0-9_.-]{1,60})$"
)
TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- tools (declared per character; the brain issue gives them behaviour) --


class WebhookSpec(Strict):
    url: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    secret_env: str | None = Field(default=None, max_length=100, pattern=r"^[A-Z][A-Z0-9_]*$")


class ToolSpec(Strict):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str = Field(min_length=1, max_length=1000)
    kind: Literal["ui", "webhook"]
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    examples: list[str] = Field(default_factory=list, max_length=20)
    webhook: WebhookSpec | None = None

    @field_validator("examples")
    @classmethod
    def _short_examples(cls, value: list[str]) -> list[str]:
        if any(len(e) > 300 for e in value):
            raise ValueError("each example is at most 300 characters")
        return value

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('parameters must be a JSON schema with "type": "object"')
        if len(str(value)) > 20_000:
            raise ValueError("parameters schema is too large (20,000 characters at most)")
        try:
            check_schema(value)  # what the brain's validator would misread is refused now
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _webhook_matches_kind(self) -> ToolSpec:
        if self.kind == "webhook" and self.webhook is None:
            raise ValueError("a webhook tool needs a webhook {url, method}")
        if self.kind == "ui" and self.webhook is not None:
            raise ValueError("a ui tool has no webhook")
        return self


class GuardrailSpec(Strict):
    """What the character must not discuss or say (see ``talkie.brain.guardrails``)."""

    blocked_topics: list[str] = Field(default_factory=list, max_length=100)
    blocked_words: list[str] = Field(default_factory=list, max_length=200)
    refusal: str | None = Field(default=None, min_length=1, max_length=500)
    moderation: bool = False
    fail_closed: bool = False

    @field_validator("blocked_topics", "blocked_words")
    @classmethod
    def _phrases(cls, value: list[str]) -> list[str]:
        if any(not any(ch.isalnum() for ch in p) or len(p) > 100 for p in value):
            raise ValueError("each entry is a word or phrase of at most 100 characters")
        return value


# -- characters --


class CharacterFields(Strict):
    """Fields shared by create (multipart form) and update (JSON)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, min_length=1, max_length=1_000)
    knowledge: str | None = Field(default=None, max_length=1_000_000)
    language: str | None = Field(
        default=None, max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
    )
    voice: str | None = Field(default=None, max_length=100, pattern=VOICE_PATTERN)
    tools: list[ToolSpec] | None = Field(default=None, max_length=32)
    guardrails: GuardrailSpec | None = None

    @field_validator("name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("name must be one line")
        if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("name must not contain control characters")
        return value

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[ToolSpec] | None) -> list[ToolSpec] | None:
        names = [t.name for t in value or []]
        if len(names) != len(set(names)):
            raise ValueError("tool names must be unique")
        return value

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True, exclude_none=True)
        if self.tools is not None:
            data["tools"] = [t.model_dump(exclude_none=True) for t in self.tools]
        if self.guardrails is not None:
            data["guardrails"] = self.guardrails.model_dump(exclude_none=True)
        return data


class CharacterUpdate(CharacterFields):
    disabled: bool | None = Field(
        default=None, description="true: no new sessions (see the kill switch); false: re-enable"
    )


class Character(BaseModel):
    id: str
    name: str
    system_prompt: str
    greeting: str
    knowledge: str
    language: str
    voice: str
    tools: list[dict[str, Any]]
    guardrails: dict[str, Any]
    sample: bool
    disabled: bool
    rig_source: str = Field(description="detected, manual, or needs_rig (no face points yet)")
    status: Literal["ready", "needs_rig"] = Field(
        description="needs_rig: place the face points (GET/PUT .../rig) before it can talk"
    )
    rig_problem: str | None = Field(
        default=None, description="on creation: why the face points must be placed by hand"
    )
    tenant: str = Field(description="who owns it: the tenant of the key that created it")
    preview_url: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: CharacterRecord, *, rig_problem: str | None = None) -> Character:
        return cls(
            id=r.id, name=r.name, system_prompt=r.system_prompt, greeting=r.greeting,
            knowledge=r.knowledge, language=r.language, voice=r.voice, tools=list(r.tools),
            guardrails=r.guardrails,
            sample=r.sample, disabled=r.disabled, rig_source=r.rig_source, tenant=r.tenant,
            status="needs_rig" if r.rig_source == "needs_rig" else "ready",
            rig_problem=rig_problem,
            preview_url=f"/v1/characters/{r.id}/preview.jpg",
            created_at=utc(r.created_at), updated_at=utc(r.updated_at),
        )  # fmt: skip

    def for_public(self) -> Character:
        """What a publishable key may read: the key sits in a web page for anyone to copy, so
        the persona, knowledge, guardrails and how tools are wired (webhook URLs, secret names)
        stay private; a tool shows only its name, kind and description."""
        tools = [{k: t[k] for k in ("name", "kind", "description") if k in t} for t in self.tools]
        return self.model_copy(
            update={"system_prompt": "", "knowledge": "", "guardrails": {}, "tools": tools}
        )


class CharacterList(BaseModel):
    characters: list[Character]
    next_cursor: str | None


class Point(Strict):
    x: float = Field(ge=0, le=100_000)
    y: float = Field(ge=0, le=100_000)


class RigPoints(Strict):
    """Hand-placed points in the character's photo, in pixels (see ``talkie.rig.manual``)."""

    points: dict[str, Point] = Field(min_length=1, max_length=40)


class RigPointInfo(BaseModel):
    name: str
    required: bool
    where: str


class RigInfo(BaseModel):
    """What a point editor needs: the character's face points (placed, detected, or a first
    guess), the photo's size, what each point is, and the face mesh's triangles and outlines
    (indices into ``RigPreview.landmarks``)."""

    character_id: str
    status: Literal["ready", "needs_rig"]
    source: Literal["detected", "manual", "guess"]
    guess: str | None = Field(
        default=None, description="for a guess: features (eyes and mouth found), eyes, proportions"
    )
    image_width: int
    image_height: int
    image_url: str
    points: dict[str, Point]
    point_info: list[RigPointInfo]
    triangles: list[tuple[int, int, int]]
    outlines: dict[str, list[int]]


class RigPreview(BaseModel):
    """The face mesh fitted through the points (478 landmarks, photo pixels) and, unless asked
    not to, a short test animation as JPEG data URLs."""

    landmarks: list[tuple[float, float]]
    frames: list[str]
    frame_names: list[str]


# -- sessions --


class SessionCreate(Strict):
    character_id: str = ID
    end_user_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="your id for the person talking (no personal data needed)",
    )  # fmt: skip
    remember: bool = Field(
        default=False,
        description="opt-in: the character remembers this end user across sessions "
        "(needs end_user_id; forget with DELETE /v1/end-users/{end_user_id}/memories)",
    )

    @model_validator(mode="after")
    def _remember_needs_a_person(self) -> SessionCreate:
        if self.remember and not self.end_user_id:
            raise ValueError("end_user_id is required when remember is true")
        return self


class Session(BaseModel):
    id: str
    character_id: str
    status: Literal["pending", "live", "ended"]
    end_user_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    turns: int
    remember: bool
    tenant: str = Field(description="who owns it: the tenant of the key that created it")

    @classmethod
    def of(cls, r: SessionRecord) -> Session:
        return cls(
            id=r.id, character_id=r.character_id,
            status=r.status,  # type: ignore[arg-type]
            end_user_id=r.end_user_id, created_at=utc(r.created_at),
            started_at=utc(r.started_at), ended_at=utc(r.ended_at),
            end_reason=r.end_reason, turns=r.turns, remember=r.remember, tenant=r.tenant,
        )  # fmt: skip


class SessionCreated(BaseModel):
    session: Session
    token: str = Field(description="short-lived session token for the browser (Bearer)")
    token_expires_at: datetime
    offer_url: str
    ice_servers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="STUN/TURN servers for the browser's RTCPeerConnection (empty on a LAN)",
    )


class SessionList(BaseModel):
    sessions: list[Session]
    next_cursor: str | None


class Offer(Strict):
    sdp: str = Field(min_length=1, max_length=100_000)
    type: Literal["offer"]
    preroll: bool = Field(
        False,
        description="The client will send what the microphone heard while it connected, first "
        'thing on the events channel: {"type": "preroll", "sample_rate": 16000, "samples": N}, '
        "then N 16-bit little-endian samples as binary messages. Until it has, the live "
        "microphone is held back (at most a few seconds if it does not come).",
    )


class Answer(BaseModel):
    sdp: str
    type: str
    session_id: str


class TranscriptLine(BaseModel):
    turn: int
    speaker: Literal["user", "character"]
    text: str
    at: datetime
    interrupted: bool
    typed: bool
    backchannel: bool = Field(
        False, description='a listener response ("mm-hm", "yeah") said over the character'
    )

    @classmethod
    def of(cls, e: TranscriptEntry) -> TranscriptLine:
        return cls(
            turn=e.turn, speaker=e.speaker,  # type: ignore[arg-type]
            text=e.text, at=utc(e.at), interrupted=e.interrupted, typed=e.typed,
            backchannel=e.backchannel,
        )  # fmt: skip


class Transcript(BaseModel):
    session_id: str
    lines: list[TranscriptLine]


class ToolCallTrace(BaseModel):
    """One tool call of a turn (never its arguments, result or secrets)."""

    name: str
    kind: Literal["ui", "webhook", "unknown"]
    ok: bool
    reason: str = Field(
        description='why it failed ("" when ok): timeout, refused (network policy), arguments, '
        "client (the page's handler said no), http, dns, connect, unknown_tool, cancelled..."
    )
    elapsed_ms: float

    @classmethod
    def of(cls, entry: dict[str, Any]) -> ToolCallTrace | None:
        kind = entry.get("kind")
        try:
            return cls(
                name=str(entry.get("name", ""))[:64],
                kind=kind if kind in ("ui", "webhook") else "unknown",
                ok=bool(entry.get("ok")), reason=str(entry.get("reason") or "")[:40],
                elapsed_ms=float(entry.get("elapsed_ms") or 0.0),
            )  # fmt: skip
        except (TypeError, ValueError):
            return None


class TurnTrace(BaseModel):
    turn: int
    latency: float | None = Field(description="end of user speech -> answer audio, seconds")
    interrupted: bool
    error: str
    marks: dict[str, float] = Field(description="stage -> seconds on the session's media clock")
    tools: list[ToolCallTrace] = Field(
        default_factory=list, description="the turn's tool calls, in order"
    )
    at: datetime

    @classmethod
    def of(cls, t: TraceRecord) -> TurnTrace:
        calls = [ToolCallTrace.of(e) for e in t.tools if isinstance(e, dict)]
        return cls(
            turn=t.turn, latency=t.latency, interrupted=t.interrupted, error=t.error,
            marks=t.marks, tools=[c for c in calls if c is not None], at=utc(t.at),
        )  # fmt: skip


class Traces(BaseModel):
    session_id: str
    turns: list[TurnTrace]


# -- keys --


class KeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Literal["admin", "characters", "sessions"]] = Field(min_length=1, max_length=3)
    publishable: bool = False
    origins: list[str] = Field(default_factory=list, max_length=20)
    tenant: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="whose characters and sessions the key works with: an existing tenant "
        "(e.g. the one of a secret key, for its site's publishable key), or a new one; "
        "omitted: a new tenant named after the key (admin keys: always 'admin')",
    )  # fmt: skip
    characters: list[str] = Field(
        default_factory=list, max_length=100,
        description="publishable keys only: the characters (of its tenant) it may use",
    )  # fmt: skip

    @field_validator("characters")
    @classmethod
    def _character_ids(cls, value: list[str]) -> list[str]:
        if any(not 1 <= len(c) <= 64 for c in value):
            raise ValueError("each character id is 1 to 64 characters")
        return value

    @field_validator("origins")
    @classmethod
    def _short_origins(cls, value: list[str]) -> list[str]:
        if any(len(o) > 300 for o in value):
            raise ValueError("each origin is at most 300 characters")
        return value


class ApiKey(BaseModel):
    id: str
    name: str
    kind: Literal["secret", "publishable"]
    scopes: list[str]
    origins: list[str]
    tenant: str
    characters: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, r: ApiKeyRecord) -> ApiKey:
        return cls(
            id=r.id, name=r.name, kind=r.kind,  # type: ignore[arg-type]
            scopes=sorted(r.scopes), origins=list(r.origins), tenant=r.tenant,
            characters=list(r.characters), created_at=utc(r.created_at),
            last_used_at=utc(r.last_used_at), revoked=r.revoked_at is not None,
        )  # fmt: skip


class KeyCreated(BaseModel):
    key: ApiKey
    secret: str = Field(description="the full key; shown once, store it now")


class KeyList(BaseModel):
    keys: list[ApiKey]


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    sessions: int
    max_sessions: int


class Version(BaseModel):
    version: str
    api: Literal["v1"]
    schema_version: int


def utc(t: float | None) -> Any:
    """Epoch seconds -> an aware UTC datetime (None stays None)."""
    return None if t is None else datetime.fromtimestamp(t, UTC)


class SessionsEnded(BaseModel):
    character_id: str
    ended: list[str] = Field(description="ids of the sessions that were ended")
    disabled: bool


class Memory(BaseModel):
    character_id: str
    end_user_id: str
    notes: str
    updated_at: datetime


class MemoriesDeleted(BaseModel):
    end_user_id: str
    deleted: int
