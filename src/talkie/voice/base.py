"""The text-to-speech protocol: text in, audio plus phoneme timings out, clause by clause."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from talkie.messages import SpeechClip


@runtime_checkable
class TextToSpeech(Protocol):
    """A TTS engine. ``synthesize`` yields one ``SpeechClip`` per sentence/clause as soon as it is
    ready, so a caller can start playing the first clause while later ones are synthesised.

    Each clip's ``phonemes`` tile its audio: timings are relative to the clip's own start, and the
    clip's ``pts`` is 0.0 (callers place clips on their clock).
    """

    name: str

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> Iterator[SpeechClip]: ...
