"""Pitch tracking and prosody-driven gestures."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion.audio_features import pitch_track, rms_envelope
from talkie.motion.lipsync import mouth_track
from talkie.motion.prosody import ProsodyOptions, find_nuclei, prosody_track

from ._synth import SENTENCE, SR, make_clip, words

FPS = 24.0


@pytest.mark.parametrize("f0", [85.0, 130.0, 220.0, 330.0])
def test_yin_finds_the_pitch_of_a_harmonic_tone(f0: float) -> None:
    t = np.arange(int(0.5 * SR)) / SR
    tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 8)).astype(np.float32)
    times = np.arange(3, 9) / FPS
    est, periodicity = pitch_track(tone, SR, times)
    assert np.all(np.isfinite(est))
    np.testing.assert_allclose(est, f0, rtol=0.02)
    assert np.all(periodicity > 0.8)


def test_noise_and_silence_are_unvoiced() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR).astype(np.float32) * 0.1
    audio = np.concatenate([noise, np.zeros(SR, dtype=np.float32)])
    est, _ = pitch_track(audio, SR, np.arange(48) / FPS)
    assert np.mean(np.isnan(est[:20])) > 0.8
    assert np.all(np.isnan(est[28:]))


def test_rms_envelope_is_centred_on_frame_times() -> None:
    audio = np.zeros(SR, dtype=np.float32)
    audio[SR // 2 : SR // 2 + 160] = 1.0  # 10 ms click at 0.5 s
    env = rms_envelope(audio, SR, np.array([0.45, 0.505, 0.56]))
    assert env[1] > 5 * max(env[0], env[2], 1e-9)


def test_find_nuclei_merges_diphthongs_and_reads_stress() -> None:
    phonemes = (
        PhonemeTiming("h", 0.0, 0.05),
        PhonemeTiming("ə", 0.05, 0.1),
        PhonemeTiming("l", 0.1, 0.15),
        PhonemeTiming("ˈ", 0.15, 0.2),
        PhonemeTiming("o", 0.2, 0.3),
        PhonemeTiming("ʊ", 0.3, 0.35),
    )
    assert find_nuclei(phonemes) == [(0.05, 0.1, False), (0.2, 0.35, True)]


def _accent_clip() -> tuple[SpeechClip, float]:
    # A flat sentence with one strong pitch accent (+7 semitones) around 1.2 s.
    def f0(t: np.ndarray) -> np.ndarray:
        return 120.0 * 2 ** (7 / 12 * np.exp(-0.5 * ((t - 1.2) / 0.12) ** 2))

    return make_clip(words(SENTENCE, 0.075), f0=f0), 1.2


def test_pitch_accent_raises_the_brows_and_phrase_end_nods() -> None:
    clip, accent = _accent_clip()
    t = np.arange(int((clip.duration + 0.6) * FPS)) / FPS
    mouth = mouth_track(clip, t)
    opts = ProsodyOptions(brow_probability=1.0)
    track = prosody_track(
        clip,
        t,
        energy=mouth.energy,
        presence=mouth.presence,
        rng=np.random.default_rng(0),
        options=opts,
    )
    peak = t[int(np.argmax(track.brow_raise))]
    assert abs(peak - accent) < 0.3
    assert 0.1 < track.brow_raise.max() <= opts.brow_gain + 0.2
    # The voice goes up at the accent, so the head tilts up (negative pitch) there a little.
    assert track.head_pitch[np.argmin(np.abs(t - accent))] < track.head_pitch.max()
    # Head settles (nods down) at the end of the clip's last phrase.
    end = clip.duration
    assert track.head_pitch[(t > end - 0.3) & (t < end + 0.2)].max() > 1.0
    assert len(track.phrase_ends) >= 2  # "_" pauses split the sentence into phrases
    assert np.all(np.abs(track.head_pitch) < 6.0)
    assert np.all(np.abs(track.head_yaw) <= opts.yaw_deg + 1e-9)


def test_prosody_is_deterministic_for_a_seed_and_works_without_phonemes() -> None:
    clip, _ = _accent_clip()
    t = np.arange(int(clip.duration * FPS)) / FPS
    mouth = mouth_track(clip, t)
    a, b = (
        prosody_track(
            clip, t, energy=mouth.energy, presence=mouth.presence, rng=np.random.default_rng(3)
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(a.head_pitch, b.head_pitch)
    np.testing.assert_array_equal(a.brow_raise, b.brow_raise)

    bare = make_clip(words(SENTENCE, 0.075), with_phonemes=False)
    m = mouth_track(bare, t)
    track = prosody_track(
        bare, t, energy=m.energy, presence=m.presence, rng=np.random.default_rng(0)
    )
    assert np.all(np.isfinite(track.head_pitch)) and np.all(np.isfinite(track.brow_raise))
    assert np.abs(track.head_pitch).max() > 0.5  # gestures still happen
