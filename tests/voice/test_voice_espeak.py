"""EspeakTTS through libespeak-ng: phoneme events give timings that match the audio."""

from __future__ import annotations

import time

import numpy as np
import pytest
from voice_testutil import assert_good_audio, assert_tiles

from talkie.errors import InvalidInputError
from talkie.messages import SpeechClip
from talkie.voice import EspeakTTS, PiperTTS
from talkie.voice.base import TextToSpeech
from talkie.voice.phonemes import speech_bounds


def _rms(clip: SpeechClip, start: float, end: float) -> float:
    seg = clip.audio[int(start * clip.sample_rate) : int(end * clip.sample_rate)]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0


def test_is_a_text_to_speech(espeak: EspeakTTS) -> None:
    assert isinstance(espeak, TextToSpeech)
    assert espeak.name == "espeak:en-us"
    assert espeak.sample_rate == 22050


def test_phonemes_tile_audio(espeak: EspeakTTS) -> None:
    clips = list(espeak.synthesize("Hello, Dr. Smith! It's 3.5 degrees outside; isn't it lovely?"))
    assert [c.text for c in clips] == [
        "Hello, Dr. Smith!",
        "It's 3.5 degrees outside;",
        "isn't it lovely?",
    ]
    for clip in clips:
        assert_good_audio(clip)
        assert_tiles(clip)
        spoken = [p.phoneme for p in clip.phonemes if p.phoneme]
        assert len(spoken) >= 6
        assert not any(mark in "".join(spoken) for mark in "ˈˌ")


def test_timings_line_up_with_audio_energy(espeak: EspeakTTS) -> None:
    clip = espeak.synthesize_clause("Well, hello there, my friend.")
    phonemes = clip.phonemes
    assert phonemes[-1].phoneme == "", "the clause ends with its pause"
    first_spoken = next(p for p in phonemes if p.phoneme)
    last_spoken = next(p for p in reversed(phonemes) if p.phoneme)
    speech = _rms(clip, first_spoken.start, last_spoken.end)
    trailing = _rms(clip, last_spoken.end, clip.duration)
    assert speech > 20 * trailing, (speech, trailing)
    # the first and last phoneme edges sit on the audible onset and offset
    bounds = speech_bounds(clip.audio, clip.sample_rate)
    assert bounds is not None
    assert abs(first_spoken.start - bounds[0]) < 0.03
    assert abs(last_spoken.end - bounds[1]) < 0.04
    # inside the utterance, vowels are much louder than the comma pauses
    vowels = [p for p in phonemes if p.phoneme[:1] in "aeiouʌæɑɔəɛɪʊɜ"]
    pauses = [p for p in phonemes[1:-1] if p.phoneme == "" and p.duration > 0.05]
    assert len(pauses) >= 2
    assert np.median([_rms(clip, p.start, p.end) for p in vowels]) > 10 * max(
        _rms(clip, p.start, p.end) for p in pauses
    )


def test_voice_rate_and_pitch(espeak: EspeakTTS) -> None:
    text = "The rain in Spain stays mainly in the plain."
    normal = espeak.synthesize_clause(text)
    fast = EspeakTTS(voice="en-us+f3", rate=300, pitch=70).synthesize_clause(text)
    assert fast.duration < 0.75 * normal.duration
    assert_tiles(fast)
    # the library is shared: the first engine still speaks with its own settings afterwards
    again = espeak.synthesize_clause(text)
    assert abs(again.duration - normal.duration) < 0.02


def test_errors(espeak: EspeakTTS) -> None:
    with pytest.raises(InvalidInputError, match="nothing to say: the text is empty"):
        espeak.synthesize("  ")
    with pytest.raises(InvalidInputError, match="unknown espeak-ng voice"):
        EspeakTTS(voice="no-such-voice")
    with pytest.raises(InvalidInputError, match="rate"):
        EspeakTTS(rate=1000)
    with pytest.raises(InvalidInputError, match="pitch"):
        EspeakTTS(pitch=-1)


def test_works_next_to_piper(espeak: EspeakTTS, piper: PiperTTS) -> None:
    # Piper embeds its own espeak-ng; both must coexist in one process.
    a = piper.synthesize_clause("First Piper speaks.")
    b = espeak.synthesize_clause("Then espeak speaks.")
    c = piper.synthesize_clause("And Piper again.")
    for clip in (a, b, c):
        assert_tiles(clip)
        assert_good_audio(clip)


def test_speed(espeak: EspeakTTS) -> None:
    text = "Espeak is very fast. " * 10
    started = time.perf_counter()
    clips = list(espeak.synthesize(text))
    elapsed = time.perf_counter() - started
    audio = sum(c.duration for c in clips)
    print(f"\nespeak: {audio:.1f} s audio in {elapsed * 1000:.0f} ms (RTF {elapsed / audio:.4f})")
    assert len(clips) == 10
