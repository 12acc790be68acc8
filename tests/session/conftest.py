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


@pytest.fixture(scope="session")
def models():  # type: ignore[no-untyped-def]
    """The real models of a conversation, loaded once: Piper (no sampling noise, so every run
    says the same), Whisper tiny.en, Smart Turn."""
    from turn_harness import Models

    from talkie.hearing import WhisperAsr
    from talkie.hearing.turn_model import SmartTurnModel
    from talkie.voice import PiperTTS

    voice = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    voice.load()
    asr = WhisperAsr()
    asr.load()
    turn_model = SmartTurnModel()
    turn_model.load()
    return Models(voice, asr, turn_model)
