"""One ONNX Runtime session per small hearing model per process, shared by every session.

Each live session has its own VAD and end-of-turn state, but the models themselves are read-only:
ONNX Runtime's ``run`` is thread-safe, so one ``InferenceSession`` serves them all. Creating one
costs 60-200 ms per model on the 2-core box (measured at session start): shared, a session
starts that much sooner and holds no copy of the weights.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from talkie.errors import EngineError, MissingDependencyError

__all__ = ["shared_session"]

_sessions: dict[Path, Any] = {}
_lock = threading.Lock()


def shared_session(path: Path, *, what: str) -> Any:
    """The process's ``InferenceSession`` for the model at ``path`` (created on first use):
    CPU, one thread (a call of a few milliseconds gains nothing from more, and must not take
    a core from rendering). ``what`` names the model in errors."""
    key = path.resolve()
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = _create(key, what)
        return session


def _create(path: Path, what: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError(
            "onnxruntime is not installed: run `pip install onnxruntime`"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # the models trigger harmless initializer warnings
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise EngineError(f"cannot load the {what} model {path}: {exc}") from exc
