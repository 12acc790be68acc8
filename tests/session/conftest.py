"""Live-session fixtures: a real Conversation (real rig, renderer, Piper, built-in brain,
Silero + Whisper) driven by a consumer that pulls media exactly as a transport does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from talkie.session import CharacterLibrary


@pytest.fixture(scope="session")
def library() -> CharacterLibrary:
    return CharacterLibrary()


@pytest.fixture(scope="session")
def nova(library: CharacterLibrary):  # type: ignore[no-untyped-def]
    return library.get("astronaut")


# The scripted fake OpenAI-compatible server lives with the brain tests, the small webhook
# server with the tool tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "brain"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from fake_openai import fake_openai  # noqa: E402,F401  (re-exported fixture)
