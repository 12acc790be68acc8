"""The learned end-of-turn model: Smart Turn v3.2 (CPU ONNX) on the last 8 s of the user's audio.

Smart Turn (BSD-2-Clause, by Daily) is a Whisper-tiny encoder with a classifier head, trained on
human speech to tell a finished turn from a pause inside one, from the intonation and rhythm of
the last few seconds. It ships inside the ``pipecat-ai`` 1.14.0 wheel; installing pipecat
itself would pull protobuf >= 5 (which breaks mediapipe), so ``make setup`` extracts just the
model file (``scripts/fetch_smart_turn.py``) into ``<venv>/share/talkie/smart-turn/`` and
checks its SHA-256. ``TALKIE_SMART_TURN_MODEL`` points elsewhere.

Input: float32 ``[1, 80, 800]``, the Whisper log-mel spectrogram (n_fft 400, hop 160, 80 Slaney
mel bands, log10, clamped to max - 8, scaled (x + 4) / 4) of exactly 8 s at 16 kHz, zero-padded
at the *front* when shorter, after zero-mean unit-variance normalisation of the waveform.
Output: the probability that the turn is complete. About 40-60 ms on one core.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from talkie.errors import EngineError, MissingDependencyError
from talkie.hearing.onnx import shared_session

__all__ = [
    "SMART_TURN_SHA256",
    "SmartTurnModel",
    "TurnModel",
    "smart_turn_model_path",
    "whisper_log_mel",
]

log = logging.getLogger(__name__)

SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 8 * SAMPLE_RATE
_N_FFT = 400
_HOP = 160
_N_MELS = 80


class TurnModel(Protocol):
    """Probability that the user has finished their turn, from 16 kHz audio ending now."""

    def load(self) -> None: ...

    def probability(self, audio: np.ndarray) -> float: ...


def smart_turn_model_path() -> Path:
    """Where the Smart Turn model is (``$TALKIE_SMART_TURN_MODEL`` or the venv's share dir)."""
    configured = os.environ.get("TALKIE_SMART_TURN_MODEL")
    path = (
        Path(configured)
        if configured
        else Path(sys.prefix) / "share" / "talkie" / "smart-turn" / SMART_TURN_FILE
    )
    if not path.is_file():
        raise MissingDependencyError(
            f"the end-of-turn model is missing ({path}): run `make setup` "
            "(or `python scripts/fetch_smart_turn.py`), which extracts it from the pipecat-ai "
            "1.14.0 wheel"
        )
    return path


def _mel_filters() -> np.ndarray:
    """Slaney-scale, area-normalised triangular filters (bins x mels), as librosa/Whisper."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        linear = 3.0 * f / 200.0
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * (27.0 / np.log(6.4))
        return np.where(f >= 1000.0, log_part, linear)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, dtype=np.float64)
        linear = 200.0 * m / 3.0
        log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log_part, linear)

    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(8000.0)), 82))
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, _N_FFT // 2 + 1)
    slopes = edges[None, :] - fft_freqs[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_FILTERS = _mel_filters()
_WINDOW = np.hanning(_N_FFT + 1)[:-1]  # periodic Hann


def whisper_log_mel(audio: np.ndarray) -> np.ndarray:
    """(80, 800) float32 features of the last 8 s of ``audio`` (see the module docstring)."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)[-WINDOW_SAMPLES:]
    if len(x) < WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(WINDOW_SAMPLES - len(x), np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # (frames, bins)
    mel = np.maximum(1e-10, power @ _FILTERS).T  # (80, frames)
    log_mel = np.log10(mel)[:, :-1]
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


class SmartTurnModel:
    """Smart Turn v3.2 on ONNX Runtime, one thread (it must not take a core from rendering).

    Thread-safe (ONNX Runtime's ``run`` is); the process's one session for the model
    (``talkie.hearing.onnx``) is taken on first use or by ``load()``.
    """

    def __init__(self, *, model_path: Path | None = None, verify: bool = True) -> None:
        self._path = model_path
        self._verify = verify
        self._session: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            self._ensure_loaded()

    def probability(self, audio: np.ndarray) -> float:
        """Probability (0..1) that the turn ending with ``audio`` (16 kHz) is complete."""
        features = whisper_log_mel(audio)[None]
        with self._lock:
            self._ensure_loaded()
        try:
            (out,) = self._session.run(None, {"input_features": features})
        except Exception as exc:  # onnxruntime raises its own types
            raise EngineError(f"the end-of-turn model failed: {exc}") from exc
        return float(np.clip(out.reshape(-1)[0], 0.0, 1.0))

    def _ensure_loaded(self) -> None:
        if self._session is not None:
            return
        path = self._path or smart_turn_model_path()
        if self._verify:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != SMART_TURN_SHA256 and self._path is None:
                raise EngineError(
                    f"{path} is not the expected Smart Turn v3.2 model (sha256 {digest[:12]}...); "
                    "run `python scripts/fetch_smart_turn.py --force`"
                )
        self._session = shared_session(path, what="end-of-turn")
        log.debug("Smart Turn loaded from %s", path)
