"""align_speech: phoneme timings for untimed audio, checked against Piper's own timeline."""

from __future__ import annotations

import difflib

import numpy as np
import pytest
from scipy.signal import resample_poly
from voice_testutil import assert_tiles

from talkie.messages import AudioChunk, SpeechClip
from talkie.voice import PiperTTS, align_speech, align_words
from talkie.voice.align import WordTiming, phonemize_word

SENTENCE = "Please remember to bring your umbrella tomorrow because it might rain in the afternoon."


def _truth_words(clip: SpeechClip) -> list[tuple[float, float, int]]:
    """Piper's words: runs of phonemes between silences, with their phoneme counts."""
    words: list[tuple[float, float, int]] = []
    run: list[float] = []
    count = 0
    for p in clip.phonemes:
        if p.phoneme:
            run = [run[0] if run else p.start, p.end]
            count += 1
        elif run:
            words.append((run[0], run[1], count))
            run, count = [], 0
    if run:
        words.append((run[0], run[1], count))
    return words


def _group(words: list[WordTiming], counts: list[int]) -> list[tuple[float, float]]:
    """Group aligned words like Piper's (espeak joins e.g. "in the" into one phoneme word)."""
    spans: list[tuple[float, float]] = []
    i = 0
    for count in counts:
        start, seen = words[i].start, 0
        while seen < count and i < len(words):
            seen += len(phonemize_word(words[i].word))
            end = words[i].end
            i += 1
        spans.append((start, end))
    return spans


def _centre_errors(truth: SpeechClip, aligned: SpeechClip) -> list[float]:
    a = [((p.start + p.end) / 2, p.phoneme) for p in truth.phonemes if p.phoneme]
    b = [((p.start + p.end) / 2, p.phoneme) for p in aligned.phonemes if p.phoneme]
    matcher = difflib.SequenceMatcher(a=[x[1] for x in a], b=[x[1] for x in b], autojunk=False)
    return [
        abs(a[m.a + k][0] - b[m.b + k][0])
        for m in matcher.get_matching_blocks()
        for k in range(m.size)
    ]


@pytest.fixture(scope="module")
def spoken() -> SpeechClip:
    # Without sampling noise Piper is deterministic, so the measured error is reproducible.
    return PiperTTS(noise_scale=0.0, noise_w_scale=0.0).synthesize_clause(SENTENCE)


def test_recovers_piper_timeline(spoken: SpeechClip) -> None:
    chunk = AudioChunk(spoken.audio, spoken.sample_rate)
    aligned = align_speech(chunk, SENTENCE)
    assert aligned.text == SENTENCE and aligned.pts == 0.0
    assert aligned.sample_rate == spoken.sample_rate and len(aligned.audio) == len(spoken.audio)
    assert_tiles(aligned)

    truth = _truth_words(spoken)
    words = align_words(chunk, SENTENCE)
    assert [w.word for w in words] == SENTENCE.rstrip(".").split()
    spans = _group(words, [c for _, _, c in truth])
    assert len(spans) == len(truth)
    word_errors = [abs(t[0] - s[0]) for t, s in zip(truth, spans, strict=True)] + [
        abs(t[1] - s[1]) for t, s in zip(truth, spans, strict=True)
    ]
    centre_errors = _centre_errors(spoken, aligned)
    truth_count = sum(1 for p in spoken.phonemes if p.phoneme)
    assert len(centre_errors) > 0.9 * truth_count, "phoneme sequences should nearly match"
    word_median = float(np.median(word_errors))
    centre_median = float(np.median(centre_errors))
    print(
        f"\nalign: median word-boundary error {word_median * 1000:.0f} ms, "
        f"median phoneme-centre error {centre_median * 1000:.0f} ms "
        f"({len(centre_errors)}/{truth_count} phonemes matched)"
    )
    assert word_median < 0.08
    assert centre_median < 0.08


def test_without_transcript_and_at_another_rate(spoken: SpeechClip) -> None:
    # 48 kHz input (a typical WAV), no transcript: the recognised words are used.
    audio48 = resample_poly(spoken.audio, 320, 147).astype(np.float32)
    aligned = align_speech(AudioChunk(audio48, 48000))
    assert aligned.sample_rate == 48000
    assert_tiles(aligned)
    assert "umbrella" in aligned.text.lower()
    truth = [p for p in spoken.phonemes if p.phoneme]
    got = [p for p in aligned.phonemes if p.phoneme]
    assert abs(got[0].start - truth[0].start) < 0.08
    assert abs(got[-1].end - truth[-1].end) < 0.15


def test_transcript_words_missing_from_recognition_are_interpolated(spoken: SpeechClip) -> None:
    # The transcript says more than whisper will hear for some words; every word still gets time.
    transcript = "Please remember to bring your big umbrella tomorrow because it might rain."
    words = align_words(AudioChunk(spoken.audio, spoken.sample_rate), transcript)
    assert [w.word for w in words] == transcript.rstrip(".").split()
    assert all(w.end >= w.start for w in words)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:], strict=False))


def test_silence_gives_a_silent_clip() -> None:
    clip = align_speech(AudioChunk(np.zeros(16000, dtype=np.float32), 16000))
    assert [(p.phoneme, p.start, p.end) for p in clip.phonemes] == [("", 0.0, 1.0)]
    assert clip.text == ""


def test_sound_without_words_gives_no_phonemes() -> None:
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    clip = align_speech(AudioChunk(tone, 16000))
    assert clip.phonemes == ()
    assert len(clip.audio) == len(tone)


def test_integer_and_stereo_input(spoken: SpeechClip) -> None:
    pcm = (spoken.audio * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1)
    words = align_words(AudioChunk(stereo, spoken.sample_rate), SENTENCE)
    assert len(words) == len(SENTENCE.split())


def test_a_sound_heard_as_one_word_over_and_over_is_not_speech() -> None:
    # Whisper's fallback temperatures sample: now and then a pure tone came back as
    # "beep beep beep beep beep beep beep", which passed the compression-ratio test.
    from types import SimpleNamespace

    from talkie.voice.align import _one_word_over_and_over

    def words(text: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(word=f" {w}") for w in text.split()]

    assert _one_word_over_and_over(words("Beep beep, beep beep beep. Beep beep!"))
    assert _one_word_over_and_over(words("la la la la la"))
    assert not _one_word_over_and_over(words("Please remember to bring your big umbrella"))
    assert not _one_word_over_and_over(words("I think, I think so"))
    assert not _one_word_over_and_over(words("no no no"))  # too short to judge
