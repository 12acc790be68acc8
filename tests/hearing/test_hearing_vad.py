"""Silero VAD through onnxruntime, and the streaming resampler."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hearing_testutil import RATE, Utterance, frames, scene
from scipy.signal import resample_poly

from talkie.hearing import SileroVad, StreamResampler, silero_model_path


def _probabilities(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vad = SileroVad()
    pairs = frames(audio)
    probs = np.array([vad.probability(f) for f, _ in pairs])
    return probs, np.array([t for _, t in pairs])


def test_model_is_found_without_importing_the_package() -> None:
    path = silero_model_path()
    assert path.name == "silero_vad.onnx" and path.is_file()
    SileroVad().probability(np.zeros(512, np.float32))
    assert "silero_vad" not in sys.modules  # its __init__ would import torch


@pytest.mark.parametrize("snr_db", [None, 20.0])
def test_speech_versus_silence_and_noise(question: Utterance, snr_db: float | None) -> None:
    audio, start, end = scene(question, before=1.0, after=1.0, snr_db=snr_db)
    probs, times = _probabilities(audio)
    inside = (times >= start + 0.1) & (times + 0.032 <= end - 0.1)
    outside = (times + 0.032 < start - 0.15) | (times > end + 0.25)
    assert np.mean(probs[inside] > 0.5) > 0.9, probs[inside]
    assert probs[outside].max() < 0.35, probs[outside]


def test_noise_alone_is_not_speech() -> None:
    rng = np.random.default_rng(3)
    white = rng.standard_normal(RATE * 2).astype(np.float32) * 0.05
    hum = (0.2 * np.sin(2 * np.pi * 50 * np.arange(RATE * 2) / RATE)).astype(np.float32)
    for audio in (white, hum, np.zeros(RATE * 2, np.float32)):
        probs, _ = _probabilities(audio)
        assert probs.max() < 0.35


def test_state_and_reset() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(512 * 4).astype(np.float32) * 0.1
    vad = SileroVad()
    first = [vad.probability(audio[i : i + 512]) for i in range(0, len(audio), 512)]
    vad.reset()
    again = [vad.probability(audio[i : i + 512]) for i in range(0, len(audio), 512)]
    assert first == pytest.approx(again, abs=1e-6)
    with pytest.raises(ValueError, match="512"):
        vad.probability(np.zeros(480, np.float32))


def test_streams_share_the_model_but_not_their_state(question: Utterance) -> None:
    """Every session's VAD uses the process's one ONNX session (creating it costs up to 0.2 s
    at a session's start); interleaving two streams must give each what it gives alone."""
    speech, _, _ = scene(question, before=0.5, after=0.5)
    silence = np.zeros_like(speech)
    alone, _ = _probabilities(speech)
    a, b = SileroVad(), SileroVad()
    a.load()
    b.load()
    assert a._session is b._session
    together = []
    for (frame, _), (quiet, _) in zip(frames(speech), frames(silence), strict=True):
        together.append(a.probability(frame))
        assert b.probability(quiet) < 0.35
    assert together == pytest.approx(list(alone), abs=1e-6)


@pytest.mark.parametrize("in_rate", [48_000, 44_100, 24_000, 22_050, 8_000])
def test_resampler_streams_like_one_shot(in_rate: int) -> None:
    t = np.arange(in_rate) / in_rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    whole = StreamResampler(in_rate=in_rate, out_rate=RATE).process(tone)
    resampler = StreamResampler(in_rate=in_rate, out_rate=RATE)
    rng = np.random.default_rng(1)
    parts, i = [], 0
    while i < len(tone):
        n = int(rng.integers(1, 1500))
        parts.append(resampler.process(tone[i : i + n]))
        i += n
    streamed = np.concatenate(parts)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert abs(len(streamed) - RATE) <= 1
    # The output is the same tone, delayed by the filter's group delay.
    out_t = np.arange(len(streamed)) / RATE - resampler.delay_seconds
    expected = 0.5 * np.sin(2 * np.pi * 440 * out_t)
    assert np.abs(streamed[400:-400] - expected[400:-400]).max() < 1e-3


def test_resampler_rejects_aliasing() -> None:
    # 10 kHz cannot exist at 16 kHz: it must be filtered out, not folded to 6 kHz.
    t = np.arange(48_000) / 48_000
    tone = np.sin(2 * np.pi * 10_000 * t).astype(np.float32)
    out = StreamResampler(in_rate=48_000, out_rate=RATE).process(tone)
    assert np.sqrt(np.mean(out[400:-400] ** 2)) < 1e-3
    reference = resample_poly(tone, 1, 3)
    assert len(out) == len(reference)
