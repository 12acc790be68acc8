"""Characters: a rig (the face), a persona (who it is, what it knows) and a voice.

``CharacterLibrary`` holds the bundled sample characters (rigged lazily on first use, once); the
server keeps uploaded characters in its database (``talkie.server.characters``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from talkie.brain.guardrails import GuardrailPolicy
from talkie.brain.kb.retrieval import Retriever
from talkie.brain.persona import Persona
from talkie.brain.tools import Tool
from talkie.errors import InvalidInputError
from talkie.media.image import load_image
from talkie.rig import CharacterRig, build_rig

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "assets" / "samples"
DEFAULT_VOICE = "piper"


@dataclass(frozen=True, eq=False)
class Character:
    id: str
    name: str
    rig: CharacterRig
    persona: Persona
    voice: str = DEFAULT_VOICE
    sample: bool = False
    knowledge: Retriever | None = None  # the character's documents (the server's knowledge base)
    guardrails: GuardrailPolicy | None = None  # what it must not discuss or say
    # what it remembers of this session's person from earlier sessions (opt-in, per session)
    recall: str = ""
    # what it can do besides talking: UI actions in the user's page, webhooks (validated)
    tools: tuple[Tool, ...] = ()
    # what draws it: a talkie.render.load_renderer spec ("": $TALKIE_RENDERER, else the mesh warp)
    renderer: str = ""


@dataclass(frozen=True)
class SampleInfo:
    id: str
    name: str
    image: Path
    persona: Persona
    voice: str


class CharacterLibrary:
    """The bundled sample characters, by id. Safe to use from the event loop and threads."""

    def __init__(self, *, samples_dir: Path = SAMPLES_DIR) -> None:
        self._samples = {s.id: s for s in discover_samples(samples_dir)}
        self._rigged: dict[str, Character] = {}
        self._lock = threading.Lock()

    def list(self) -> list[dict[str, object]]:
        """Public description of every character (samples first)."""
        return [{"id": s.id, "name": s.name, "sample": True} for s in self._samples.values()]

    def has(self, character_id: str) -> bool:
        return character_id in self._samples

    def get(self, character_id: str) -> Character:
        """The character (rigging a sample on first use: call from a worker thread)."""
        with self._lock:
            if character_id in self._rigged:
                return self._rigged[character_id]
        info = self._samples.get(character_id)
        if info is None:
            raise InvalidInputError(f"no character with id {character_id!r}")
        character = Character(
            id=info.id, name=info.name, rig=build_rig(load_image(info.image)),
            persona=info.persona, voice=info.voice, sample=True,
        )  # fmt: skip
        with self._lock:
            return self._rigged.setdefault(character_id, character)

    async def get_async(self, character_id: str) -> Character:
        return await asyncio.to_thread(self.get, character_id)


def discover_samples(folder: Path) -> list[SampleInfo]:
    """Every ``NAME.png``/``.jpg`` in ``folder`` with an optional ``NAME.json`` persona."""
    samples: list[SampleInfo] = []
    for image in sorted(folder.glob("*")):
        if image.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            continue
        meta_path = image.with_suffix(".json")
        meta: dict[str, object] = {}
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("ignoring %s: %s", meta_path.name, exc)
        name = str(meta.get("name") or image.stem.replace("_", " ").title())
        persona = Persona(
            name=name,
            system_prompt=str(meta.get("system_prompt") or f"You are {name}. Answer briefly."),
            greeting=str(meta.get("greeting") or f"Hi, I'm {name}. Ask me anything!"),
            knowledge=str(meta.get("knowledge") or ""),
        )
        samples.append(
            SampleInfo(image.stem, name, image, persona, str(meta.get("voice") or DEFAULT_VOICE))
        )
    return samples
