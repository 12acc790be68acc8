"""Hearing: the live conversation's ears (VAD, endpointing, streaming ASR).

- ``SileroVad``: speech probability per 32 ms frame (Silero v6 ONNX from the ``silero-vad``
  wheel, run with onnxruntime; torch is never imported).
- ``Endpointer``: VAD probabilities -> speech start/stop with hysteresis and a hangover.
- ``WhisperAsr``: Whisper tiny.en (faster-whisper/CTranslate2) tuned for short utterances.
- ``Hearing``: the stage. ``push(AudioChunk)`` at any sample rate, ``set_muted``, ``clear``, and
  ``async for event in hearing``: ``VoiceActivity(True)``, partial ``Transcript``s,
  ``VoiceActivity(False)``, ``FinalTranscript``. ``Hearing.traces`` holds per-utterance timings.
"""

from __future__ import annotations

from talkie.hearing.asr import (
    AsrResult,
    SpeechRecognizer,
    WhisperAsr,
    WhisperOptions,
    normalize_words,
    word_errors,
)
from talkie.hearing.endpoint import Endpointer, EndpointEvent, EndpointOptions
from talkie.hearing.hearing import Hearing, HearingEvent
from talkie.hearing.listener import (
    FinalTranscript,
    HearingOptions,
    HearingTrace,
    PauseTranscript,
)
from talkie.hearing.resample import StreamResampler
from talkie.hearing.vad import SileroVad, silero_model_path

__all__ = [
    "AsrResult",
    "EndpointEvent",
    "EndpointOptions",
    "Endpointer",
    "FinalTranscript",
    "Hearing",
    "HearingEvent",
    "HearingOptions",
    "HearingTrace",
    "PauseTranscript",
    "SileroVad",
    "SpeechRecognizer",
    "StreamResampler",
    "WhisperAsr",
    "WhisperOptions",
    "normalize_words",
    "silero_model_path",
    "word_errors",
]
