"""Characters as the server keeps them: records in the database, photo and rig in media storage.

The bundled samples are seeded at startup (read-only, rigged on first use); uploaded characters
are rigged at creation, so a broken photo is refused before anything is stored. A photo without
a usable face (a drawing, an animal, a misread face) is kept in the ``needs_rig`` state until a
person places its face points (``talkie.server.rigging``); it cannot talk before. Live sessions get
``talkie.session.character.Character`` objects, loaded from the stored rig (a few milliseconds)
and kept in a small cache.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkie.brain.guardrails import GuardrailPolicy
from talkie.brain.kb import KnowledgeBase, Passage
from talkie.brain.persona import Persona
from talkie.brain.tools import Tool
from talkie.errors import InvalidInputError, NoFaceFoundError
from talkie.media.image import decode_image_bytes
from talkie.render.framing import frame_rig
from talkie.rig import CharacterRig, build_rig
from talkie.rig.model import load_rig
from talkie.server.errors import ApiError
from talkie.session.character import SAMPLES_DIR, Character, discover_samples
from talkie.store import ADMIN_TENANT, CharacterRecord, MediaStore, Page, Store

log = logging.getLogger(__name__)

PREVIEW_SIZE = (640, 360)
_CACHE_SIZE = 16
NEEDS_RIG = "needs_rig"  # rig_source of a character waiting for hand-placed face points


@dataclass(frozen=True)
class Created:
    """A new character, and why it needs face points placed by hand (None: it is rigged)."""

    record: CharacterRecord
    rig_problem: str | None = None


class CharacterService:
    """Create, read, update, delete and load characters. Blocking: call from worker threads,
    except the ``*_async`` helpers."""

    def __init__(
        self, *, store: Store, media: MediaStore, samples_dir: Path | None = SAMPLES_DIR,
        max_concurrent_rigs: int = 2, renderer: str = "",
    ) -> None:  # fmt: skip
        self.store = store
        self.media = media
        self._samples_dir = samples_dir
        self.renderer = renderer  # what draws this server's characters (load_renderer spec)
        self._loaded: OrderedDict[tuple[str, float], Character] = OrderedDict()
        self._previews: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._rig_locks: dict[str, threading.Lock] = {}
        # rigging is CPU-heavy: more uploads than this wait their turn
        self._rig_slots = threading.BoundedSemaphore(max_concurrent_rigs)
        # the knowledge base (set by the app; None: characters have no documents)
        self.knowledge: Callable[[], KnowledgeBase] | None = None
        # turns a character's voice ("voice:ID") into an engine spec (set by the app)
        self.voice_resolver: Callable[[str], str] = lambda spec: spec

    def seed_samples(self) -> None:
        """Put the bundled samples in the database (refreshing their persona from the files)."""
        if self._samples_dir is None:
            return
        for info in discover_samples(self._samples_dir):
            image_sha = self.media.put(info.image.read_bytes())
            existing = self.store.get_character(info.id)
            now = time.time()
            rig_sha = existing.rig_sha if existing and existing.image_sha == image_sha else ""
            self.store.put_character(
                CharacterRecord(
                    id=info.id, name=info.name, system_prompt=info.persona.system_prompt,
                    greeting=info.persona.greeting, knowledge=info.persona.knowledge,
                    language=info.persona.language, voice=info.voice, tools=(),
                    image_sha=image_sha, rig_sha=rig_sha, rig_source="detected", sample=True,
                    owner_key=None, created_at=existing.created_at if existing else now,
                    updated_at=now, disabled=existing.disabled if existing else False,
                    tenant=ADMIN_TENANT,
                )
            )  # fmt: skip

    # -- create / read / update / delete --

    def create(
        self, image: bytes, fields: Mapping[str, Any], *, owner_key: str | None, tenant: str,
        progress: Callable[[str], None] | None = None,
    ) -> Created:  # fmt: skip
        """Validate the fields and the photo, rig it, store everything. A photo without a usable
        face is stored too, in the ``needs_rig`` state (its points are placed by hand later)."""
        name = str(fields.get("name") or "").strip() or "My character"
        persona = _persona({**_defaults(name), **fields, "name": name})
        picture = decode_image_bytes(image, name="image")
        problem: str | None = None
        try:
            rig = self._build(lambda: build_rig(picture))
            rig_sha, rig_source = self._put_rig(rig), _rig_source(rig)
        except NoFaceFoundError as exc:  # a drawing, an animal, a misread or too small face
            rig_sha, rig_source, problem = "", NEEDS_RIG, str(exc)
        now = time.time()
        record = CharacterRecord(
            id="ch_" + secrets.token_hex(8), name=persona.name,
            system_prompt=persona.system_prompt, greeting=persona.greeting,
            knowledge=persona.knowledge, language=persona.language,
            voice=str(fields.get("voice") or "piper"), tools=tuple(fields.get("tools") or ()),
            guardrails=dict(fields.get("guardrails") or {}),
            image_sha=self.media.put(image), rig_sha=rig_sha,
            rig_source=rig_source, sample=False, owner_key=owner_key, tenant=tenant,
            created_at=now, updated_at=now,
        )  # fmt: skip
        self.store.put_character(record)
        return Created(record, problem)

    def get(self, character_id: str) -> CharacterRecord:
        record = self.store.get_character(character_id)
        if record is None:
            raise ApiError(404, "unknown_character", f"no character with id {character_id[:80]!r}")
        return record

    def list(
        self, *, limit: int, cursor: str | None, tenant: str | None = None,
        ids: tuple[str, ...] | None = None,
    ) -> Page:  # fmt: skip
        return self.store.list_characters(limit=limit, cursor=cursor, tenant=tenant, ids=ids)

    def update(self, character_id: str, changes: Mapping[str, Any]) -> CharacterRecord:
        record = self.writable(character_id)
        merged = {
            "name": record.name, "system_prompt": record.system_prompt,
            "greeting": record.greeting, "knowledge": record.knowledge,
            "language": record.language, **changes,
        }  # fmt: skip
        _persona(merged)  # the whole persona must stay valid
        return self.store.update_character(character_id, changes)

    def set_disabled(self, character_id: str, disabled: bool) -> CharacterRecord:
        """The kill switch's second half (samples too): no new sessions while disabled."""
        self.get(character_id)
        return self.store.update_character(character_id, {"disabled": disabled})

    def delete(self, character_id: str) -> None:
        self.writable(character_id)
        self.store.delete_character(character_id)
        if self.knowledge is not None:
            self.knowledge().delete_character(character_id)
        self.media.collect_garbage(self.store.media_in_use())

    def rerig(
        self, character_id: str, points: Mapping[str, tuple[float, float]]
    ) -> CharacterRecord:
        """Rebuild the rig from hand-placed points on the character's own photo."""
        from talkie.rig.manual import build_rig_from_points

        record = self.writable(character_id)
        image = self.photo(record)
        rig = self._build(lambda: build_rig_from_points(image, points))
        updated = self.store.update_character(
            character_id, {"rig_sha": self._put_rig(rig), "rig_source": _rig_source(rig)}
        )
        self.media.collect_garbage(self.store.media_in_use())
        return updated

    # -- for live sessions and previews --

    def load(self, character_id: str) -> Character:
        """The character, ready for a live session (rigging a sample on its first use)."""
        record = self.get(character_id)
        require_rig(record)
        cache_key = (record.id, record.updated_at)
        with self._lock:
            cached = self._loaded.get(cache_key)
            if cached is not None:
                self._loaded.move_to_end(cache_key)
                return cached
        rig = self._rig(record)
        character = Character(
            id=record.id, name=record.name, rig=rig, persona=_persona(_persona_fields(record)),
            voice=self.voice_resolver(record.voice), sample=record.sample, renderer=self.renderer,
            knowledge=_Documents(self.knowledge, record.id) if self.knowledge else None,
            guardrails=GuardrailPolicy.from_mapping(record.guardrails) if record.guardrails
            else None,
            tools=_tools(record),
        )  # fmt: skip
        with self._lock:
            self._loaded[cache_key] = character
            while len(self._loaded) > _CACHE_SIZE:
                self._loaded.popitem(last=False)
        return character

    async def load_async(self, character_id: str) -> Character:
        return await asyncio.to_thread(self.load, character_id)

    def preview(self, character_id: str) -> bytes:
        """The character as the video frames it (16:9, 640x360), as JPEG."""
        record = self.get(character_id)
        key = record.rig_sha or record.image_sha
        with self._lock:
            if key in self._previews:
                return self._previews[key]
        if record.rig_source == NEEDS_RIG:  # no face points yet: the photo, letterboxed
            canvas = _letterbox(self.photo(record), PREVIEW_SIZE)
        else:
            canvas = frame_rig(self._rig(record), PREVIEW_SIZE).canvas
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        if not ok:  # pragma: no cover - only for invalid arrays
            raise RuntimeError("could not encode the preview")
        jpeg = bytes(data.tobytes())
        with self._lock:
            self._previews[key] = jpeg
            while len(self._previews) > 256:
                self._previews.popitem(last=False)
        return jpeg

    # -- internals --

    def writable(self, character_id: str) -> CharacterRecord:
        """The character, if it may be changed (403 ``read_only`` for a bundled sample)."""
        return self.check_writable(self.get(character_id))

    @staticmethod
    def check_writable(record: CharacterRecord) -> CharacterRecord:
        if record.sample:
            raise ApiError(
                403, "read_only", f"{record.id!r} is a bundled sample and cannot be changed; "
                "create your own character from a photo",
            )  # fmt: skip
        return record

    def photo(self, record: CharacterRecord) -> np.ndarray:
        """The character's photo as RGB, oriented as a viewer shows it (the frame of reference
        of hand-placed points)."""
        return decode_image_bytes(self.media.get(record.image_sha), name="the stored photo")

    def _rig(self, record: CharacterRecord) -> CharacterRig:
        require_rig(record)
        if record.rig_sha and self.media.has(record.rig_sha):
            return load_rig(self.media.path(record.rig_sha))
        # a sample's first use (or a rig file lost from disk): rig the stored photo, once
        with self._lock:
            lock = self._rig_locks.setdefault(record.id, threading.Lock())
        with lock:
            fresh = self.store.get_character(record.id) or record
            if fresh.rig_sha and self.media.has(fresh.rig_sha):
                return load_rig(self.media.path(fresh.rig_sha))
            image = decode_image_bytes(self.media.get(record.image_sha), name="the stored photo")
            rig = self._build(lambda: build_rig(image))
            self.store.update_character(record.id, {"rig_sha": self._put_rig(rig)})
            return rig

    def run_rigging(self, make: Callable[[], CharacterRig]) -> CharacterRig:
        """Run a rigging job (CPU-heavy) within the server's limit of concurrent ones."""
        return self._build(make)

    def _build(self, make: Callable[[], CharacterRig]) -> CharacterRig:
        with self._rig_slots:
            return make()

    def _put_rig(self, rig: CharacterRig) -> str:
        with tempfile.TemporaryDirectory(prefix="talkie-rig-") as tmp:
            path = Path(tmp) / "rig.zip"
            rig.save(path)
            return self.media.put(path.read_bytes())


class _Documents:
    """A character's documents as a brain's ``Retriever``. A character without documents costs
    nothing: the embedding model is not loaded to search an empty index."""

    def __init__(self, knowledge: Callable[[], KnowledgeBase], character_id: str) -> None:
        self._knowledge = knowledge
        self._character_id = character_id

    def search(self, query: str, k: int = 3) -> list[Passage]:
        kb = self._knowledge()
        if not kb.list_documents(self._character_id):
            return []
        return kb.search(self._character_id, query, k=k)


def _tools(record: CharacterRecord) -> tuple[Tool, ...]:
    """The record's tool declarations, validated again (the brain trusts nothing from storage);
    one that no longer validates is left out with a warning rather than breaking the session."""
    tools: list[Tool] = []
    for declaration in record.tools:
        try:
            tool = Tool.from_dict(declaration)
        except InvalidInputError as exc:
            log.warning("character %s: tool left out: %s", record.id, exc)
            continue
        if all(t.name != tool.name for t in tools):
            tools.append(tool)
    return tuple(tools)


def require_rig(record: CharacterRecord) -> None:
    """409 ``needs_rig`` for a character whose face points are not placed yet."""
    if record.rig_source == NEEDS_RIG:
        raise ApiError(
            409, NEEDS_RIG, f"{record.id} has no face points yet: place them in the point editor "
            f"(PUT /v1/characters/{record.id}/rig) before talking to it",
        )  # fmt: skip


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(
        image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )  # fmt: skip
    out = np.full((h, w, 3), 32, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def _rig_source(rig: CharacterRig) -> str:
    """ "manual" (hand-placed points) or "detected" (whichever detector found the face)."""
    return "manual" if rig.face.source == "manual" else "detected"


def _defaults(name: str) -> dict[str, str]:
    return {
        "system_prompt": (
            f"You are {name}, a friendly character brought to life from a photo. "
            "Answer briefly, in one to three spoken sentences."
        ),
        "greeting": f"Hi, I'm {name}! What would you like to talk about?",
    }


def _persona_fields(record: CharacterRecord) -> dict[str, Any]:
    return {
        "name": record.name, "system_prompt": record.system_prompt, "greeting": record.greeting,
        "knowledge": record.knowledge, "language": record.language,
    }  # fmt: skip


def _persona(fields: Mapping[str, Any]) -> Persona:
    """A ``Persona`` from API fields; its validation errors become 400s naming the field."""
    try:
        return Persona(
            name=str(fields["name"]),
            system_prompt=str(fields.get("system_prompt") or ""),
            greeting=str(fields.get("greeting") or ""),
            knowledge=str(fields.get("knowledge") or ""),
            language=str(fields.get("language") or "en"),
        )
    except InvalidInputError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from exc
