"""/v1/voices: list, design, preview (real audio), save, match, clone (consent, fake server),
ownership, and a character speaking with a saved voice (its spec resolved for the session)."""

from __future__ import annotations

import io
import sqlite3
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.voice import load_tts
from talkie.voice.espeak_tts import EspeakTTS


def _key(admin: TestClient, **body: Any) -> str:
    r = admin.post("/v1/keys", json={"name": "voices", **body})
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wav(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768, rate


@pytest.fixture(scope="module")
def sample_wav() -> bytes:
    tts = EspeakTTS(voice="en-us+f2")
    text = ("The weather has been strange this week. On Monday it rained all day, and on "
            "Tuesday the sun came out for an hour before the wind returned.")  # fmt: skip
    clips = list(tts.synthesize(text))
    return _wav(np.concatenate([c.audio for c in clips]), clips[0].sample_rate)


def test_builtin_voices_are_listed_and_previewable(admin: TestClient) -> None:
    voices = admin.get("/v1/voices").json()["voices"]
    ids = [v["id"] for v in voices]
    assert ids[0] == "piper" and all(v["kind"] == "builtin" for v in voices)
    designed = [v for v in voices if v["id"].startswith("design:")]
    assert len(designed) >= 4 and all(v["params"]["prompt"] for v in designed)
    for v in designed:
        load_tts(v["id"])  # every preset is a valid engine spec
    r = admin.post("/v1/voices/preview", json={"voice": designed[0]["id"], "text": "Hi there."})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    audio, rate = _decode(r.content)
    assert rate == 22050 and len(audio) > rate // 3 and np.abs(audio).max() > 0.2


def test_design_preview_and_save(admin: TestClient) -> None:
    r = admin.post("/v1/voices/design", json={"prompt": "a calm older woman with a British accent"})
    assert r.status_code == 200
    answer = r.json()
    assert answer["design"]["accent"] == "en-gb" and answer["design"]["pitch"] > 150
    assert any("woman" in n for n in answer["notes"]) and answer["id"].startswith("design:")
    woman = admin.post("/v1/voices/preview", json={"prompt": "a woman", "text": "Good morning."})
    man = admin.post("/v1/voices/preview", json={"prompt": "a man", "text": "Good morning."})
    assert woman.status_code == man.status_code == 200
    assert woman.content != man.content
    r = admin.post("/v1/voices", json={"name": "Narrator", "prompt": "a calm woman",
                                       "design": {"length_scale": 1.1}})  # fmt: skip
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["id"].startswith("voice:v_") and saved["kind"] == "design"
    assert saved["params"]["design"]["length_scale"] == 1.1
    assert admin.get(f"/v1/voices/{saved['id']}").json()["name"] == "Narrator"
    assert saved["id"] in [v["id"] for v in admin.get("/v1/voices").json()["voices"]]
    r = admin.post("/v1/voices/preview", json={"voice": saved["id"], "text": "Hello."})
    assert r.status_code == 200 and len(r.content) > 10_000


def test_bad_designs_and_texts_are_clear_errors(admin: TestClient) -> None:
    error_of(admin.post("/v1/voices", json={"name": "x", "design": {"formant": 9}}), 400)
    error_of(admin.post("/v1/voices", json={"name": "x", "design": {"colour": 1}}), 400)
    error_of(admin.post("/v1/voices/preview", json={"prompt": "a man", "text": "x" * 900}), 400)
    error_of(admin.post("/v1/voices/preview", json={"voice": "voice:v_missing1"}), 404)
    error_of(admin.post("/v1/voices", json={"name": "", "prompt": "a man"}), 400)


def test_voices_belong_to_their_key_and_characters_use_them(
    admin: TestClient, api: TestClient, face_png: bytes
) -> None:
    mine, theirs = _key(admin, scopes=["characters"]), _key(admin, scopes=["characters"])
    r = api.post("/v1/voices", json={"name": "Mine", "prompt": "a deep old man"},
                 headers=_as(mine))  # fmt: skip
    voice = r.json()["id"]
    listed = [v["id"] for v in api.get("/v1/voices", headers=_as(theirs)).json()["voices"]]
    assert voice not in listed
    error_of(api.get(f"/v1/voices/{voice}", headers=_as(theirs)), 404)
    # another key cannot give its character my voice
    r = api.post("/v1/characters", files={"image": ("f.png", face_png, "image/png")},
                 data={"name": "Ann", "voice": voice}, headers=_as(theirs))  # fmt: skip
    error_of(r, 404)
    r = api.post("/v1/characters", files={"image": ("f.png", face_png, "image/png")},
                 data={"name": "Ann", "voice": voice}, headers=_as(mine))  # fmt: skip
    assert r.status_code == 201, r.text
    character = r.json()
    assert character["voice"] == voice
    # the live session gets the saved design as a self-contained engine spec
    loaded = api.app.state.services.characters.load(character["id"])
    assert loaded.voice.startswith("design:") and "pitch=" in loaded.voice
    # nor give my character another voice (it cannot see my character at all)
    r = api.put(f"/v1/characters/{character['id']}/voice", json={"voice": "piper"},
                headers=_as(theirs))  # fmt: skip
    error_of(r, 404, "unknown_character")
    error_of(api.delete(f"/v1/voices/{voice}", headers=_as(mine)), 409, "voice_in_use")
    r = api.patch(f"/v1/characters/{character['id']}", json={"voice": "piper"}, headers=_as(mine))
    assert r.status_code == 200
    assert api.delete(f"/v1/voices/{voice}", headers=_as(mine)).status_code == 204


def test_match_saves_a_matched_voice_with_its_report(admin: TestClient, sample_wav: bytes) -> None:
    r = admin.post("/v1/voices/match", files={"sample": ("s.wav", sample_wav, "audio/wav")},
                   data={"name": "Like Sam"})  # fmt: skip
    assert r.status_code == 201, r.text
    voice = r.json()
    report = voice["params"]["match"]
    assert voice["kind"] == "matched" and report["similarity"] >= report["base_similarity"]
    assert voice["params"]["design"]["pitch"] > 150  # the sample is a higher voice
    error_of(admin.post("/v1/voices/match", files={"sample": ("s.wav", b"not audio", "audio/wav")},
                        data={"name": "x"}), 400)  # fmt: skip
    error_of(admin.post("/v1/voices/match", data={"name": "x"},
                        files={"other": ("s.wav", sample_wav, "audio/wav")}), 400)  # fmt: skip
    huge = b"RIFF" + bytes(21 * 1024 * 1024)  # refused while it arrives, before any parsing
    r = admin.post("/v1/voices/match", files={"sample": ("s.wav", huge, "audio/wav")})
    assert "sample" in error_of(r, 413, "too_large")


def test_cloning_needs_a_server_and_consent_and_records_it(
    admin: TestClient, sample_wav: bytes, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"name": "Sam (cloned)", "consent": "Sam agreed in writing on 2026-12-01 to be cloned."}
    files = {"sample": ("s.wav", sample_wav, "audio/wav")}
    monkeypatch.delenv("TALKIE_TTS_URL", raising=False)
    error_of(admin.post("/v1/voices/clone", files=files, data=form), 409, "no_cloning_server")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "voice"))
    from fake_speech_server import FakeSpeechServer  # the scripted server of the voice tests

    from talkie.voice import PiperTTS

    server = FakeSpeechServer(PiperTTS())
    try:
        monkeypatch.setenv("TALKIE_TTS_URL", server.url)
        admin.app.state.voices.close()  # the workshop restarts with the new environment
        admin.app.state.voices._workshop = None
        bad = {**form, "consent": "ok"}
        error_of(admin.post("/v1/voices/clone", files=files, data=bad), 400, "consent_required")
        r = admin.post("/v1/voices/clone", files=files, data=form)
        assert r.status_code == 201, r.text
        voice = r.json()
        assert voice["kind"] == "cloned" and voice["consent"] == form["consent"]
        assert sum(req["path"] == "/v1/voices" for req in server.requests) == 1
        r = admin.post("/v1/voices/preview", json={"voice": voice["id"], "text": "Hello there."})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert any(req["path"] == "/v1/audio/speech" for req in server.requests)
    finally:
        server.close()
        admin.app.state.voices.close()
        admin.app.state.voices._workshop = None
    with sqlite3.connect(data_dir / "talkie.db") as db:
        consent, at, owner = db.execute(
            "SELECT consent, consent_at, owner_key FROM voices WHERE kind = 'cloned'"
        ).fetchone()
    assert consent == form["consent"] and at > 0 and owner
