"""Voice design: prompts reach their pitch and formant targets (measured with Praat on the output),
the speaker embedding hears the gender the prompt asked for, timings stay exact, specs round-trip.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from voice_testutil import assert_tiles

from talkie.errors import InvalidInputError
from talkie.voice import VoiceDesign, design_from_prompt, load_tts
from talkie.voice.designed import DesignedTTS
from talkie.voice.espeak_tts import EspeakTTS
from talkie.voice.speaker import cosine, speaker_embedder

parselmouth = pytest.importorskip("parselmouth")  # GPL-3: a test-only measuring tool

# A reply as a character gives one: statements and a question. A design's pitch is the voice's
# usual pitch, so one low statement alone sits ~4 % under it (piper's own pitch varies ±8 % from
# sentence to sentence), which with unseeded synthesis noise crossed the 10 % bound now and then.
TEXT = (
    "The museum opens at nine in the morning. Visitors can see paintings, old maps and a small "
    "garden behind the main hall. Shall I show you the way there?"
)
PROMPTS = {  # prompt -> the gender it asks for
    "a warm older woman, slow and calm": "female",
    "an energetic young man with a British accent": "male",
    "a cheerful young woman who speaks fast": "female",
    "a deep-voiced old man": "male",
    "a calm female narrator": "female",
    "a serious man with a Scottish accent": "male",
}


def speak(tts: object, text: str = TEXT) -> tuple[np.ndarray, int]:
    clips = list(tts.synthesize(text))  # type: ignore[attr-defined]
    return np.concatenate([c.audio for c in clips]), clips[0].sample_rate


def praat_pitch_and_formants(
    audio: np.ndarray, rate: int, ceiling: float
) -> tuple[float, np.ndarray]:
    """Median F0 and median F1..F3 over voiced frames (Praat's standard analyses; the formant
    ceiling scales with the vocal tract, 5000 Hz for a man's)."""
    sound = parselmouth.Sound(audio.astype(np.float64), rate)
    pitch = sound.to_pitch(pitch_floor=60, pitch_ceiling=500)
    f0 = pitch.selected_array["frequency"]
    times = pitch.xs()[f0 > 0]
    formant = sound.to_formant_burg(max_number_of_formants=5, maximum_formant=ceiling)
    values = np.array([[formant.get_value_at_time(i, t) for t in times] for i in (1, 2, 3)])
    return float(np.median(f0[f0 > 0])), np.nanmedian(values, axis=1)


@pytest.fixture(scope="module")
def designed_audio() -> dict[str, tuple[VoiceDesign, np.ndarray, np.ndarray, int]]:
    """Per prompt: the design, its speech, and the same design without pitch/formant changes."""
    out = {}
    for prompt in PROMPTS:
        design, _ = design_from_prompt(prompt)
        audio, rate = speak(DesignedTTS(design))
        plain = replace(design, pitch=0.0, formant=1.0, pitch_range=1.0)
        base, _ = speak(DesignedTTS(plain))
        out[prompt] = (design, audio, base, rate)
    return out


@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_prompt_reaches_its_pitch_and_formant_targets(designed_audio, prompt: str) -> None:
    design, audio, base, rate = designed_audio[prompt]
    pitch, formants = praat_pitch_and_formants(audio, rate, 5000 * design.formant)
    _, base_formants = praat_pitch_and_formants(base, rate, 5000)
    assert pitch == pytest.approx(design.pitch, rel=0.10), (pitch, design)
    ratio = float(np.mean(formants / base_formants))
    assert ratio == pytest.approx(design.formant, rel=0.10), (formants, base_formants, design)


def test_the_embedding_hears_the_gender_the_prompt_asked_for(designed_audio) -> None:
    """Gender reading: closer to espeak-ng's female or male voices (same synthesiser for both, so
    only the voice differs). The issue asks for at least 4 of 6."""
    embed = speaker_embedder().embed
    anchors = {
        gender: [embed(*speak(EspeakTTS(voice=v))) for v in voices]
        for gender, voices in (
            ("female", ("en-us+f2", "en-us+f3", "en-us+f4", "en+f1")),
            ("male", ("en-us", "en-us+m3", "en+m1", "en-gb-x-rp")),
        )
    }

    def reading(vector: np.ndarray) -> str:
        f = np.mean([cosine(vector, a) for a in anchors["female"]])
        m = np.mean([cosine(vector, a) for a in anchors["male"]])
        return "female" if f > m else "male"

    base_design, _, base, rate = designed_audio["a calm female narrator"]
    assert reading(embed(base, rate)) == "male"  # joe himself reads as a man
    got = {p: reading(embed(audio, rate)) for p, (_, audio, _, rate) in designed_audio.items()}
    right = sum(got[p] == want for p, want in PROMPTS.items())
    assert right >= 4, got


def test_timings_stay_exact_and_the_length_too() -> None:
    design, _ = design_from_prompt("a cheerful young woman")
    tts = DesignedTTS(design)
    plain = DesignedTTS(replace(design, pitch=0.0, formant=1.0, pitch_range=1.0))
    clip = tts.synthesize_clause("Bob bought a map of Panama.")
    assert_tiles(clip)
    assert round(clip.phonemes[-1].end * clip.sample_rate) == len(clip.audio)
    assert len(clip.audio) % 256 == 0  # still the model's own frame grid: nothing was stretched
    assert np.abs(clip.audio).max() > 0.3
    assert plain.synthesize_clause("Bob bought a map of Panama.").phonemes  # same engine path


def test_prompts_are_deterministic_and_say_what_they_understood() -> None:
    a, notes = design_from_prompt("an energetic young man with a British accent")
    b, _ = design_from_prompt("an energetic young man with a British accent")
    assert a == b
    assert a.accent == "en-gb" and a.length_scale < 1.0 and a.pitch_range > 1.0
    assert any("british" in n for n in notes) and any("man" in n for n in notes)
    slow, _ = design_from_prompt("a warm older woman, slow and calm")
    assert slow.pitch > 150 and slow.formant > 1.05 and slow.length_scale > 1.1
    assert slow.noise_scale < a.noise_scale
    assert design_from_prompt("")[0] == VoiceDesign()


def test_spec_round_trip_and_validation() -> None:
    design, _ = design_from_prompt("a cheerful young woman with a Scottish accent")
    spec = design.to_spec()
    assert spec.startswith("design:") and VoiceDesign.from_spec(spec) == design
    assert isinstance(load_tts(spec), DesignedTTS)
    assert VoiceDesign.from_spec("design:") == VoiceDesign()
    with pytest.raises(InvalidInputError, match="out of range"):
        VoiceDesign(formant=3.0)
    with pytest.raises(InvalidInputError, match="bad voice design item"):
        VoiceDesign.from_spec("design:colour=blue")
    with pytest.raises(InvalidInputError, match="number"):
        VoiceDesign.from_spec("design:pitch=high")
    with pytest.raises(InvalidInputError, match="accent"):
        VoiceDesign(accent="en us; rm -rf")
