"""What the /v1 API returns, as the Python client gives it: frozen dataclasses (lists become
tuples, times are aware datetimes). Re-exported by ``talkie.client``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict


@dataclass(frozen=True)
class Health:
    status: str
    version: str
    sessions: int
    max_sessions: int


@dataclass(frozen=True)
class Version:
    version: str
    api: str
    schema_version: int


@dataclass(frozen=True)
class Character:
    id: str
    name: str
    system_prompt: str
    greeting: str
    knowledge: str
    language: str
    voice: str
    tools: tuple[dict[str, Any], ...]
    sample: bool
    rig_source: str  # detected, manual, needs_rig
    preview_url: str  # relative to the server's URL
    created_at: datetime
    updated_at: datetime
    status: str = "ready"  # needs_rig: place its face points (rerig) before it can talk
    rig_problem: str | None = None  # on creation: why the points must be placed by hand


class CharacterFields(TypedDict, total=False):
    """What ``characters.create`` and ``characters.update`` accept (all optional)."""

    name: str | None
    system_prompt: str | None
    greeting: str | None
    knowledge: str | None  # facts the character may use, one per line
    language: str | None  # e.g. en, de, pt-BR
    voice: str | None  # piper | espeak[:VOICE]
    tools: Sequence[Mapping[str, Any]] | None  # tool declarations (see the API docs)
    guardrails: Mapping[str, Any] | None  # blocked_topics, blocked_words, refusal, moderation


@dataclass(frozen=True)
class CharacterPage:
    characters: tuple[Character, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class Session:
    id: str
    character_id: str
    status: str  # pending | live | ended
    end_user_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    turns: int


@dataclass(frozen=True)
class SessionPage:
    sessions: tuple[Session, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class SessionCreated:
    """A new (pending) session and the short-lived token the browser connects with."""

    session: Session
    token: str = field(repr=False)
    token_expires_at: datetime
    offer_url: str  # relative to the server's URL


@dataclass(frozen=True)
class Answer:
    sdp: str = field(repr=False)
    type: str
    session_id: str


@dataclass(frozen=True)
class TranscriptLine:
    turn: int
    speaker: str  # user | character
    text: str
    at: datetime
    interrupted: bool
    typed: bool
    backchannel: bool = False


@dataclass(frozen=True)
class Transcript:
    session_id: str
    lines: tuple[TranscriptLine, ...]


@dataclass(frozen=True)
class TurnTrace:
    turn: int
    latency: float | None  # end of user speech -> answer audio, seconds
    interrupted: bool
    error: str
    marks: dict[str, float]  # stage -> seconds on the session's media clock
    at: datetime


@dataclass(frozen=True)
class Traces:
    session_id: str
    turns: tuple[TurnTrace, ...]


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    kind: str  # secret | publishable
    scopes: tuple[str, ...]
    origins: tuple[str, ...]
    tenant: str  # whose characters and sessions it works with ("admin": the operator's)
    characters: tuple[str, ...]  # a publishable key's allowed characters (empty: all)
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class KeyCreated:
    key: ApiKey
    secret: str = field(repr=False)  # the full key: shown once by the server, store it now
