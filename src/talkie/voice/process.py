"""A TTS engine in its own process, for live sessions (see ``talkie.worker`` for why).

Clips stream back over a pipe as soon as each clause is synthesised.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from talkie.messages import SpeechClip
from talkie.voice.base import TextToSpeech
from talkie.worker import RemoteWorker, WorkerProcess


def _make_tts(spec: str) -> TextToSpeech:
    """Built in the child process: load the engine and its model once."""
    from talkie.voice import load_tts

    tts = load_tts(spec)
    load = getattr(tts, "load", None)
    if callable(load):
        load()
    return tts


class ProcessTTS:
    """``TextToSpeech`` backed by a worker process running ``load_tts(spec)``, or by a speech
    service that holds many voices (``service``: ``talkie.session.voices.SpeechModels``)."""

    def __init__(
        self, *, spec: str = "piper", niceness: int = 5, service: RemoteWorker | None = None
    ) -> None:
        self.spec = spec
        self.name = f"process:{spec}"
        self._service = service
        self._worker = service or WorkerProcess(
            factory=functools.partial(_make_tts, spec), name="voice", niceness=niceness
        )
        self._sample_rate = 0

    @property
    def sample_rate(self) -> int:
        if not self._sample_rate:
            if self._service is not None:
                self._sample_rate = int(self._service.call_one("sample_rate", self.spec))
            else:
                self._sample_rate = int(
                    next(iter(self._worker.call("__getattribute__", "sample_rate")))
                )
        return self._sample_rate

    def load(self) -> None:
        self._worker.start()

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        if self._service is not None:
            yield from self._service.call("synthesize", self.spec, text)
        else:
            yield from self._worker.call("synthesize", text)

    def close(self) -> None:
        self._worker.close()
