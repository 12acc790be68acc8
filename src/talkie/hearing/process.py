"""Speech recognition in its own process, shared by live sessions (see ``talkie.worker``)."""

from __future__ import annotations

import functools

import numpy as np

from talkie.hearing.asr import AsrResult, SpeechRecognizer, WhisperAsr, WhisperOptions
from talkie.worker import RemoteWorker, WorkerProcess


def _make_recognizer(options: WhisperOptions) -> SpeechRecognizer:
    """Built in the child process: load the model once."""
    recognizer = WhisperAsr(options=options)
    recognizer.load()
    return recognizer


class ProcessRecognizer:
    """``SpeechRecognizer`` backed by a worker process running ``WhisperAsr``, or by a speech
    service's recognizer (``service``: any object with the same ``transcribe``). Requests from
    several sessions are served one at a time (a final takes ~60-120 ms)."""

    def __init__(
        self,
        *,
        options: WhisperOptions | None = None,
        niceness: int = 5,
        service: RemoteWorker | None = None,
    ) -> None:
        opts = options or WhisperOptions()
        self.name = "process:whisper"
        self._worker: WorkerProcess | RemoteWorker = service or WorkerProcess(
            factory=functools.partial(_make_recognizer, opts), name="speech recognizer",
            niceness=niceness,
        )  # fmt: skip

    def load(self) -> None:
        self._worker.start()

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult:
        result: AsrResult = self._worker.call_one("transcribe", audio, prompt=prompt)
        return result

    def close(self) -> None:
        self._worker.close()
