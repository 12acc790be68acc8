"""Characters: a rig (the face), a persona (who it is, what it knows) and a voice.

The library holds the bundled sample characters (rigged lazily on first use, once) and the ones
users upload (validated, rigged in a worker thread so the server stays responsive).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2

from talkie.brain.persona import Persona
from talkie.errors import InvalidInputError
from talkie.media.image import decode_image_bytes, load_image
from talkie.rig import CharacterRig, build_rig

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "assets" / "samples"
DEFAULT_VOICE = "piper"
MAX_UPLOADS = 64  # uploaded characters kept in memory (oldest dropped first)


@dataclass(frozen=True, eq=False)
class Character:
    id: str
    name: str
    rig: CharacterRig
    persona: Persona
    voice: str = DEFAULT_VOICE
    sample: bool = False

    def preview_jpeg(self, *, width: int = 480) -> bytes:
        """A still of the character's face and shoulders (for pickers and thumbnails)."""
        image = self.rig.image
        scale = width / image.shape[1]
        small = cv2.resize(
            image, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA
        )
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
            raise RuntimeError("could not encode the preview")
        return bytes(data.tobytes())


@dataclass(frozen=True)
class SampleInfo:
    id: str
    name: str
    image: Path
    persona: Persona
    voice: str


class CharacterLibrary:
    """Sample and uploaded characters, by id. Safe to use from the event loop and threads."""

    def __init__(self, *, samples_dir: Path = SAMPLES_DIR) -> None:
        self._samples = {s.id: s for s in _discover_samples(samples_dir)}
        self._rigged: dict[str, Character] = {}
        self._uploads: dict[str, Character] = {}
        self._lock = threading.Lock()

    def list(self) -> list[dict[str, object]]:
        """Public description of every character (samples first)."""
        items: list[dict[str, object]] = [
            {"id": s.id, "name": s.name, "sample": True} for s in self._samples.values()
        ]
        with self._lock:
            items += [{"id": c.id, "name": c.name, "sample": False} for c in self._uploads.values()]
        return items

    def has(self, character_id: str) -> bool:
        with self._lock:
            return character_id in self._samples or character_id in self._uploads

    def get(self, character_id: str) -> Character:
        """The character (rigging a sample on first use: call from a worker thread)."""
        with self._lock:
            if character_id in self._uploads:
                return self._uploads[character_id]
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

    async def add_upload(self, data: bytes, *, name: str = "") -> Character:
        """Validate and rig an uploaded photo (JPEG/PNG/WebP). Raises ``InvalidInputError``."""
        name = (name or "").strip()[:60] or "My character"
        # Decoding a large photo takes tens of milliseconds: off the event loop, with the rig.
        rig = await asyncio.to_thread(
            lambda: build_rig(decode_image_bytes(data, name="the upload"))
        )
        character_id = "u-" + hashlib.sha256(data).hexdigest()[:16]
        persona = Persona(
            name=name,
            system_prompt=(
                f"You are {name}, a friendly character brought to life from a photo. "
                "Answer briefly, in one to three spoken sentences."
            ),
            greeting=f"Hi, I'm {name}! What would you like to talk about?",
        )
        character = Character(id=character_id, name=name, rig=rig, persona=persona)
        with self._lock:
            self._uploads[character_id] = character
            while len(self._uploads) > MAX_UPLOADS:
                self._uploads.pop(next(iter(self._uploads)))
        return character


def _discover_samples(folder: Path) -> list[SampleInfo]:
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
