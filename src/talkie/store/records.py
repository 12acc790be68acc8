"""What the store holds, as frozen records (rows decoded: JSON parsed, scopes split)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The tenant of the server's operator: admin keys, the bundled web page's key, the bundled
# samples, and everything that existed before ownership (migration 6) belong to it.
ADMIN_TENANT = "admin"


@dataclass(frozen=True)
class CharacterRecord:
    id: str
    name: str
    system_prompt: str
    greeting: str
    knowledge: str
    language: str
    voice: str
    tools: tuple[dict[str, Any], ...]
    image_sha: str
    rig_sha: str
    rig_source: str
    sample: bool
    owner_key: str | None
    created_at: float
    updated_at: float
    disabled: bool = False  # the kill switch: no new sessions
    guardrails: dict[str, Any] = field(default_factory=dict)  # talkie.brain.guardrails policy
    tenant: str = field(kw_only=True)  # who owns it: the tenant of the key that created it


# The character fields a client may set (create/update), with the column they map to.
CHARACTER_FIELDS = (
    "name", "system_prompt", "greeting", "knowledge", "language", "voice", "tools", "disabled",
    "guardrails",
)  # fmt: skip


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    kind: str  # "secret" | "publishable"
    scopes: frozenset[str]
    origins: tuple[str, ...]
    builtin: bool
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    secret_hash: str = field(repr=False, default="")
    # Whose resources the key sees and creates (admin keys see every tenant's).
    tenant: str = field(kw_only=True)
    # Publishable keys may be limited to these characters (empty: all of their tenant's).
    characters: tuple[str, ...] = field(kw_only=True, default=())

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    character_id: str
    key_id: str | None
    end_user_id: str | None
    status: str  # pending | live | ended
    created_at: float
    started_at: float | None
    ended_at: float | None
    end_reason: str | None
    turns: int
    remember: bool = False  # the character may remember this end user across sessions
    tenant: str = field(kw_only=True)  # the tenant of the key that created it


@dataclass(frozen=True)
class TranscriptEntry:
    session_id: str
    turn: int
    speaker: str  # user | character
    text: str
    at: float
    interrupted: bool = False
    typed: bool = False
    backchannel: bool = False  # "mm-hm" said over the character: recorded, not a turn


@dataclass(frozen=True)
class TraceRecord:
    session_id: str
    turn: int
    latency: float | None
    interrupted: bool
    error: str
    marks: dict[str, float]
    at: float
    # the turn's tool calls: {name, kind, ok, reason, elapsed_ms} (migration 5)
    tools: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class MemoryRecord:
    character_id: str
    end_user_id: str
    notes: str
    updated_at: float


@dataclass(frozen=True)
class VoiceRecord:
    id: str
    name: str
    kind: str  # design | matched | cloned | remote
    spec: str  # the load_tts spec ("" for a cloned voice: built from its recording at use)
    params: dict[str, Any]
    sample_sha: str | None
    consent: str | None
    consent_at: float | None
    owner_key: str | None
    created_at: float
    updated_at: float
