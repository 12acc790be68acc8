"""Who the character is: name, instructions for an LLM, greeting and what it knows.

A persona is a small frozen value. It comes from code (``DEFAULT_PERSONA``) or from a small JSON or
TOML file::

    name = "Ada"
    greeting = "Hello, I'm Ada from Acme Bikes. How can I help?"
    system_prompt = "You are Ada, the friendly assistant of Acme Bikes."
    knowledge_file = "acme.md"     # or: knowledge = "We are open ..."
    language = "en"

``knowledge_file`` is read relative to the persona file. Unknown fields are rejected (a typo
would otherwise silently drop the user's setting).
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkie.errors import InvalidInputError

__all__ = ["DEFAULT_PERSONA", "Persona", "load_persona", "persona_from_mapping"]

log = logging.getLogger(__name__)

# A knowledge text is read by a person and searched by the built-in brain; a megabyte is far more
# than anyone writes by hand and keeps a mistaken path (a video, a database) from being loaded.
MAX_KNOWLEDGE_CHARS = 1_000_000
MAX_PERSONA_FILE_BYTES = 2_000_000
_MAX_SHORT_FIELD = 200
_MAX_PROMPT_CHARS = 20_000
_MAX_GREETING_CHARS = 1_000
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")
_FIELDS = ("name", "system_prompt", "greeting", "knowledge", "knowledge_file", "language")


@dataclass(frozen=True)
class Persona:
    """The character's identity.

    ``system_prompt`` instructs an LLM brain; ``greeting`` is said when a conversation starts;
    ``knowledge`` is a short plain text (facts, opening hours, FAQ) that the built-in brain
    answers from and an LLM brain receives with the system prompt; ``language`` is a BCP-47 tag.
    Invalid values raise ``InvalidInputError``.
    """

    name: str
    system_prompt: str
    greeting: str
    knowledge: str = ""
    language: str = "en"

    def __post_init__(self) -> None:
        for field_name in ("name", "system_prompt", "greeting", "knowledge", "language"):
            value = getattr(self, field_name)
            if not isinstance(value, str):
                raise InvalidInputError(
                    f"persona field {field_name!r} must be text, not {type(value).__name__}"
                )
        for field_name in ("name", "greeting", "system_prompt"):
            if not getattr(self, field_name).strip():
                raise InvalidInputError(f"persona field {field_name!r} is empty; give it a value")
        if len(self.name) > _MAX_SHORT_FIELD or "\n" in self.name:
            raise InvalidInputError(
                f"persona name must be one line of at most {_MAX_SHORT_FIELD} characters"
            )
        if len(self.system_prompt) > _MAX_PROMPT_CHARS:
            raise InvalidInputError(
                f"persona system_prompt is {len(self.system_prompt)} characters; keep it under "
                f"{_MAX_PROMPT_CHARS} (put facts in the knowledge text instead)"
            )
        if len(self.greeting) > _MAX_GREETING_CHARS:
            raise InvalidInputError("persona greeting is too long; a greeting is one or two lines")
        if len(self.knowledge) > MAX_KNOWLEDGE_CHARS:
            raise InvalidInputError(
                f"persona knowledge is {len(self.knowledge)} characters; the limit is "
                f"{MAX_KNOWLEDGE_CHARS}"
            )
        if not _LANGUAGE_TAG.fullmatch(self.language):
            raise InvalidInputError(
                f"persona language {self.language!r} is not a language tag such as 'en' or 'de-CH'"
            )


DEFAULT_PERSONA = Persona(
    name="Talkie",
    system_prompt=(
        "You are Talkie, a friendly, warm and curious talking character. You chat with people in "
        "a live voice conversation. Keep every answer short and natural to say out loud: one to "
        "three sentences. Be honest: if you do not know something, say so."
    ),
    greeting="Hi, I'm Talkie! What would you like to talk about?",
)


def persona_from_mapping(data: Mapping[str, Any], *, base_dir: Path | None = None) -> Persona:
    """Build a ``Persona`` from parsed JSON/TOML data.

    Missing ``system_prompt`` and ``greeting`` get defaults built from the name; ``knowledge_file``
    (relative to ``base_dir``) is read as UTF-8 text. Raises ``InvalidInputError`` on unknown or
    invalid fields.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError("a persona must be a table/object with fields such as 'name'")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"unknown persona field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(_FIELDS)}"
        )
    name = data.get("name", DEFAULT_PERSONA.name)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("persona field 'name' must be non-empty text")
    name = name.strip()
    system_prompt = data.get(
        "system_prompt",
        DEFAULT_PERSONA.system_prompt.replace("You are Talkie", f"You are {name}"),
    )
    greeting = data.get("greeting", f"Hi, I'm {name}! What would you like to talk about?")
    knowledge = data.get("knowledge", "")
    if "knowledge_file" in data:
        if "knowledge" in data:
            raise InvalidInputError("give either 'knowledge' or 'knowledge_file', not both")
        knowledge = _read_knowledge_file(data["knowledge_file"], base_dir)
    return Persona(
        name=name,
        system_prompt=system_prompt,
        greeting=greeting,
        knowledge=knowledge,
        language=data.get("language", "en"),
    )


def load_persona(path: str | Path) -> Persona:
    """Load a persona from a ``.json`` or ``.toml`` file (see the module docstring).

    Raises ``InvalidInputError`` with the file name and the problem when the file is missing,
    not parseable or has invalid fields.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"cannot read persona file {path}: {exc.strerror}") from exc
    if size > MAX_PERSONA_FILE_BYTES:
        raise InvalidInputError(f"persona file {path} is {size} bytes; that is not a persona")
    suffix = path.suffix.lower()
    try:
        raw = path.read_bytes()
        if suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        elif suffix == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            raise InvalidInputError(
                f"persona file {path} must end in .json or .toml, not {suffix or '(none)'!r}"
            )
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"persona file {path} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"persona file {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"persona file {path} is not valid TOML: {exc}") from exc
    try:
        persona = persona_from_mapping(data, base_dir=path.parent)
    except InvalidInputError as exc:
        raise InvalidInputError(f"persona file {path}: {exc}") from exc
    log.info("loaded persona %r (%d characters of knowledge)", persona.name, len(persona.knowledge))
    return persona


def _read_knowledge_file(value: Any, base_dir: Path | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("persona field 'knowledge_file' must be a file path")
    knowledge_path = Path(value)
    if not knowledge_path.is_absolute() and base_dir is not None:
        knowledge_path = base_dir / knowledge_path
    try:
        size = knowledge_path.stat().st_size
        if size > 4 * MAX_KNOWLEDGE_CHARS:
            raise InvalidInputError(f"knowledge file {knowledge_path} is too large ({size} bytes)")
        return knowledge_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"knowledge file {knowledge_path} is not UTF-8 text") from exc
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read knowledge file {knowledge_path}: {exc.strerror}"
        ) from exc
