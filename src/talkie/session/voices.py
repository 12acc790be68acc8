"""Voice processes shared by all live sessions (one per voice spec, started once).

Sessions come and go (a page reload is a new session); the voice model should not be reloaded
each time, and one process per voice keeps the CPU for rendering.
"""

from __future__ import annotations

import atexit
import threading

from talkie.voice.process import ProcessTTS

_lock = threading.Lock()
_voices: dict[str, ProcessTTS] = {}


def shared_voice(spec: str) -> ProcessTTS:
    with _lock:
        voice = _voices.get(spec)
        if voice is None:
            voice = _voices[spec] = ProcessTTS(spec=spec)
        return voice


@atexit.register
def close_voices() -> None:
    with _lock:
        for voice in _voices.values():
            voice.close()
        _voices.clear()
