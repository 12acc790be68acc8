"""Model processes shared by all live sessions: one per voice spec, one speech recognizer.

Sessions come and go (a page reload is a new session); the models should not be reloaded each
time, and keeping them in their own processes keeps the server process's CPU for rendering.
"""

from __future__ import annotations

import atexit
import os
import threading

from talkie.hearing.process import ProcessRecognizer
from talkie.voice.process import ProcessTTS

# Speech models work in short bursts on the answer's critical path (the final transcript, then
# the first clause's audio), so they run at the renderer's priority: niced (5), they waited for
# the renderer and the encoder, and the answer came 0.22 s (ASR) + 0.22 s (voice) later at the
# median; the page still showed 22 of 24 fps with the browser on the same 2 cores
# (bench/conversation.py). TALKIE_SPEECH_NICENESS sets another nice level.
SPEECH_NICENESS = int(os.environ.get("TALKIE_SPEECH_NICENESS", "0"))
_lock = threading.Lock()
_voices: dict[str, ProcessTTS] = {}
_recognizer: list[ProcessRecognizer] = []


def shared_voice(spec: str) -> ProcessTTS:
    with _lock:
        voice = _voices.get(spec)
        if voice is None:
            voice = _voices[spec] = ProcessTTS(spec=spec, niceness=SPEECH_NICENESS)
        return voice


def shared_recognizer() -> ProcessRecognizer:
    with _lock:
        if not _recognizer:
            _recognizer.append(ProcessRecognizer(niceness=SPEECH_NICENESS))
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
