"""Persona: defaults, loading from JSON/TOML, validation with clear messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from talkie.brain import DEFAULT_PERSONA, Persona, load_persona, persona_from_mapping
from talkie.errors import InvalidInputError


def test_default_persona() -> None:
    assert DEFAULT_PERSONA.name == "Talkie"
    assert "three sentences" in DEFAULT_PERSONA.system_prompt
    assert DEFAULT_PERSONA.greeting and DEFAULT_PERSONA.language == "en"
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_PERSONA.name = "Other"  # type: ignore[misc]


def test_load_json(tmp_path: Path) -> None:
    path = tmp_path / "ada.json"
    path.write_text(
        json.dumps(
            {"name": "Ada", "greeting": "Hello!", "knowledge": "We open at 9.", "language": "en-GB"}
        )
    )
    persona = load_persona(path)
    assert persona == Persona(
        name="Ada",
        system_prompt=persona.system_prompt,
        greeting="Hello!",
        knowledge="We open at 9.",
        language="en-GB",
    )
    assert persona.system_prompt.startswith("You are Ada")  # default prompt uses the name


def test_load_toml_with_knowledge_file(tmp_path: Path) -> None:
    (tmp_path / "facts.md").write_text("# Hours\nWe open at 9 am.\n", encoding="utf-8")
    path = tmp_path / "ada.toml"
    path.write_text(
        'name = "Ada"\nsystem_prompt = "You are Ada."\ngreeting = "Hi."\n'
        'knowledge_file = "facts.md"\n'
    )
    persona = load_persona(path)
    assert persona.knowledge.startswith("# Hours")
    assert persona.greeting == "Hi." and persona.system_prompt == "You are Ada."


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"name": "Ada", "voice": "x"}', ".json", "unknown persona field(s) 'voice'"),
        ('{"name": ""}', ".json", "'name' must be non-empty"),
        ('{"name": "Ada", "language": "english please"}', ".json", "not a language tag"),
        ('{"name": "Ada", "greeting": 5}', ".json", "must be text"),
        ('{"name": "Ada",', ".json", "not valid JSON"),
        ('name = "Ada', ".toml", "not valid TOML"),
        ('["Ada"]', ".json", "must be a table/object"),
        ("name: Ada", ".yaml", "must end in .json or .toml"),
        ('{"name": "Ada", "knowledge": "x", "knowledge_file": "y.md"}', ".json", "not both"),
        ('{"name": "Ada", "knowledge_file": "missing.md"}', ".json", "cannot read knowledge file"),
    ],
)
def test_invalid_files(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"persona{suffix}"
    path.write_text(content)
    with pytest.raises(InvalidInputError) as info:
        load_persona(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)  # the message names the file


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read persona file"):
        load_persona(tmp_path / "nope.toml")


def test_direct_validation() -> None:
    with pytest.raises(InvalidInputError, match="'greeting' is empty"):
        Persona(name="A", system_prompt="x", greeting="  ")
    with pytest.raises(InvalidInputError, match="one line"):
        Persona(name="A\nB", system_prompt="x", greeting="hi")
    assert persona_from_mapping({}).name == "Talkie"
