"""Assertions shared by the voice tests (imported by module name: tests have no packages)."""

from __future__ import annotations

import numpy as np

from talkie.messages import SpeechClip


def assert_tiles(clip: SpeechClip) -> None:
    """The clip's phonemes are sorted, contiguous, clean and cover exactly its audio."""
    phonemes = clip.phonemes
    assert phonemes, "no phonemes"
    assert phonemes[0].start == 0.0
    assert abs(phonemes[-1].end - clip.duration) <= 1.0 / clip.sample_rate
    total = sum(p.duration for p in phonemes)
    assert abs(total - clip.duration) <= 1.0 / clip.sample_rate
    for a, b in zip(phonemes, phonemes[1:], strict=False):
        assert a.end == b.start, (a, b)
        assert not (a.phoneme == "" and b.phoneme == ""), "adjacent silences not merged"
    assert all(p.end > p.start for p in phonemes)


def assert_good_audio(clip: SpeechClip) -> None:
    audio = clip.audio
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.01, "clip is (nearly) silent"
