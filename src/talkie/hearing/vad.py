"""Voice activity detection with the Silero VAD v5/v6 ONNX model, run by ONNX Runtime.

The model ships inside the ``silero-vad`` wheel (``silero_vad/data/silero_vad.onnx``). The
package itself is never imported: its ``__init__`` imports torch, which costs seconds and
hundreds of MB. We only locate its folder with ``importlib.util.find_spec``.

The v5/v6 graph is stateful and expects, per call (16 kHz):

- ``input``: float32 ``[1, 64 + 512]``: the last 64 samples of the previous frame (context),
  then the 512 new samples (32 ms);
- ``state``: float32 ``[2, 1, 128]``: the recurrent state returned by the previous call;
- ``sr``: int64 scalar 16000.

It returns ``output`` ``[1, 1]`` (speech probability) and ``stateN`` (the next state). Skipping the
context makes the probabilities noticeably worse, so we keep it exactly as the reference wrapper
does. One call costs ~0.2 ms on one core.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from talkie.errors import EngineError, MissingDependencyError
from talkie.hearing.onnx import shared_session

__all__ = ["CONTEXT_SAMPLES", "FRAME_SAMPLES", "SAMPLE_RATE", "SileroVad", "silero_model_path"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512  # 32 ms: the only frame size the 16 kHz model accepts
CONTEXT_SAMPLES = 64
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
_STATE_SHAPE = (2, 1, 128)


def silero_model_path() -> Path:
    """Path of ``silero_vad.onnx`` inside the installed ``silero-vad`` wheel (not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise MissingDependencyError(
            "the Silero VAD model is not installed: run `pip install silero-vad==6.2.3`"
        )
    path = Path(locations[0]) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise MissingDependencyError(
            f"silero_vad.onnx not found in {locations[0]}: reinstall `silero-vad==6.2.3`"
        )
    return path


class SileroVad:
    """Speech probability for consecutive 32 ms frames of 16 kHz mono audio.

    Stateful: frames must be fed in stream order; call ``reset()`` between unrelated streams.
    The ONNX session is the process's one for the model (``talkie.hearing.onnx``), taken on
    first use (or by ``load()``). Not thread-safe: one instance belongs to one stream and one
    thread (the recurrent state is the instance's own).
    """

    def __init__(self, *, model_path: str | Path | None = None) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self._session: Any = None
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def load(self) -> None:
        """Take the ONNX Runtime session now instead of on the first frame (its creation, once
        per process, takes 60-200 ms)."""
        self._get_session()

    def reset(self) -> None:
        """Forget the recurrent state and context (start of a new, unrelated stream)."""
        self._state = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)

    def probability(self, frame: np.ndarray) -> float:
        """Speech probability (0..1) of one frame of exactly 512 float32 samples at 16 kHz."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(
                f"a VAD frame must hold {FRAME_SAMPLES} samples at 16 kHz, got {frame.shape}"
            )
        session = self._get_session()
        self._input[0, :CONTEXT_SAMPLES] = self._context
        self._input[0, CONTEXT_SAMPLES:] = frame
        try:
            output, state = session.run(
                None, {"input": self._input, "state": self._state, "sr": self._sr}
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(f"Silero VAD failed: {exc}") from exc
        self._state = state
        # The context is the tail of what the model just saw, exactly as the reference wrapper.
        self._context = self._input[0, -CONTEXT_SAMPLES:].copy()
        return float(output[0, 0])

    def _get_session(self) -> Any:
        if self._session is None:
            path = self._model_path or silero_model_path()
            session = shared_session(path, what="Silero VAD")
            names = {i.name for i in session.get_inputs()}
            if names != {"input", "state", "sr"}:
                raise EngineError(
                    f"{path.name} is not a Silero VAD v5/v6 model (inputs {sorted(names)}); "
                    "install silero-vad==6.2.3"
                )
            self._session = session
        return self._session
