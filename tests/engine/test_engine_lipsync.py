"""Closed-loop lip-sync: landmarks re-detected on the RENDERED, ENCODED frames must follow the
phoneme timeline (openness), close on p/b/m, rest in silence, and show the scheduled blinks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkie.media.video import probe_video, read_frames
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.motion import RENDERED_LIP_LEAD, MotionGenerator, product_motion_options
from talkie.motion.visemes import phoneme_openness_track, viseme_for
from talkie.offline import LEAD_IN, render_video, synthesize
from talkie.quality import FaceMeasurer, best_lag
from talkie.rig import CharacterRig, build_rig
from talkie.voice import PiperTTS

FPS = 24.0
TEXT = (
    "Papa bought a map of Panama. Bob may buy maple bread, but Amy ate a ripe mango. "
    "Ha, what a bad, bad apple!"
)


@pytest.fixture(scope="module")
def speech() -> SpeechClip:
    # Piper without sampling noise: the same speech every run, so the measurement is repeatable.
    return synthesize(PiperTTS(noise_scale=0.0, noise_w_scale=0.0), TEXT)


def _analyse(rig: CharacterRig, speech: SpeechClip, out: Path) -> dict[str, np.ndarray]:
    render_video(rig, speech, out, fps=FPS, seed=3)
    frames = list(read_frames(out))
    # The intended mouth timeline: the phonemes where they play, led by the designed lip lead.
    offset = LEAD_IN + RENDERED_LIP_LEAD
    shifted = tuple(
        PhonemeTiming(p.phoneme, p.start + offset, p.end + offset) for p in speech.phonemes
    )
    openness = phoneme_openness_track(shifted, FPS, len(frames))
    audio = np.concatenate([np.zeros(int(LEAD_IN * speech.sample_rate)), speech.audio])
    half = int(0.02 * speech.sample_rate)
    centres = (np.arange(len(frames)) / FPS * speech.sample_rate).astype(int)
    envelope = np.array(
        [np.sqrt(np.mean(audio[max(0, c - half) : c + half] ** 2)) if c < len(audio) else 0.0
         for c in centres]
    )  # fmt: skip
    bilabial = np.zeros(len(frames), bool)
    for p in shifted:
        if viseme_for(p.phoneme) == "PP":
            bilabial[int(round((p.start + p.end) / 2 * FPS))] = True
    with FaceMeasurer() as m:
        tracks = m.measure_many(frames)
    # The same motion, regenerated (deterministic per seed), tells where blinks were scheduled.
    motion = MotionGenerator(fps=FPS, seed=3, options=product_motion_options())
    motion.push(speech, start=LEAD_IN)
    params = motion.generate(len(frames))
    blink = np.array([max(f.params.blink_left, f.params.blink_right) for f in params])
    speaking = np.zeros(len(frames), bool)
    first, last = int(LEAD_IN * FPS), int((LEAD_IN + speech.duration) * FPS)
    speaking[first:last] = True
    return {
        "aperture": tracks["aperture"],
        "eyes": (tracks["eye_open_left"] + tracks["eye_open_right"]) / 2,
        "openness": openness,
        "envelope": envelope,
        "bilabial": bilabial,
        "blink": blink,
        "speaking": speaking,
        "frames": np.array(len(frames)),
    }


@pytest.fixture(scope="module")
def astronaut_result(astronaut_rig: CharacterRig, speech: SpeechClip, tmp_path_factory) -> dict:  # type: ignore[no-untyped-def]
    return _analyse(astronaut_rig, speech, tmp_path_factory.mktemp("lipsync") / "a.mp4")


@pytest.fixture(scope="module")
def closed_result(closed_mouth_photo: np.ndarray, speech: SpeechClip, tmp_path_factory) -> dict:  # type: ignore[no-untyped-def]
    rig = build_rig(closed_mouth_photo)
    return _analyse(rig, speech, tmp_path_factory.mktemp("lipsync") / "c.mp4")


@pytest.mark.parametrize("which", ["astronaut_result", "closed_result"])
def test_mouth_follows_the_phonemes(which: str, request) -> None:  # type: ignore[no-untyped-def]
    r = request.getfixturevalue(which)
    ap, op = r["aperture"], r["openness"]
    assert np.isfinite(ap).mean() > 0.95, "the face is found on the rendered frames"
    open_vowels = ap[op >= 0.7]
    closures = ap[r["bilabial"]]
    silence = ap[~r["speaking"]][:8]  # the lead-in, before the first word
    assert len(open_vowels) >= 5 and len(closures) >= 5
    assert np.nanmedian(open_vowels) > np.nanmedian(closures) + 0.06
    assert np.nanmedian(open_vowels) > np.nanmedian(silence) + 0.02
    assert np.nanmedian(closures) < 0.06, "p, b, m close the lips"
    lag, corr = best_lag(ap, op, 4)
    av_lag, av_corr = best_lag(ap, r["envelope"], 4)
    print(
        f"{which}: lag {lag} frames (r={corr:.2f}); vs speech envelope {av_lag} (r={av_corr:.2f})"
    )
    assert abs(lag) <= 1
    assert corr > 0.3
    assert abs(av_lag) <= 1, "A/V offset within one frame"
    assert av_corr > 0.3


def test_scheduled_blinks_are_seen(astronaut_result: dict) -> None:  # type: ignore[type-arg]
    eyes, blink = astronaut_result["eyes"], astronaut_result["blink"]
    closed = blink > 0.9
    assert closed.any(), "a 5 s clip has at least one blink"
    open_level = np.nanmedian(eyes[blink < 0.05])
    assert np.nanmax(eyes[closed]) < 0.6 * open_level


def test_video_and_audio_lengths_match(
    astronaut_rig: CharacterRig, speech: SpeechClip, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "len.mp4"
    report = render_video(astronaut_rig, speech, out, size=(640, 360), fps=25)
    info = probe_video(out)
    assert (info["width"], info["height"]) == (640, 360)
    assert info["fps"] == pytest.approx(25)
    assert info["frames"] == report.frames
    assert abs(info["audio_duration"] - info["duration"]) <= 1 / 25
    assert info["duration"] >= speech.duration + LEAD_IN
