"""MotionGenerator: determinism, stepping, scheduling on the media clock, barge-in."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import FaceFrame, FaceParams, PhonemeTiming, SpeechClip
from talkie.motion import MotionGenerator, MotionOptions
from talkie.motion.visemes import phoneme_openness_track

from ._synth import SENTENCE, best_lag, make_clip, reversals, words

FPS = 24.0
NAMES = FaceParams.names()
JAW, PRESS = NAMES.index("jaw_open"), NAMES.index("lip_press")


def as_array(frames: list[FaceFrame]) -> np.ndarray:
    return np.array([f.params.as_array() for f in frames], dtype=np.float64)


def scripted(seed: int, *, steps: bool) -> list[FaceFrame]:
    """Idle, then a clip, a barge-in, listening and another clip: the same calls either way."""
    gen = MotionGenerator(fps=FPS, seed=seed)
    clip = make_clip(words(SENTENCE, 0.075))

    def produce(n: int) -> list[FaceFrame]:
        if not steps:
            return gen.generate(n)
        out: list[FaceFrame] = []
        for _ in range(n // 4):
            out.extend(gen.next_step())
        return out

    frames = produce(48)
    gen.push(clip, start=2.5, generation=1)
    frames += produce(80)
    gen.clear(generation=2)
    gen.set_mode("listening")
    frames += produce(60)
    gen.push(clip, start=gen.frame_index / FPS + 0.2, generation=2)
    frames += produce(52)
    return frames


def test_generate_equals_consecutive_steps_and_is_deterministic() -> None:
    a = scripted(0, steps=False)
    b = scripted(0, steps=True)
    assert len(a) == len(b) == 240
    assert a == b  # frozen dataclasses: exact equality of every field
    assert scripted(0, steps=True) == b
    c = scripted(1, steps=True)
    diff = np.abs(as_array(b) - as_array(c)).max(axis=0)
    for name in ("head_yaw", "head_pitch", "gaze_x", "blink_left"):
        assert diff[NAMES.index(name)] > 0.05, name


def test_steps_are_four_frames_with_consecutive_pts() -> None:
    gen = MotionGenerator(fps=FPS, seed=0)
    frames: list[FaceFrame] = []
    for _ in range(10):
        step = gen.next_step()
        assert len(step) == 4
        frames.extend(step)
    assert [f.index for f in frames] == list(range(40))
    assert all(f.pts == f.index / FPS for f in frames)
    assert gen.frame_index == 40
    odd = gen.generate(6)
    assert [f.index for f in odd] == list(range(40, 46))
    assert MotionGenerator(fps=30.0, seed=0, options=MotionOptions(step_frames=6)).next_step()[
        -1
    ].pts == pytest.approx(5 / 30.0)


def test_step_boundaries_are_continuous() -> None:
    frames = as_array(scripted(3, steps=True))
    cols = [NAMES.index(n) for n in ("head_yaw", "head_pitch", "head_roll", "head_dy", "smile")]
    d = np.abs(np.diff(frames[:, cols], axis=0))
    boundary = d[3::4]  # frame 3 -> 4, 7 -> 8, ...
    within = np.delete(d, np.s_[3::4], axis=0)
    assert np.all(boundary.max(axis=0) <= within.max(axis=0) * 1.5 + 1e-3)
    assert d[:, :3].max() < 0.8  # head never jumps more than 0.8 degrees per frame


def _speech_frames(start: float) -> tuple[SpeechClip, list[FaceFrame]]:
    clip = make_clip(words(SENTENCE, 0.075))
    gen = MotionGenerator(fps=FPS, seed=0)
    gen.push(clip, start=start, generation=4)
    return clip, gen.generate(int((start + clip.duration + 1.0) * FPS))


@pytest.mark.parametrize("start", [0.5, 1.0, 1.37, 2.013])
def test_mouth_is_aligned_with_the_media_clock(start: float) -> None:
    clip, frames = _speech_frames(start)
    arr = as_array(frames)
    shifted = tuple(PhonemeTiming(p.phoneme, p.start + start, p.end + start) for p in clip.phonemes)
    reference = phoneme_openness_track(shifted, FPS, len(arr))
    jaw = arr[:, JAW]
    assert abs(best_lag(reference, jaw)) <= 1
    assert np.corrcoef(reference, jaw)[0, 1] > 0.6
    assert np.all(jaw[: int((start - 0.2) * FPS)] == 0.0)  # silent before the clip
    assert np.all(jaw[-int(0.3 * FPS) :] == 0.0)  # and closed after it
    assert reversals(jaw).size == 0
    gens = {f.generation for f in frames if f.params.jaw_open > 0.1}
    assert gens == {4}


def test_bilabials_close_in_generated_frames() -> None:
    start = 0.7
    clip, frames = _speech_frames(start)
    arr = as_array(frames)
    for p in clip.phonemes:
        if p.phoneme in ("p", "b", "m"):
            i = int(round((start + 0.5 * (p.start + p.end)) * FPS))
            assert arr[i, PRESS] >= 0.98 and arr[i, JAW] <= 0.02


def test_clear_closes_the_mouth_within_four_frames() -> None:
    clip = make_clip(words(SENTENCE, 0.075))
    for cut in range(20, 60, 3):
        gen = MotionGenerator(fps=FPS, seed=1)
        gen.push(clip, start=0.3, generation=1)
        before = as_array(gen.generate(cut))
        gen.clear(generation=2)
        after = gen.generate(30)
        arr = as_array(after)
        assert np.all(arr[3:, JAW] <= 0.01) and np.all(arr[3:, PRESS] <= 0.01), cut
        assert arr[0, JAW] <= before[-1, JAW] + 1e-9  # starts relaxing at once, from where it was
        assert np.all(np.diff(arr[:4, JAW]) <= 1e-9)  # monotonic close, no bounce
        assert {f.generation for f in after} == {2}
        # Speech gestures fade as fast: no head jump at the barge-in.
        col = NAMES.index("head_pitch")
        pitch = np.concatenate([before[:, col], arr[:, col]])
        assert np.abs(np.diff(pitch)).max() < 1.0


def test_back_to_back_and_late_clips() -> None:
    clip = make_clip(words("h ə l o ʊ , m a ɪ n e ɪ m", 0.07))
    gen = MotionGenerator(fps=FPS, seed=2)
    gen.push(clip, start=0.5, generation=1)
    gen.push(clip, start=0.5 + clip.duration, generation=1)  # gapless continuation
    frames = gen.generate(int((0.5 + 2 * clip.duration + 1.0) * FPS))
    jaw = as_array(frames)[:, JAW]
    assert reversals(jaw).size == 0
    assert np.abs(np.diff(jaw)).max() < 0.75  # a release into "a" is fast, never a snap
    # A clip whose start already passed joins at the next frame instead of failing.
    gen.push(clip, start=gen.frame_index / FPS - 0.3)
    late = as_array(gen.generate(24))
    assert late[:, JAW].max() > 0.2
    gen.push(clip, start=-100.0)  # entirely in the past: ignored
    assert len(gen.next_step()) == 4


def test_speaking_moves_the_head_more_than_idle() -> None:
    clip = make_clip(words(SENTENCE, 0.075))
    head = [NAMES.index(n) for n in ("head_yaw", "head_pitch", "head_roll")]
    speech_motion, idle_motion = [], []
    for seed in range(4):
        gen = MotionGenerator(fps=FPS, seed=seed)
        t = 0.0
        while t < 30.0:
            gen.push(clip, start=t + 0.2)
            t += clip.duration + 0.4
        speaking = as_array(gen.generate(int(30 * FPS)))
        idle = as_array(MotionGenerator(fps=FPS, seed=seed).generate(int(30 * FPS)))
        speech_motion.append(np.abs(np.diff(speaking[:, head], axis=0)).mean())
        idle_motion.append(np.abs(np.diff(idle[:, head], axis=0)).mean())
        assert np.abs(speaking[:, head]).max() < 10.0
    assert np.mean(speech_motion) > 1.2 * np.mean(idle_motion)


def _arrays(frames: list[FaceFrame]) -> np.ndarray:
    return np.array([f.params.as_array() for f in frames])


def test_rewind_regenerates_unseen_frames_with_speech_pushed_late() -> None:
    clip = make_clip(words(SENTENCE))
    reference = MotionGenerator(fps=24, seed=5)
    reference.generate(20)
    reference.push(clip, start=1.0)
    expected = _arrays(reference.generate(60))

    live = MotionGenerator(fps=24, seed=5)
    live.generate(20)
    live.generate(8)  # rendered ahead of the viewer, before the speech was known
    live.push(clip, start=1.0)
    live.rewind(20)
    assert live.frame_index == 20
    np.testing.assert_allclose(_arrays(live.generate(60)), expected)


def test_rewind_keeps_clips_and_refuses_the_distant_past() -> None:
    gen = MotionGenerator(fps=24, seed=1)
    gen.push(make_clip(words(SENTENCE)), start=0.5)
    first = _arrays(gen.generate(30))
    gen.rewind(24)
    again = _arrays(gen.generate(6))
    np.testing.assert_allclose(again, first[24:30])
    gen.generate(400)
    with pytest.raises(ValueError, match="cannot rewind"):
        gen.rewind(10)


def test_a_rewind_keeps_the_mode_chosen_after_the_step_it_returns_to() -> None:
    gen = MotionGenerator(fps=24.0, seed=3)
    gen.set_mode("listening")
    gen.generate(12)
    gen.set_mode("idle")  # the user stopped talking
    gen.rewind(8)  # frames rendered ahead are produced again (an answer was placed)
    assert gen.mode == "idle"
