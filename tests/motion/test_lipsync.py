"""Coarticulated mouth tracks: closure, no flicker, pauses, A/V alignment, audio-only clips."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion.lipsync import LipSyncOptions, mouth_track, suppress_flicker
from talkie.motion.visemes import MOUTH_PARAMS, phoneme_openness_track

from ._synth import SENTENCE, SR, best_lag, make_clip, reversals, words

FPS = 24.0
JAW, WIDTH, ROUND, PRESS, RAISE = range(5)  # the first columns of MOUTH_PARAMS


def frames_of(clip: SpeechClip, extra: float = 0.5) -> np.ndarray:
    return np.arange(int((clip.duration + extra) * FPS)) / FPS


def nearest(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


@pytest.mark.parametrize("dur", [0.05, 0.065, 0.08, 0.1])
def test_bilabials_seal_and_vowels_open(dur: float) -> None:
    clip = make_clip(words(SENTENCE, dur))
    t = frames_of(clip)
    track = mouth_track(clip, t).params
    bilabial = [p for p in clip.phonemes if p.phoneme in ("p", "b", "m")]
    open_vowels = [p for p in clip.phonemes if p.phoneme in ("a", "ɑ", "æ", "ʌ")]
    assert len(bilabial) >= 8 and len(open_vowels) >= 6
    for p in bilabial:
        row = track[nearest(t, 0.5 * (p.start + p.end))]
        assert row[PRESS] >= 0.98, (p, row)
        assert row[JAW] <= 0.02, (p, row)
    vowel_jaw = [track[nearest(t, 0.5 * (p.start + p.end)), JAW] for p in open_vowels]
    assert np.median(vowel_jaw) >= 0.45
    assert min(vowel_jaw) >= 0.2


def test_short_bilabial_still_closes() -> None:
    clip = make_clip([("", 0.3), ("a", 0.15), ("b", 0.035), ("a", 0.15), ("", 0.3)])
    t = frames_of(clip)
    track = mouth_track(clip, t).params
    centre = 0.3 + 0.15 + 0.0175
    assert track[nearest(t, centre), PRESS] >= 0.98
    assert track[nearest(t, centre), JAW] <= 0.02
    assert track[nearest(t, 0.375), JAW] > 0.4


@pytest.mark.parametrize("dur", [0.04, 0.05, 0.065, 0.08, 0.1])
def test_no_shape_shorter_than_two_frames(dur: float) -> None:
    clip = make_clip(words(SENTENCE + " m a m a p a b a t ɪ k ɪ", dur))
    track = mouth_track(clip, frames_of(clip)).params
    for col in range(track.shape[1]):
        assert reversals(track[:, col]).size == 0, (col, reversals(track[:, col]))


def test_suppress_flicker_flattens_one_frame_extrema_but_keeps_protected() -> None:
    y = np.array([0.0, 0.5, 0.0, 0.5, 0.5, 0.5, 0.1, 0.6, 0.0, 0.0])[:, None]
    protected = np.zeros(len(y), dtype=bool)
    protected[8] = True
    out = suppress_flicker(y, protected=protected)
    assert reversals(out[:, 0]).size == 0
    assert out[8, 0] == 0.0


def test_long_pause_relaxes_then_closes_and_short_gap_holds() -> None:
    clip = make_clip(
        [("", 0.2), ("a", 0.2), ("", 0.08), ("a", 0.2), ("", 0.7), ("a", 0.2), ("", 0.5)]
    )
    t = frames_of(clip, extra=0.0)
    jaw = mouth_track(clip, t).params[:, JAW]
    vowel = jaw[nearest(t, 0.3)]
    assert vowel > 0.5
    # 80 ms gap between vowels: the shape holds.
    assert jaw[nearest(t, 0.44)] > 0.6 * vowel
    # 700 ms pause: shape held just after the vowel ends, then the mouth closes.
    pause_start, pause_end = 0.68, 1.38
    assert jaw[nearest(t, pause_start + 0.02)] > 0.3
    middle = (t > pause_start + 0.3) & (t < pause_end - 0.15)
    assert np.all(jaw[middle] < 0.01)
    assert np.all(np.diff(jaw[(t > pause_start) & (t < pause_start + 0.3)]) <= 1e-9)
    # Silence before and after the clip is closed.
    assert jaw[0] < 0.01 and jaw[-1] < 0.01


def test_visemes_ramp_in_before_their_phoneme() -> None:
    clip = make_clip([("", 0.5), ("a", 0.25), ("", 0.5)])
    t = frames_of(clip, extra=0.0)
    jaw = mouth_track(clip, t).params[:, JAW]
    onset = 0.5
    assert jaw[nearest(t, onset - 0.13)] < 0.02  # not way ahead of the sound
    assert jaw[nearest(t, onset - 0.04)] > 0.05  # but already moving ~1 frame before it
    assert jaw[nearest(t, onset + 0.125)] > 0.6


@pytest.mark.parametrize("lead", [0.0, 0.013, 0.027])
def test_jaw_is_aligned_with_the_openness_track(lead: float) -> None:
    clip = make_clip(words(SENTENCE, 0.075), lead=lead)
    t = frames_of(clip)
    jaw = mouth_track(clip, t).params[:, JAW]
    reference = phoneme_openness_track(clip.phonemes, FPS, len(t))
    assert abs(best_lag(reference, jaw)) <= 1
    assert np.corrcoef(reference, jaw)[0, 1] > 0.6


def test_energy_modulates_opening_a_little() -> None:
    clip = make_clip([("", 0.3), ("a", 0.25), ("", 0.3), ("a", 0.25), ("", 0.3)])
    audio = clip.audio.copy()
    audio[int(0.8 * SR) :] *= 0.4  # the second vowel is much quieter
    quiet = SpeechClip(audio=audio, sample_rate=SR, phonemes=clip.phonemes)
    t = frames_of(quiet, extra=0.0)
    jaw = mouth_track(quiet, t).params[:, JAW]
    loud_jaw, quiet_jaw = jaw[nearest(t, 0.425)], jaw[nearest(t, 0.975)]
    assert loud_jaw > quiet_jaw > 0.5 * loud_jaw
    flat = mouth_track(quiet, t, options=LipSyncOptions(energy_gain=0.0)).params[:, JAW]
    assert flat[nearest(t, 0.425)] == pytest.approx(flat[nearest(t, 0.975)], abs=1e-3)


def _tone(freq: float, harmonics: int, seconds: float, amp: float) -> np.ndarray:
    n = int(seconds * SR)
    ph = 2 * np.pi * freq * np.arange(n) / SR
    return amp * sum(np.sin(h * ph) for h in range(1, harmonics + 1)) / harmonics


def test_energy_only_clip_opens_when_loud_and_closes_in_silence() -> None:
    spec = [(0.3, None), (0.4, (150.0, 2)), (0.5, None), (0.4, (150.0, 20)), (0.4, None)]
    parts = [np.zeros(int(d * SR)) if tone is None else _tone(*tone, d, 0.3) for d, tone in spec]
    audio = np.concatenate(parts).astype(np.float32)
    clip = SpeechClip(audio=audio, sample_rate=SR, phonemes=())
    t = frames_of(clip, extra=0.2)
    track = mouth_track(clip, t)
    jaw = track.params[:, JAW]
    dark, bright = (t > 0.4) & (t < 0.6), (t > 1.3) & (t < 1.5)
    silence = ((t > 0.1) & (t < 0.2)) | ((t > 0.85) & (t < 1.05)) | (t > 1.75)
    assert jaw[dark].mean() > 0.3 and jaw[bright].mean() > 0.3
    assert np.all(jaw[silence] == 0.0)
    assert np.all(track.presence[silence] == 0.0)
    # Spectral cue: the dark (low-centroid) sound rounds the lips, the bright one spreads them.
    assert track.params[dark, ROUND].mean() > track.params[bright, ROUND].mean() + 0.1
    assert track.params[bright, WIDTH].mean() > track.params[dark, WIDTH].mean() + 0.1
    assert reversals(jaw).size == 0


def test_energy_only_speechlike_clip_tracks_the_syllables() -> None:
    clip = make_clip(words(SENTENCE, 0.08), with_phonemes=False)
    t = frames_of(clip)
    jaw = mouth_track(clip, t).params[:, JAW]
    ref_clip = make_clip(words(SENTENCE, 0.08))
    reference = phoneme_openness_track(ref_clip.phonemes, FPS, len(t))
    assert abs(best_lag(reference, jaw)) <= 1
    assert np.corrcoef(reference, jaw)[0, 1] > 0.5
    assert reversals(jaw).size == 0


def test_odd_inputs_do_not_crash() -> None:
    audio = np.zeros(SR // 2, dtype=np.float32)
    weird = (
        PhonemeTiming("a", 0.3, 0.2),  # reversed
        PhonemeTiming("ʘ", 0.0, 0.1),
        PhonemeTiming("m", 0.1, 0.1),  # zero length
        PhonemeTiming("b", 0.2, 0.25),
        PhonemeTiming("ɑː", 0.45, 2.0),  # runs past the audio
        PhonemeTiming("\U0001f600", 0.25, 0.3),
    )
    for phonemes in (weird, (), (PhonemeTiming("", 0.0, 0.5),)):
        clip = SpeechClip(audio=audio, sample_rate=SR, phonemes=phonemes)
        track = mouth_track(clip, np.arange(-5, 30) / FPS)
        assert track.params.shape == (35, len(MOUTH_PARAMS))
        assert np.all(np.isfinite(track.params))
    empty = SpeechClip(audio=np.zeros(0, dtype=np.float32), sample_rate=SR, phonemes=())
    assert mouth_track(empty, np.arange(3) / FPS).params.shape == (3, len(MOUTH_PARAMS))
    assert mouth_track(empty, np.zeros(0)).params.shape == (0, len(MOUTH_PARAMS))


def test_timed_stress_and_length_marks_do_not_close_the_mouth() -> None:
    spec = [
        ("", 0.3),
        ("l", 0.05),
        ("ˈ", 0.13),
        ("o", 0.06),
        ("ʊ", 0.05),
        ("b", 0.06),
        ("ˈ", 0.05),
        ("ɑ", 0.07),
        ("ː", 0.13),
        ("", 0.3),
    ]
    clip = make_clip(spec)
    t = frames_of(clip, extra=0.0)
    jaw = mouth_track(clip, t).params[:, JAW]
    stress = clip.phonemes[2]
    length = clip.phonemes[8]
    assert jaw[nearest(t, 0.5 * (stress.start + stress.end))] > 0.3
    assert jaw[nearest(t, 0.5 * (length.start + length.end))] > 0.5


def test_timing_offset_shifts_the_mouth_but_keeps_bilabials_sealed_until_release() -> None:
    clip = make_clip(words(SENTENCE, 0.07))
    t = frames_of(clip)
    base = mouth_track(clip, t).params
    early = mouth_track(clip, t, options=LipSyncOptions(timing_offset=-1.0 / FPS)).params
    assert best_lag(base[:, JAW], early[:, JAW]) == -1
    for p in clip.phonemes:
        if p.phoneme in ("p", "b", "m"):
            row = early[nearest(t, 0.5 * (p.start + p.end))]
            assert row[PRESS] >= 0.98 and row[JAW] <= 0.02


def test_the_tongue_rises_for_l_n_t_d_th_only() -> None:
    clip = make_clip([("", 0.2), ("a", 0.2), ("l", 0.1), ("a", 0.2), ("θ", 0.1), ("a", 0.2),
                      ("m", 0.1), ("a", 0.2), ("", 0.3)])  # fmt: skip
    t = frames_of(clip, extra=0.0)
    tongue = mouth_track(clip, t).params[:, MOUTH_PARAMS.index("tongue")]
    assert tongue[nearest(t, 0.45)] > 0.35  # l
    assert tongue[nearest(t, 0.75)] > 0.5  # th, the tip between the teeth
    assert tongue[nearest(t, 1.05)] < 0.05  # m: lips sealed, no tongue
    assert tongue[nearest(t, 0.3)] < 0.2  # a


def test_pauses_close_the_lips_and_the_photos_mouth_returns_after_speech() -> None:
    clip = make_clip([("", 0.4), ("a", 0.25), ("", 0.8), ("a", 0.25), ("", 1.0)])
    t = np.arange(-0.25, clip.duration + 0.6, 1 / FPS)  # as the generator asks: lead and tail
    close = mouth_track(clip, t).params[:, MOUTH_PARAMS.index("lip_close")]
    assert close[0] == 0.0, "the clip must not start by snapping the lips shut"
    assert close[nearest(t, 1.1)] > 0.9, "a long pause in speech closes the lips"
    assert close[nearest(t, 0.5)] < 0.2, "not while a vowel is open"
    assert close[-1] == 0.0, "after speech the photo's own mouth returns (no snap at the end)"
    after = np.abs(np.diff(close[t > 1.9]))  # the speech is over: back to the photo's mouth
    assert after.max() < 0.3, "the lips ease open again, never in one frame"
