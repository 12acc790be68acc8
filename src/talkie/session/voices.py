"""Model processes shared by all live sessions: one per voice spec, one speech recognizer.

Sessions come and go (a page reload is a new session); the models should not be reloaded each
time, and keeping them in their own processes keeps the server process's CPU for rendering.
"""

from __future__ import annotations

import atexit
import threading

from talkie.hearing.process import ProcessRecognizer
from talkie.voice.process import ProcessTTS

_lock = threading.Lock()
_voices: dict[str, ProcessTTS] = {}
_recognizer: list[ProcessRecognizer] = []


def shared_voice(spec: str) -> ProcessTTS:
    with _lock:
        voice = _voices.get(spec)
        if voice is None:
            voice = _voices[spec] = ProcessTTS(spec=spec)
        return voice


def shared_recognizer() -> ProcessRecognizer:
    with _lock:
        if not _recognizer:
            _recognizer.append(ProcessRecognizer())
        return _recognizer[0]


@atexit.register
def close_shared() -> None:
    with _lock:
        for voice in _voices.values():
            voice.close()
        _voices.clear()
        for recognizer in _recognizer:
            recognizer.close()
        _recognizer.clear()
