"""Voice matching: a designed voice closer to a sample than plain joe, judged on held-out speech."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.errors import InvalidInputError
from talkie.voice.designed import DesignedTTS
from talkie.voice.espeak_tts import EspeakTTS
from talkie.voice.match import match_voice
from talkie.voice.piper_tts import PiperTTS
from talkie.voice.speaker import cosine, speaker_embedder

SAMPLE = (
    "The weather has been strange this week. On Monday it rained all day, and on Tuesday the sun "
    "came out for an hour before the wind returned. I walked to the station twice."
)
HELD_OUT = (
    "My sister works at the library near the harbour. She likes quiet mornings, strong coffee "
    "and long books about ships."
)


def speak(tts: object, text: str) -> tuple[np.ndarray, int]:
    clips = list(tts.synthesize(text))  # type: ignore[attr-defined]
    return np.concatenate([c.audio for c in clips]), clips[0].sample_rate


@pytest.mark.parametrize("voice", ["en-us+f2", "en-gb-x-rp"])
def test_match_raises_similarity_to_held_out_speech_of_another_voice(voice: str) -> None:
    """A different voice (espeak-ng's, female and British male): the matched voice reading other
    words is closer to that voice reading other words than plain joe is."""
    other = EspeakTTS(voice=voice)
    sample, rate = speak(other, SAMPLE)
    steps: list[float] = []
    result = match_voice(sample, rate, progress=steps.append)
    assert steps and steps[-1] == 1.0 and steps == sorted(steps)
    assert result.similarity >= result.base_similarity
    embed = speaker_embedder().embed
    held_out = embed(*speak(other, HELD_OUT))
    joe = cosine(embed(*speak(PiperTTS(), HELD_OUT)), held_out)
    matched = cosine(embed(*speak(DesignedTTS(result.design), HELD_OUT)), held_out)
    assert matched > joe + 0.05, (matched, joe, result)
    assert 60 < result.sample_pitch < 350 and len(result.sample_formants) == 3


def test_bad_samples_are_refused_clearly() -> None:
    rate = 16000
    with pytest.raises(InvalidInputError, match="5 to 30 s"):
        match_voice(np.zeros(rate * 2, np.float32), rate)
    with pytest.raises(InvalidInputError, match="5 to 30 s"):
        match_voice(np.zeros(rate * 40, np.float32), rate)
    with pytest.raises(InvalidInputError, match="too little speech"):
        match_voice(np.zeros(rate * 8, np.float32), rate)
    noise = np.random.default_rng(0).normal(0, 0.1, rate * 8).astype(np.float32)
    with pytest.raises(InvalidInputError, match="voiced"):
        match_voice(noise, rate)
