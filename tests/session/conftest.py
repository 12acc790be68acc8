"""Live-session fixtures: a real Conversation (real rig, renderer, Piper, built-in brain,
Silero + Whisper) driven by a consumer that pulls media exactly as a transport does."""

from __future__ import annotations

import pytest

from talkie.session import CharacterLibrary


@pytest.fixture(scope="session")
def library() -> CharacterLibrary:
    return CharacterLibrary()


@pytest.fixture(scope="session")
def nova(library: CharacterLibrary):  # type: ignore[no-untyped-def]
    return library.get("astronaut")
