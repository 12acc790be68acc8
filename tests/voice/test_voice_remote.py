"""The speech-server engine against a scripted fake server: stock voices, a cloned voice uploaded
once, aligned timings, the key sent, and clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fake_speech_server import FakeSpeechServer, wav_bytes
from voice_testutil import assert_tiles

from talkie.errors import EngineError, MissingDependencyError
from talkie.voice import PiperTTS, load_tts
from talkie.voice.remote import RemoteTTS


@pytest.fixture
def server(piper: PiperTTS, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSpeechServer]:
    fake = FakeSpeechServer(piper)
    monkeypatch.setenv("TALKIE_TTS_URL", fake.url)
    monkeypatch.setenv("TALKIE_TTS_MODEL", "xtts")
    monkeypatch.setenv("TALKIE_TTS_API_KEY", "sk-test")
    yield fake
    fake.close()


def test_stock_voice_speaks_with_aligned_timings(server: FakeSpeechServer) -> None:
    tts = load_tts("remote:alloy")
    assert isinstance(tts, RemoteTTS) and tts.name == "remote:alloy"
    clips = list(tts.synthesize("Bob bought a big map. Then he went home."))
    assert [c.text for c in clips] == ["Bob bought a big map.", "Then he went home."]
    for clip in clips:
        assert clip.sample_rate == 22050 and len(clip.audio) > 22050 // 2
        assert_tiles(clip)
        spoken = [p.phoneme for p in clip.phonemes if p.phoneme]
        assert len(spoken) >= 8
    first = clips[0]
    assert any(p.phoneme in ("b", "m") for p in first.phonemes)
    request = json.loads(server.requests[0]["body"])
    assert request == {"model": "xtts", "input": "Bob bought a big map.", "voice": "alloy",
                       "response_format": "wav"}  # fmt: skip
    assert all(r["auth"] == "Bearer sk-test" for r in server.requests)
    assert not any(r["path"] == "/v1/voices" for r in server.requests)


def test_cloned_voice_is_uploaded_once(server: FakeSpeechServer, tmp_path: Path) -> None:
    sample = tmp_path / "sample.wav"
    sample.write_bytes(wav_bytes(np.sin(np.arange(16000 * 6) / 10.0) * 0.3, 16000))
    tts = load_tts(f"clone:{sample}")
    tts.load()  # type: ignore[attr-defined]
    list(tts.synthesize("Hello there. How are you today?"))
    uploads = [r for r in server.requests if r["path"] == "/v1/voices"]
    assert len(uploads) == 1
    assert uploads[0]["type"].startswith("multipart/form-data")
    assert b'name="voice_file"' in uploads[0]["body"] and b"RIFF" in uploads[0]["body"]
    name = tts.voice  # type: ignore[attr-defined]
    assert name.startswith("talkie-") and name.encode() in uploads[0]["body"]
    speech = [json.loads(r["body"]) for r in server.requests if r["path"] == "/v1/audio/speech"]
    assert len(speech) == 2 and all(s["voice"] == name for s in speech)


def test_server_errors_and_missing_configuration(
    server: FakeSpeechServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.fail_speech = True
    with pytest.raises(EngineError, match="HTTP 500"):
        list(load_tts("remote:alloy").synthesize("Hello."))
    monkeypatch.delenv("TALKIE_TTS_URL")
    with pytest.raises(MissingDependencyError, match="TALKIE_TTS_URL"):
        load_tts("remote:alloy")
