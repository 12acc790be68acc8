"""Whisper tiny.en through the latency-tuned ``WhisperAsr`` (real model, fixtures from TTS)."""

from __future__ import annotations

import numpy as np
import pytest
from hearing_testutil import RATE, Utterance, scene, speak

from talkie.hearing import SpeechRecognizer, WhisperAsr, normalize_words, word_errors
from talkie.hearing.asr import _cut_repetition, _repeats


def test_is_a_speech_recognizer(whisper: WhisperAsr) -> None:
    assert isinstance(whisper, SpeechRecognizer)


def test_the_question_is_transcribed(whisper: WhisperAsr, question: Utterance) -> None:
    audio, _, _ = scene(question, before=0.3, after=0.3, snr_db=None)
    result = whisper.transcribe(audio)
    assert word_errors(question.text, result.text) <= 1, result.text
    assert result.text.rstrip().endswith("?")
    assert result.window_s == 10.0  # the short encoder window, not Whisper's 30 s
    assert not result.retried
    assert result.audio_s == pytest.approx(len(audio) / RATE)


@pytest.mark.parametrize(
    ("voice", "text", "snr_db"),
    [
        ("piper_fast", "Can you tell me a joke about cats?", 20.0),
        ("piper", "Please turn off the lights in the kitchen and close the door.", 20.0),
        ("espeak_f3", "What is the capital of France?", 20.0),
        ("espeak_f3", "Yes, please.", None),
    ],
)
def test_voices_rates_and_noise(
    whisper: WhisperAsr, request: pytest.FixtureRequest, voice: str, text: str, snr_db: float | None
) -> None:
    utterance = speak(request.getfixturevalue(voice), text)
    audio, _, _ = scene(utterance, before=0.3, after=0.3, snr_db=snr_db, seed=7)
    result = whisper.transcribe(audio)
    assert word_errors(text, result.text) <= 1, result.text


ACCENTS = ("en-gb-scotland+m4", "en-029+m4", "en-gb-x-gbcwmd+m2", "en-gb-x-rp+f2", "en-us+m7")
ACCENT_QUESTIONS = (
    "How far away is the Moon?", "Why is the sky blue during the day?",
    "What is the weather like on Venus?", "How often does the space station go around the Earth?",
)  # fmt: skip


def test_accents_are_heard_better_than_by_greedy_decoding(whisper: WhisperAsr) -> None:
    """Voices unlike the test sets' (espeak accents, 20 dB noise): the default recogniser
    (a narrow beam) makes fewer word errors than greedy decoding of the same model."""
    from talkie.hearing.asr import WhisperOptions
    from talkie.voice import EspeakTTS

    greedy = WhisperAsr(options=WhisperOptions(beam_size=1))
    assert whisper.options.beam_size > 1
    errors = {"default": 0, "greedy": 0}
    words = 0
    for voice in ACCENTS:
        tts = EspeakTTS(voice=voice, rate=165)
        for k, text in enumerate(ACCENT_QUESTIONS):
            audio, _, _ = scene(speak(tts, text), before=0.3, after=0.3, snr_db=20.0, seed=k)
            errors["default"] += word_errors(text, whisper.transcribe(audio).text)
            errors["greedy"] += word_errors(text, greedy.transcribe(audio).text)
            words += len(normalize_words(text))
    assert errors["default"] < errors["greedy"], (errors, words)
    assert errors["default"] <= 0.45 * words, (errors, words)


def test_silence_and_noise_give_no_text(whisper: WhisperAsr) -> None:
    assert whisper.transcribe(np.zeros(RATE, np.float32)).text == ""
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.01
    assert whisper.transcribe(noise).text == ""
    assert whisper.transcribe(np.zeros(100, np.float32)).text == ""  # too short to transcribe


def test_long_utterances_get_a_longer_window(
    whisper: WhisperAsr,
    piper,
    long_request: Utterance,  # type: ignore[no-untyped-def]
) -> None:
    more = speak(piper, "My name is Sarah and I live in a small town near the sea.")
    gap = np.zeros(RATE // 2, np.float32)
    audio = np.concatenate([long_request.audio, gap, more.audio, gap, long_request.audio])
    assert 9.0 < len(audio) / RATE < 18.0
    result = whisper.transcribe(audio)
    assert result.window_s == 20.0
    expected = f"{long_request.text} {more.text} {long_request.text}"
    assert word_errors(expected, result.text) <= 3, result.text


def test_repetition_guards() -> None:
    loop = [1, 2, 3] * 5
    assert _repeats(loop)
    assert _cut_repetition(loop) == [1, 2, 3]
    assert not _repeats([1, 2, 3, 4, 5, 6])
    assert not _repeats([7, 7, 7])  # "no no no" is speech, not a loop
    assert _cut_repetition([9, 8, 1, 2, 1, 2, 1, 2]) == [9, 8, 1, 2]


def test_word_errors() -> None:
    assert normalize_words("What's the capital of France?") == [
        "what's",
        "the",
        "capital",
        "of",
        "france",
    ]
    assert word_errors("What is the capital of France?", "what is the capital of france") == 0
    assert word_errors("a b c", "a x c d") == 2
    assert word_errors("", "a") == 1
