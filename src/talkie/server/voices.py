"""Saved voices: designed from a prompt, matched to a sample, or cloned on the operator's speech
server; each belongs to the API key that made it. A character uses one as ``voice:ID``.

Previews and matching run in one shared worker process (``VoiceWorkshop``), never in the server's
own process. A character's ``voice:ID`` is turned into a self-contained engine spec when its
session starts (``resolve``), so the session's voice process needs no database.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkie.server.auth import Principal
from talkie.server.errors import ApiError
from talkie.store import MediaStore, Store, VoiceRecord
from talkie.voice.design import VoiceDesign, design_from_prompt
from talkie.voice.workshop import VoiceWorkshop
from talkie.worker import WorkerProcess

__all__ = ["BUILTIN_VOICES", "VoiceService", "voice_id_of"]

log = logging.getLogger(__name__)

_VOICE_REF = re.compile(r"^voice:(v_[A-Za-z0-9_-]{6,40})$")
MIN_CONSENT_CHARS = 20
# Voices every caller may pick: the bundled voice and a few designs of it.
_PRESETS = (
    ("Joe (the bundled voice)", "piper", ""),
    ("Calm woman", "", "a calm female narrator"),
    ("Warm older woman", "", "a warm older woman, slow and calm"),
    ("Cheerful young woman", "", "a cheerful young woman who speaks fast"),
    ("Energetic young man, British", "", "an energetic young man with a British accent"),
    ("Deep older man", "", "a deep-voiced old man"),
)
BUILTIN_VOICES: tuple[dict[str, Any], ...] = tuple(
    {
        "id": spec or design_from_prompt(prompt)[0].to_spec(),
        "name": name,
        "kind": "builtin",
        "spec": spec or design_from_prompt(prompt)[0].to_spec(),
        "params": {"prompt": prompt, "design": design_from_prompt(prompt)[0].as_dict()}
        if prompt
        else {},
    }
    for name, spec, prompt in _PRESETS
)


def voice_id_of(spec: str) -> str | None:
    """The saved voice's id in a ``voice:ID`` reference (None for any other spec)."""
    match = _VOICE_REF.match(spec.strip())
    return match.group(1) if match else None


@dataclass
class VoiceService:
    store: Store
    media: MediaStore
    _workshop: WorkerProcess | None = None

    # -- the worker --

    def workshop(self) -> WorkerProcess:
        if self._workshop is None:
            self._workshop = WorkerProcess(factory=VoiceWorkshop, name="voice-workshop")
        return self._workshop

    def close(self) -> None:
        if self._workshop is not None:
            self._workshop.close()

    # -- reading --

    def get(self, voice_id: str, who: Principal) -> VoiceRecord:
        record = self.store.get_voice(voice_id)
        if record is None or not self._may_use(record, who):
            raise ApiError(404, "not_found", f"no voice with id {voice_id[:60]!r}")
        return record

    def list_for(self, who: Principal) -> list[VoiceRecord]:
        admin = who.key is not None and "admin" in who.key.scopes
        return self.store.list_voices(owner_key=who.key_id, everyone=admin)

    @staticmethod
    def _may_use(record: VoiceRecord, who: Principal) -> bool:
        if who.key is None:
            return False
        return "admin" in who.key.scopes or record.owner_key == who.key.id

    def spec_of(self, record: VoiceRecord) -> str:
        """The engine spec of a saved voice (a clone's is built from its stored recording)."""
        if record.kind == "cloned" and record.sample_sha:
            return f"clone:{self.media.path(record.sample_sha)}"
        return record.spec

    def resolve(self, spec: str) -> str:
        """A character's voice as an engine spec: ``voice:ID`` looked up, anything else as is.
        A voice deleted since falls back to the bundled voice (and says so in the log)."""
        voice_id = voice_id_of(spec)
        if voice_id is None:
            return spec
        record = self.store.get_voice(voice_id)
        if record is None:
            log.warning("voice %s is gone; using the bundled voice", voice_id)
            return "piper"
        return self.spec_of(record)

    def check_usable(self, spec: str | None, who: Principal) -> None:
        """A character may be given ``voice:ID`` only for a voice its caller may use."""
        if spec is None:
            return
        voice_id = voice_id_of(spec)
        if voice_id is not None:
            self.get(voice_id, who)
        elif spec.startswith("design:"):
            VoiceDesign.from_spec(spec)

    # -- creating --

    def _save(
        self, who: Principal, name: str, kind: str, spec: str, params: dict[str, Any], **extra: Any
    ) -> VoiceRecord:
        if who.key is None:
            raise ApiError(403, "forbidden", "a session token may not create voices")
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ApiError(400, "invalid_field", "name: 1-200 characters, no control characters")
        now = time.time()
        record = VoiceRecord(
            id=f"v_{secrets.token_urlsafe(9)}",
            name=name,
            kind=kind,
            spec=spec,
            params=params,
            sample_sha=extra.get("sample_sha"),
            consent=extra.get("consent"),
            consent_at=now if extra.get("consent") else None,
            owner_key=who.key.id,
            created_at=now,
            updated_at=now,
        )
        self.store.put_voice(record)
        log.info("voice %s (%s) created by key %s", record.id, kind, who.key.id)
        return record

    def design(
        self, prompt: str | None, params: dict[str, Any] | None
    ) -> tuple[VoiceDesign, list[str]]:
        """The design asked for: explicit parameters win over the prompt's."""
        design, notes = design_from_prompt(prompt or "")
        if params:
            merged = {**design.as_dict(), **params}
            design = VoiceDesign.from_mapping(merged)
        return design, notes

    def create_design(
        self, who: Principal, name: str, prompt: str | None, params: dict[str, Any] | None
    ) -> VoiceRecord:
        design, notes = self.design(prompt, params)
        return self._save(
            who,
            name,
            "design",
            design.to_spec(),
            {"prompt": prompt or "", "notes": notes, "design": design.as_dict()},
        )

    def create_match(
        self, who: Principal, name: str, samples: np.ndarray, rate: int, accent: str
    ) -> VoiceRecord:
        report = self.workshop().call_one("match", samples, rate, accent)
        design = VoiceDesign.from_mapping(report["design"])
        return self._save(
            who, name, "matched", design.to_spec(), {"design": design.as_dict(), "match": report}
        )

    def create_clone(self, who: Principal, name: str, wav: bytes, consent: str) -> VoiceRecord:
        if not os.environ.get("TALKIE_TTS_URL"):
            raise ApiError(
                409,
                "no_cloning_server",
                "this server has no voice-cloning speech server: its operator sets TALKIE_TTS_URL "
                "(an XTTS, F5 or Chatterbox server with an OpenAI-compatible API); until then, "
                "POST /v1/voices/match makes a matched voice",
            )
        consent = consent.strip()
        if len(consent) < MIN_CONSENT_CHARS:
            raise ApiError(
                400,
                "consent_required",
                "consent: a statement that the person whose voice this is agreed to it being "
                f"cloned (at least {MIN_CONSENT_CHARS} characters); it is recorded",
            )
        sha = self.media.put(wav)
        self.workshop().call_one("prepare_clone", str(self.media.path(sha)))
        return self._save(who, name, "cloned", "", {}, sample_sha=sha, consent=consent)

    def delete(self, voice_id: str, who: Principal) -> None:
        record = self.get(voice_id, who)
        users = self.store.characters_with_voice(f"voice:{record.id}")
        if users:
            raise ApiError(
                409,
                "voice_in_use",
                f"characters use this voice: {', '.join(users[:10])}; change theirs first",
            )
        self.store.delete_voice(record.id)
        if record.sample_sha:
            self.media.collect_garbage(self.store.media_in_use())

    # -- previews --

    def preview(self, spec: str, text: str) -> bytes:
        wav: bytes = self.workshop().call_one("preview", spec, text)
        return wav
