"""Shared fixtures for the hearing tests: TTS voices and Whisper are loaded once per session."""

from __future__ import annotations

import pytest
from hearing_testutil import Utterance, speak

from talkie.hearing import WhisperAsr
from talkie.voice import EspeakTTS, PiperTTS

QUESTION = "What is the capital of France?"
LONG = "I would like to know what the weather will be like tomorrow in the city of Paris."


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    """The bundled Piper voice without sampling noise, so fixtures are the same every run."""
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    tts.load()
    return tts


@pytest.fixture(scope="session")
def piper_fast() -> PiperTTS:
    """The same voice 25% faster."""
    return PiperTTS(length_scale=0.8, noise_scale=0.0, noise_w_scale=0.0)


@pytest.fixture(scope="session")
def espeak_f3() -> EspeakTTS:
    return EspeakTTS(voice="en-us+f3", rate=160)


@pytest.fixture(scope="session")
def whisper() -> WhisperAsr:
    asr = WhisperAsr()
    asr.load()
    return asr


@pytest.fixture(scope="session")
def question(piper: PiperTTS) -> Utterance:
    """Piper (en_US joe) asking "What is the capital of France?" (~1.8 s)."""
    return speak(piper, QUESTION)


@pytest.fixture(scope="session")
def long_request(piper: PiperTTS) -> Utterance:
    """Piper saying a ~3.5 s sentence (long enough for partials)."""
    return speak(piper, LONG)
