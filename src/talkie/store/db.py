"""The Talkie database: characters, API keys, sessions, transcripts and per-turn traces.

``Store`` is synchronous (SQLAlchemy Core); the server calls it from worker threads. SQLite runs
in WAL mode with ``synchronous=NORMAL``: every committed transaction survives the process being
killed (SIGKILL), and readers never block the writer. Any other SQLAlchemy URL (PostgreSQL) works
the same way for larger deployments.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    and_,
    cast,
    create_engine,
    delete,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.store.records import (
    CHARACTER_FIELDS,
    ApiKeyRecord,
    CharacterRecord,
    MemoryRecord,
    Page,
    SessionRecord,
    TraceRecord,
    TranscriptEntry,
    VoiceRecord,
)
from talkie.store.schema import (
    api_keys_table,
    characters_table,
    memories_table,
    migrate,
    sessions_table,
    settings_table,
    traces_table,
    transcript_table,
    voices_table,
)

log = logging.getLogger(__name__)
MAX_TRACE_TOOLS = 32  # tool calls kept per turn trace


class Store:
    """All persistent state except media bytes (``MediaStore``). Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = _make_engine(url)
            with self.engine.begin() as conn:
                applied = migrate(conn)
        except ImportError as exc:
            raise MissingDependencyError(
                f"the database driver for {_safe_url(url)} is not installed ({exc.name}); "
                f"install it, e.g. `pip install {exc.name or 'the driver'}`"
            ) from exc
        except (ArgumentError, OperationalError) as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise InvalidInputError(
                f"cannot open the database {_safe_url(url)}: {detail.replace(url, _safe_url(url))}"
            ) from exc
        if applied:
            log.info("database %s: applied migrations %s", _safe_url(url), applied)

    @classmethod
    def in_folder(cls, folder: Path) -> Store:
        """The default SQLite database, ``FOLDER/talkie.db``."""
        folder.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{folder / 'talkie.db'}")

    def close(self) -> None:
        self.engine.dispose()

    # -- settings --

    def setting(self, name: str, default: str) -> str:
        """The stored value of ``name``, storing ``default`` first if there is none."""
        with self.engine.begin() as conn:
            value = conn.execute(
                select(settings_table.c.value).where(settings_table.c.name == name)
            ).scalar()
            if value is None:
                conn.execute(settings_table.insert().values(name=name, value=default))
                return default
            return str(value)

    def set_setting(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(settings_table).where(settings_table.c.name == name).values(value=value)
            )
            if not done.rowcount:
                conn.execute(settings_table.insert().values(name=name, value=value))

    # -- characters --

    def put_character(self, record: CharacterRecord) -> None:
        row = _character_row(record)
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(characters_table.c.id).where(characters_table.c.id == record.id)
            ).first()
            if exists:
                conn.execute(
                    update(characters_table).where(characters_table.c.id == record.id).values(row)
                )
            else:
                conn.execute(characters_table.insert().values(row))

    def get_character(self, character_id: str) -> CharacterRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(characters_table).where(characters_table.c.id == character_id)
            ).first()
        return _character(row) if row else None

    def list_characters(
        self, *, limit: int, cursor: str | None = None, tenant: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> Page:  # fmt: skip
        """Samples first, then by creation time (stable under inserts: keyset pagination).
        ``tenant``: only that tenant's characters; ``ids``: only these (``None``: all)."""
        t = characters_table
        sample_rank = cast(t.c.sample, Integer)  # booleans only compare by equality in SQL
        query = select(t).order_by(sample_rank.desc(), t.c.created_at, t.c.id).limit(limit + 1)
        if tenant is not None:
            query = query.where(t.c.tenant == tenant)
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        if cursor:
            sample, created, cid = _decode_cursor(cursor)
            rank = int(sample)
            query = query.where(
                or_(
                    sample_rank < rank,
                    and_(sample_rank == rank, t.c.created_at > created),
                    and_(sample_rank == rank, t.c.created_at == created, t.c.id > cid),
                )
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [_character(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = items[-1] if items else None
        next_cursor = (
            _encode_cursor(last.sample, last.created_at, last.id) if more and last else None
        )
        return Page(items, next_cursor)

    def update_character(self, character_id: str, changes: Mapping[str, Any]) -> CharacterRecord:
        values = {k: v for k, v in changes.items() if k in CHARACTER_FIELDS or k in _RIG_FIELDS}
        if "tools" in values:
            values["tools"] = json.dumps(list(values["tools"]))
        if "guardrails" in values:
            values["guardrails"] = json.dumps(dict(values["guardrails"]))
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                update(characters_table).where(characters_table.c.id == character_id).values(values)
            )
        record = self.get_character(character_id)
        if record is None:
            raise KeyError(character_id)
        return record

    def delete_character(self, character_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(characters_table).where(characters_table.c.id == character_id)
            )
        return bool(result.rowcount)

    def media_in_use(self) -> set[str]:
        """Every media hash a character or a voice refers to (for garbage collection)."""
        t = characters_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.image_sha, t.c.rig_sha)).all()
            samples = conn.execute(select(voices_table.c.sample_sha)).scalars().all()
        return {h for row in rows for h in row if h} | {h for h in samples if h}

    # -- voices --

    def put_voice(self, record: VoiceRecord) -> None:
        row = {k: getattr(record, k) for k in voices_table.c.keys()}  # noqa: SIM118
        row["params"] = json.dumps(record.params)
        with self.engine.begin() as conn:
            conn.execute(voices_table.insert().values(row))

    def get_voice(self, voice_id: str) -> VoiceRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(voices_table).where(voices_table.c.id == voice_id)).first()
        return _voice(row) if row else None

    def list_voices(self, *, owner_key: str | None, everyone: bool = False) -> list[VoiceRecord]:
        """The voices ``owner_key`` made (every voice with ``everyone``), oldest first."""
        query = select(voices_table).order_by(voices_table.c.created_at, voices_table.c.id)
        if not everyone:
            query = query.where(voices_table.c.owner_key == owner_key)
        with self.engine.connect() as conn:
            return [_voice(row) for row in conn.execute(query)]

    def delete_voice(self, voice_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(delete(voices_table).where(voices_table.c.id == voice_id))
        return bool(result.rowcount)

    def characters_with_voice(self, spec: str) -> list[str]:
        t = characters_table
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.c.id).where(t.c.voice == spec)).scalars())

    # -- API keys --

    def add_key(self, record: ApiKeyRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                api_keys_table.insert().values(
                    id=record.id, name=record.name, kind=record.kind,
                    secret_hash=record.secret_hash, scopes=" ".join(sorted(record.scopes)),
                    origins=json.dumps(list(record.origins)), builtin=record.builtin,
                    created_at=record.created_at, last_used_at=None, revoked_at=None,
                    tenant=record.tenant, characters=json.dumps(list(record.characters)),
                )
            )  # fmt: skip

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys_table).where(api_keys_table.c.id == key_id)).first()
        return _key(row) if row else None

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        query = select(api_keys_table).order_by(api_keys_table.c.created_at)
        if not include_revoked:
            query = query.where(api_keys_table.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(query).all()]

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(api_keys_table)
                .where(api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return bool(result.rowcount)

    def touch_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(api_keys_table)
                .where(api_keys_table.c.id == key_id)
                .values(last_used_at=time.time())
            )

    # -- sessions --

    def add_session(self, record: SessionRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions_table.insert().values(_session_row(record)))

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions_table).where(sessions_table.c.id == session_id)
            ).first()
        return _session(row) if row else None

    def list_sessions(
        self, *, status: str | tuple[str, ...] | None = None, character_id: str | None = None,
        limit: int = 100, cursor: str | None = None, tenant: str | None = None,
    ) -> Page:  # fmt: skip
        """Newest first; ``status`` is one status or several; ``tenant``: only its sessions."""
        t = sessions_table
        query = select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit + 1)
        if tenant is not None:
            query = query.where(t.c.tenant == tenant)
        if status:
            query = query.where(t.c.status.in_([status] if isinstance(status, str) else status))
        if character_id:
            query = query.where(t.c.character_id == character_id)
        if cursor:
            _, created, sid = _decode_cursor(cursor)
            query = query.where(
                or_(t.c.created_at < created, and_(t.c.created_at == created, t.c.id < sid))
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        items = [_session(r) for r in rows[:limit]]
        last = items[-1] if items else None
        more = len(rows) > limit
        return Page(
            items, _encode_cursor(False, last.created_at, last.id) if more and last else None
        )

    def mark_session(self, session_id: str, *, status: str, reason: str | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        now = time.time()
        if status == "live":
            values["started_at"] = now
        elif status == "ended":
            values["ended_at"] = now
            values["end_reason"] = (reason or "")[:200]
        t = sessions_table
        with self.engine.begin() as conn:
            query = update(t).where(t.c.id == session_id)
            if status == "ended":  # the first end reason wins
                query = query.where(t.c.status != "ended")
            elif status == "live":  # a session that already ended stays ended
                query = query.where(t.c.status == "pending")
            conn.execute(query.values(values))

    def expire_pending(self, max_age: float) -> int:
        """End sessions created more than ``max_age`` seconds ago that never connected."""
        t = sessions_table
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.status == "pending", t.c.created_at < time.time() - max_age)
                .values(status="ended", ended_at=time.time(), end_reason="never connected")
            )
        return int(result.rowcount or 0)

    def end_stale_sessions(self, reason: str) -> int:
        """Mark sessions left pending/live by a previous server process as ended (startup)."""
        t = sessions_table
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.status != "ended")
                .values(status="ended", ended_at=time.time(), end_reason=reason)
            )
        return int(result.rowcount or 0)

    # -- transcripts and traces (one transaction per turn) --

    def record_turn(self, entries: Iterable[TranscriptEntry], trace: TraceRecord | None) -> None:
        """Write one finished turn atomically: its transcript lines and its latency trace."""
        lines = list(entries)
        session_id = trace.session_id if trace else (lines[0].session_id if lines else None)
        if session_id is None:
            return
        with self.engine.begin() as conn:
            for e in lines:
                conn.execute(
                    transcript_table.insert().values(
                        session_id=e.session_id, turn=e.turn, speaker=e.speaker, text=e.text,
                        at=e.at, interrupted=e.interrupted, typed=e.typed,
                        backchannel=e.backchannel,
                    )
                )  # fmt: skip
            if trace is not None:
                conn.execute(
                    traces_table.insert().values(
                        session_id=trace.session_id, turn=trace.turn, latency=trace.latency,
                        interrupted=trace.interrupted, error=trace.error[:2000],
                        marks=json.dumps(trace.marks), at=trace.at,
                        tools=json.dumps(trace.tools[:MAX_TRACE_TOOLS]),
                    )
                )  # fmt: skip
            conn.execute(
                update(sessions_table)
                .where(sessions_table.c.id == session_id)
                .values(turns=sessions_table.c.turns + 1)
            )

    # -- end-user memory (opt-in) --

    def get_memory(self, character_id: str, end_user_id: str) -> MemoryRecord | None:
        t = memories_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t).where(t.c.character_id == character_id, t.c.end_user_id == end_user_id)
            ).first()
        return MemoryRecord(**dict(row._mapping)) if row else None

    def put_memory(self, character_id: str, end_user_id: str, notes: str) -> None:
        t = memories_table
        with self.engine.begin() as conn:
            where = (t.c.character_id == character_id, t.c.end_user_id == end_user_id)
            done = conn.execute(update(t).where(*where).values(notes=notes, updated_at=time.time()))
            if not done.rowcount:
                conn.execute(
                    t.insert().values(
                        character_id=character_id, end_user_id=end_user_id, notes=notes,
                        updated_at=time.time(),
                    )
                )  # fmt: skip

    def delete_memories(
        self, end_user_id: str, character_id: str | None = None, *, tenant: str | None = None
    ) -> int:
        """Forget an end user (for one character, or for all of them; ``tenant``: only in that
        tenant's characters)."""
        t = memories_table
        query = delete(t).where(t.c.end_user_id == end_user_id)
        if character_id is not None:
            query = query.where(t.c.character_id == character_id)
        if tenant is not None:
            owned = select(characters_table.c.id).where(characters_table.c.tenant == tenant)
            query = query.where(t.c.character_id.in_(owned))
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    def transcript(self, session_id: str) -> list[TranscriptEntry]:
        t = transcript_table
        query = select(t).where(t.c.session_id == session_id).order_by(t.c.turn, t.c.id)
        with self.engine.connect() as conn:
            return [
                TranscriptEntry(
                    r.session_id, r.turn, r.speaker, r.text, r.at, bool(r.interrupted),
                    bool(r.typed), bool(r.backchannel),
                )
                for r in conn.execute(query).all()
            ]  # fmt: skip

    def traces(self, session_id: str) -> list[TraceRecord]:
        t = traces_table
        query = select(t).where(t.c.session_id == session_id).order_by(t.c.turn)
        with self.engine.connect() as conn:
            return [
                TraceRecord(
                    r.session_id, r.turn, r.latency, bool(r.interrupted), r.error,
                    json.loads(r.marks), r.at, json.loads(r.tools or "[]"),
                )
                for r in conn.execute(query).all()
            ]  # fmt: skip


_RIG_FIELDS = ("image_sha", "rig_sha", "rig_source")


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        if ":memory:" not in url:
            # WAL: readers do not block the writer; NORMAL sync: a commit survives the process
            # being killed (only an OS crash/power loss can roll back the last commits).
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def _safe_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, creds = head.partition("://")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"


def _encode_cursor(sample: bool, created: float, item_id: str) -> str:
    raw = json.dumps([int(sample), created, item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[bool, float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sample, created, item_id = json.loads(raw)
        return bool(sample), float(created), str(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("cursor: not a cursor from a previous page") from exc


def _character_row(r: CharacterRecord) -> dict[str, Any]:
    row = {k: getattr(r, k) for k in characters_table.c.keys()}  # noqa: SIM118 (column names)
    row["tools"] = json.dumps(list(r.tools))
    row["guardrails"] = json.dumps(r.guardrails)
    return row


def _character(row: Row[Any]) -> CharacterRecord:
    data = dict(row._mapping)
    data["tools"] = tuple(json.loads(data["tools"] or "[]"))
    data["sample"] = bool(data["sample"])
    data["disabled"] = bool(data["disabled"])
    data["guardrails"] = json.loads(data["guardrails"] or "{}")
    return CharacterRecord(**data)


def _key(row: Row[Any]) -> ApiKeyRecord:
    d = row._mapping
    return ApiKeyRecord(
        id=d["id"], name=d["name"], kind=d["kind"], scopes=frozenset(d["scopes"].split()),
        origins=tuple(json.loads(d["origins"] or "[]")), builtin=bool(d["builtin"]),
        created_at=d["created_at"], last_used_at=d["last_used_at"], revoked_at=d["revoked_at"],
        secret_hash=d["secret_hash"], tenant=d["tenant"],
        characters=tuple(json.loads(d["characters"] or "[]")),
    )  # fmt: skip


def _session_row(r: SessionRecord) -> dict[str, Any]:
    return {k: getattr(r, k) for k in sessions_table.c.keys()}  # noqa: SIM118 (column names)


def _session(row: Row[Any]) -> SessionRecord:
    return SessionRecord(**dict(row._mapping))


def _voice(row: Row[Any]) -> VoiceRecord:
    data = dict(row._mapping)
    data["params"] = json.loads(data["params"] or "{}")
    return VoiceRecord(**data)
