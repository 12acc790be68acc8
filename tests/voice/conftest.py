"""Shared fixtures for the voice tests: engines are loaded once per test session."""

from __future__ import annotations

import pytest

from talkie.voice import EspeakTTS, PiperTTS


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    tts = PiperTTS()
    tts.load()
    return tts


@pytest.fixture(scope="session")
def espeak() -> EspeakTTS:
    return EspeakTTS()
