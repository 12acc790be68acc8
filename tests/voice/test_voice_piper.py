"""PiperTTS with the bundled voice: clean phoneme timings that tile the audio, clause streaming."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from voice_testutil import assert_good_audio, assert_tiles

from talkie.errors import InvalidInputError
from talkie.voice import PiperTTS, split_clauses
from talkie.voice.base import TextToSpeech
from talkie.voice.piper_tts import _timings_from_durations

LONG_TEXT = (
    "Good morning, and welcome to the show. Today we are talking about volcanoes. "
    "They are mountains that can erupt with fire; some sleep for centuries. "
    "Scientists watch them closely, using sensors placed all around the crater. "
    "Would you like to hear more? Let's begin!"
)


def test_is_a_text_to_speech(piper: PiperTTS) -> None:
    assert isinstance(piper, TextToSpeech)
    assert piper.name == "piper" and piper.sample_rate == 22050


def test_clip_phonemes_tile_audio_exactly(piper: PiperTTS) -> None:
    clips = list(piper.synthesize("Hello, Dr. Smith! The weather is lovely today; isn't it?"))
    assert [c.text for c in clips] == [
        "Hello, Dr. Smith!",
        "The weather is lovely today;",
        "isn't it?",
    ]
    for clip in clips:
        assert clip.sample_rate == 22050 and clip.pts == 0.0
        assert_good_audio(clip)
        assert_tiles(clip)
        # the phoneme sample counts add up to the audio to within one sample
        samples = sum(round(p.duration * clip.sample_rate) for p in clip.phonemes)
        assert abs(samples - len(clip.audio)) <= 1


def test_timings_are_the_models_own_durations(piper: PiperTTS) -> None:
    """Every boundary sits on the decoder's frame grid (256 samples): the timeline is the one the
    model predicted and the audio was generated from, not an estimate."""
    clip = piper.synthesize_clause("Bob bought a map of Panama, maybe.")
    hop = 256
    assert len(clip.audio) % hop == 0
    for p in clip.phonemes:
        assert round(p.start * clip.sample_rate) % hop == 0, p
    assert round(clip.phonemes[-1].end * clip.sample_rate) == len(clip.audio)


def test_no_gpl_code_in_the_process() -> None:
    """The default voice runs without piper-tts or libespeak-ng in the process (licence)."""
    code = (
        "import sys; from talkie.voice import load_tts; "
        "clip = next(iter(load_tts('piper').synthesize('Hello there.'))); "
        "maps = open('/proc/self/maps').read(); "
        "assert clip.audio.size > 0; "
        "print('espeak' in maps, any(m == 'piper' or m.startswith('piper.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_no_stress_marks_or_markers(piper: PiperTTS) -> None:
    clip = piper.synthesize_clause("Attention, please: the extraordinary concert starts now.")
    labels = [p.phoneme for p in clip.phonemes]
    joined = "".join(labels)
    for bad in ("ˈ", "ˌ", "^", "$", "_", " ", ",", ".", ":"):
        assert bad not in joined, bad
    spoken = [label for label in labels if label]
    assert len(spoken) > 30
    assert "ː" not in spoken, "length marks must join the vowel before them"
    assert any(label.endswith("ː") for label in spoken)
    # the clip starts and ends with silence (BOS/EOS and the final period)
    assert labels[0] == "" and labels[-1] == ""


def test_phonemes_follow_the_audio(piper: PiperTTS) -> None:
    clip = piper.synthesize_clause("Sunday, Monday, Tuesday.")
    audio = clip.audio.astype(np.float64)

    def rms(start: float, end: float) -> float:
        seg = audio[int(start * clip.sample_rate) : int(end * clip.sample_rate)]
        return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0

    vowels = [p for p in clip.phonemes if p.phoneme[:1] in "aeiouʌæɑɔəɛɪʊ"]
    pauses = [p for p in clip.phonemes if p.phoneme == "" and p.duration > 0.08]
    assert vowels and pauses
    assert np.median([rms(p.start, p.end) for p in vowels]) > 4 * np.median(
        [rms(p.start, p.end) for p in pauses]
    )


def test_first_clip_arrives_before_the_rest_is_synthesised(piper: PiperTTS) -> None:
    clauses = split_clauses(LONG_TEXT)
    assert len(clauses) >= 7
    started = time.perf_counter()
    stream = piper.synthesize(LONG_TEXT)
    first = next(stream)
    first_at = time.perf_counter() - started
    rest = list(stream)
    total = time.perf_counter() - started
    # one clip per clause, in order, yielded as each is ready
    assert [c.text for c in [first, *rest]] == clauses
    assert first_at < total / 3, (first_at, total)
    audio_seconds = first.duration + sum(c.duration for c in rest)
    print(
        f"\npiper: first clip after {first_at * 1000:.0f} ms; "
        f"{audio_seconds:.1f} s audio in {total:.2f} s (RTF {total / audio_seconds:.3f})"
    )


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_an_error_before_iteration(piper: PiperTTS, text: str) -> None:
    with pytest.raises(InvalidInputError, match="nothing to say: the text is empty"):
        piper.synthesize(text)


def test_length_scale_changes_speed() -> None:
    text = "This sentence is spoken at two different speeds."
    # noise_w 0: phoneme durations without their random spread (which alone put the ratio
    # anywhere from 1.43 to 2.02 over 30 runs)
    fast = PiperTTS(length_scale=0.7, noise_w_scale=0.0).synthesize_clause(text)
    slow = PiperTTS(length_scale=1.4, noise_w_scale=0.0).synthesize_clause(text)
    assert slow.duration > 1.5 * fast.duration
    assert_tiles(fast)
    assert_tiles(slow)


def test_invalid_options_fail_early(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        PiperTTS(model_path=tmp_path / "missing.onnx")
    with pytest.raises(InvalidInputError, match="length_scale"):
        PiperTTS(length_scale=0)
    with pytest.raises(InvalidInputError, match="speaker"):
        PiperTTS(speaker=3)
    with pytest.raises(InvalidInputError, match="speaker"):
        PiperTTS(speaker="alice")
    fake = tmp_path / "voice.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(InvalidInputError, match="config"):
        PiperTTS(model_path=fake)


def test_missing_durations_fall_back_to_typical_durations(piper: PiperTTS) -> None:
    clip = piper.synthesize_clause("Nice to meet you.")
    pairs = piper.phoneme_ids("Nice to meet you.")
    timings = _timings_from_durations(pairs, np.zeros(0), clip.audio, clip.sample_rate)
    spoken_fallback = [t.phoneme for t in timings if t.phoneme]
    spoken_real = [p.phoneme for p in clip.phonemes if p.phoneme]
    assert spoken_fallback == spoken_real
    assert timings[0].start == 0.0 and timings[-1].end == pytest.approx(clip.duration)
    # the estimated centres are in the right neighbourhood of the real ones
    real = [(p.start + p.end) / 2 for p in clip.phonemes if p.phoneme]
    guess = [(t.start + t.end) / 2 for t in timings if t.phoneme]
    assert np.median(np.abs(np.array(real) - np.array(guess))) < 0.1


def test_synthesis_runs_on_one_thread_unless_configured(
    piper: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One ONNX thread by default: a voice must not take every core from the live sessions'
    # renderers while it synthesises an answer.
    piper.synthesize_clause("Hello.")
    options = piper._get_model().session.get_session_options()
    assert options.intra_op_num_threads == 1
    monkeypatch.setenv("TALKIE_PIPER_THREADS", "2")
    assert PiperTTS()._threads == 2
    monkeypatch.setenv("TALKIE_PIPER_THREADS", "0")
    assert PiperTTS()._threads == 0  # ONNX's default: every core
    for wrong in ("two", "-1", "1000"):
        monkeypatch.setenv("TALKIE_PIPER_THREADS", wrong)
        with pytest.raises(InvalidInputError, match="TALKIE_PIPER_THREADS"):
            PiperTTS()
