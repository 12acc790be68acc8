"""Voice previews and matching for the server, run in a worker process (``talkie.worker``) so that
their CPU work never stalls the server's rendering threads.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from talkie.errors import InvalidInputError
from talkie.media.audio import wav_bytes
from talkie.messages import AudioChunk
from talkie.voice import load_tts
from talkie.voice.base import TextToSpeech
from talkie.voice.match import match_voice

__all__ = ["MAX_PREVIEW_CHARS", "VoiceWorkshop"]

MAX_PREVIEW_CHARS = 400
_ENGINES_KEPT = 6


class VoiceWorkshop:
    """Speaks previews with any voice spec (recently used engines kept) and matches samples."""

    def __init__(self) -> None:
        self._engines: OrderedDict[str, TextToSpeech] = OrderedDict()

    def _engine(self, spec: str) -> TextToSpeech:
        engine = self._engines.pop(spec, None) or load_tts(spec)
        self._engines[spec] = engine
        while len(self._engines) > _ENGINES_KEPT:
            self._engines.popitem(last=False)
        return engine

    def preview(self, spec: str, text: str) -> bytes:
        """``text`` spoken by the voice, as WAV bytes."""
        if len(text) > MAX_PREVIEW_CHARS:
            raise InvalidInputError(
                f"a preview text must be at most {MAX_PREVIEW_CHARS} characters"
            )
        engine = self._engine(spec)
        clips = list(engine.synthesize(text))
        audio = np.concatenate([c.audio for c in clips]) if clips else np.zeros(0, np.float32)
        return wav_bytes(AudioChunk(audio, clips[0].sample_rate if clips else 22050))

    def match(self, samples: np.ndarray, sample_rate: int, accent: str) -> dict[str, object]:
        return match_voice(samples, sample_rate, accent=accent).as_dict()

    def prepare_clone(self, reference: str) -> None:
        """Upload a cloned voice's recording to the speech server now (errors surface at once)."""
        engine = load_tts(f"clone:{Path(reference)}")
        load = getattr(engine, "load", None)
        if callable(load):
            load()
