"""A designed voice: the bundled voice with its pace, liveliness and accent set in the model and
its pitch, intonation range and formants moved by ``talkie.voice.shift`` (timings unchanged).

What it can and cannot sound like: shifting a man's recorded voice moves its register and its
vocal-tract size, which is most of what people hear as pitch, gender and age; it does not change
the breathiness, the articulation or the rhythm of the speaker, which stay joe's. A female design
sounds like a convincing higher, smaller voice with a man's manner of speaking, and past about
twice the pitch PSOLA's grain repetition adds a slight buzz.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from talkie.messages import SpeechClip
from talkie.voice.design import VoiceDesign
from talkie.voice.piper_tts import PiperTTS
from talkie.voice.shift import ShiftSettings, median_f0, shift_voice

__all__ = ["DesignedTTS", "base_pitch"]

_CALIBRATION = (
    "The museum opens at nine in the morning, and visitors can walk through the old garden. "
    "Would you like a ticket for today?"
)
_BASE_PITCH: dict[tuple[Path | None, str], float] = {}
_BASE_LOCK = threading.Lock()


def base_pitch(tts: PiperTTS) -> float:
    """The voice's usual median pitch (Hz), measured once per process on a calibration text."""
    key = (tts.options.model_path, tts.dialect)
    with _BASE_LOCK:
        if key not in _BASE_PITCH:
            audio = np.concatenate([c.audio for c in tts.synthesize(_CALIBRATION)])
            _BASE_PITCH[key] = median_f0(audio, tts.sample_rate) or 110.0
        return _BASE_PITCH[key]


class DesignedTTS:
    """``TextToSpeech`` for a ``VoiceDesign`` on the bundled voice."""

    def __init__(self, design: VoiceDesign) -> None:
        self.design = design
        self._base = PiperTTS(
            length_scale=design.length_scale,
            noise_scale=design.noise_scale,
            noise_w_scale=design.noise_w,
            dialect=design.accent,
        )
        self.name: str = design.to_spec()
        self.sample_rate: int = self._base.sample_rate

    def load(self) -> None:
        self._base.load()
        self.settings()

    def settings(self) -> ShiftSettings:
        pitch = self.design.pitch / base_pitch(self._base) if self.design.pitch else 1.0
        return ShiftSettings(
            pitch=pitch, pitch_range=self.design.pitch_range, formant=self.design.formant
        )

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        clips = self._base.synthesize(text)  # raises on empty text before iteration
        return (self.transform(clip) for clip in clips)

    def synthesize_clause(self, clause: str) -> SpeechClip:
        return self.transform(self._base.synthesize_clause(clause))

    def transform(self, clip: SpeechClip) -> SpeechClip:
        settings = self.settings()
        if settings.identity:
            return clip
        audio = shift_voice(clip.audio, clip.sample_rate, settings)
        return dataclasses.replace(clip, audio=audio)
