"""The database schema and its migrations (SQLAlchemy Core, so any SQLAlchemy URL works).

Migrations are numbered steps applied in order inside one transaction each; the applied versions
are recorded in ``schema_migrations``. A database written by a newer Talkie (a version we do not
know) is refused rather than silently misread. Times are UTC seconds since the epoch (floats):
portable across SQLite and PostgreSQL, and converted to ISO 8601 only at the API edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    text,
)

from talkie.errors import InvalidInputError
from talkie.store.records import ADMIN_TENANT

metadata = MetaData()

migrations_table = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("applied_at", Float, nullable=False),
)

# Server-wide settings that must survive restarts (the session-token signing secret).
settings_table = Table(
    "settings",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

characters_table = Table(
    "characters",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("system_prompt", Text, nullable=False, default=""),
    Column("greeting", Text, nullable=False, default=""),
    Column("knowledge", Text, nullable=False, default=""),
    Column("language", String(20), nullable=False, default="en"),
    Column("voice", String(100), nullable=False, default="piper"),
    Column("tools", Text, nullable=False, default="[]"),  # JSON list of tool declarations
    Column("image_sha", String(64), nullable=False),
    Column("rig_sha", String(64), nullable=False),
    Column("rig_source", String(20), nullable=False, default="detected"),
    Column("sample", Boolean, nullable=False, default=False),
    Column("owner_key", String(40), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),  # migration 2: kill switch
    Column("guardrails", Text, nullable=False, default="{}"),  # migration 3: JSON policy
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("tenant", String(64), nullable=False, default=ADMIN_TENANT),  # migration 6: owner
    Index("ix_characters_tenant", "tenant"),
)

api_keys_table = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),  # the public part of the key ("tk_<id>_...")
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # "secret" | "publishable"
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),  # space-separated
    Column("origins", Text, nullable=False, default="[]"),  # JSON list (publishable keys)
    Column("builtin", Boolean, nullable=False, default=False),  # the bundled web client's key
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    Column("tenant", String(64), nullable=False, default=ADMIN_TENANT),  # migration 6
    Column("characters", Text, nullable=False, default="[]"),  # migration 6: JSON list of ids
)

sessions_table = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("character_id", String(40), nullable=False),
    Column("key_id", String(40), nullable=True),
    Column("end_user_id", String(200), nullable=True),
    Column("status", String(20), nullable=False),  # pending | live | ended
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("end_reason", String(200), nullable=True),
    Column("turns", Integer, nullable=False, default=0),
    Column("remember", Boolean, nullable=False, default=False),  # migration 4: opt-in memory
    Column("tenant", String(64), nullable=False, default=ADMIN_TENANT),  # migration 6: owner
    Index("ix_sessions_status", "status"),
    Index("ix_sessions_character", "character_id"),
    Index("ix_sessions_tenant", "tenant"),
)

transcript_table = Table(
    "transcript_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(40), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("turn", Integer, nullable=False),
    Column("speaker", String(20), nullable=False),  # user | character
    Column("text", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("typed", Boolean, nullable=False, default=False),
    # migration 7: "mm-hm", "yeah" said over the character (recorded, not a turn)
    Column("backchannel", Boolean, nullable=False, default=False),
    Index("ix_transcript_session", "session_id", "turn"),
)

traces_table = Table(
    "turn_traces",
    metadata,
    Column(
        "session_id", String(40), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("turn", Integer, primary_key=True, autoincrement=False),
    Column("latency", Float, nullable=True),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("error", Text, nullable=False, default=""),
    Column("marks", Text, nullable=False),  # JSON {stage: seconds on the media clock}
    Column("at", Float, nullable=False),
    Column("tools", Text, nullable=False, default="[]"),  # migration 5: JSON list of tool calls
)


# What a character remembers of one end user across sessions (opt-in per session, deletable).
memories_table = Table(
    "end_user_memories",
    metadata,
    Column("character_id", String(40), primary_key=True),
    Column("end_user_id", String(200), primary_key=True),
    Column("notes", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_memories_end_user", "end_user_id"),
)


# Saved voices (designed, matched, cloned), each owned by the API key that made it. A cloned voice
# keeps its reference recording in the media store and the consent statement given for it.
voices_table = Table(
    "voices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # design | matched | cloned | remote
    Column("spec", String(400), nullable=False),  # talkie.voice.load_tts spec (not for clones)
    Column("params", Text, nullable=False, default="{}"),  # JSON: design, prompt, match report
    Column("sample_sha", String(64), nullable=True),  # cloned: the reference recording
    Column("consent", Text, nullable=True),  # cloned: the consent statement, verbatim
    Column("consent_at", Float, nullable=True),
    Column("owner_key", String(40), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_voices_owner", "owner_key"),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    tables = [
        settings_table, characters_table, api_keys_table,
        sessions_table, transcript_table, traces_table,
    ]  # fmt: skip
    metadata.create_all(conn, tables=tables)


def _add_column(conn: Connection, table: str, column: str, ddl: str) -> None:
    # A database created by migration 1 of this version already has every column (create_all
    # uses the current tables); older ones get the column added.
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def _character_kill_switch(conn: Connection) -> None:
    _add_column(conn, "characters", "disabled", "BOOLEAN NOT NULL DEFAULT FALSE")


def _character_guardrails(conn: Connection) -> None:
    _add_column(conn, "characters", "guardrails", "TEXT NOT NULL DEFAULT '{}'")


def _end_user_memory(conn: Connection) -> None:
    _add_column(conn, "sessions", "remember", "BOOLEAN NOT NULL DEFAULT FALSE")
    memories_table.create(conn, checkfirst=True)


def _trace_tools(conn: Connection) -> None:
    _add_column(conn, "turn_traces", "tools", "TEXT NOT NULL DEFAULT '[]'")


def _ownership(conn: Connection) -> None:
    """Every character, session (with its transcript and traces) and key gets a tenant. What
    exists already belongs to the admin: before this version any key could reach anything, so
    no other owner can be trusted. Keys that are not the admin's (nor the bundled page's) get a
    tenant of their own, empty: an operator hands them data by creating keys for the admin
    tenant, never by accident."""
    owner = f"VARCHAR(64) NOT NULL DEFAULT '{ADMIN_TENANT}'"
    for table in ("characters", "sessions", "api_keys"):
        _add_column(conn, table, "tenant", owner)
    _add_column(conn, "api_keys", "characters", "TEXT NOT NULL DEFAULT '[]'")
    keys = api_keys_table
    for key_id, scopes, builtin in conn.execute(select(keys.c.id, keys.c.scopes, keys.c.builtin)):
        if "admin" not in scopes.split() and not builtin:
            conn.execute(keys.update().where(keys.c.id == key_id).values(tenant=key_id))
    for index in ("ix_characters_tenant", "ix_sessions_tenant"):
        for item in (*characters_table.indexes, *sessions_table.indexes):
            if item.name == index:
                item.create(conn, checkfirst=True)


def _transcript_backchannels(conn: Connection) -> None:
    _add_column(conn, "transcript_entries", "backchannel", "BOOLEAN NOT NULL DEFAULT FALSE")


def _voices(conn: Connection) -> None:
    voices_table.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _initial),
    Migration(2, "character kill switch", _character_kill_switch),
    Migration(3, "character guardrails", _character_guardrails),
    Migration(4, "end-user memory", _end_user_memory),
    Migration(5, "tool calls in turn traces", _trace_tools),
    Migration(6, "ownership: tenants of keys, characters and sessions", _ownership),
    Migration(7, "backchannels in transcripts", _transcript_backchannels),
    Migration(8, "voices", _voices),
)
LATEST_VERSION = MIGRATIONS[-1].version


class SchemaError(InvalidInputError):
    """The database cannot be used by this version of Talkie."""


def migrate(conn: Connection) -> list[int]:
    """Apply every migration the database has not seen yet; returns the versions applied."""
    migrations_table.create(conn, checkfirst=True)
    applied = set(conn.execute(select(migrations_table.c.version)).scalars())
    unknown = sorted(v for v in applied if v > LATEST_VERSION)
    if unknown:
        raise SchemaError(
            f"the database was written by a newer Talkie (schema version {unknown[-1]}, this "
            f"version knows up to {LATEST_VERSION}); upgrade Talkie or use another database"
        )
    done: list[int] = []
    for step in MIGRATIONS:
        if step.version in applied:
            continue
        step.apply(conn)
        conn.execute(
            migrations_table.insert().values(
                version=step.version, name=step.name, applied_at=time.time()
            )
        )
        done.append(step.version)
    return done
