"""Voice: text-to-speech engines with phoneme timings, and alignment of audio without timings.

``load_tts(spec)`` picks an engine by a short spec string:

- ``"piper"``: the bundled neural voice (en_US joe), the default;
- ``"piper:/path/voice.onnx"``: any other Piper voice (its ``.onnx.json`` next to it);
- ``"design:pitch=205,formant=1.17,..."``: a designed voice (``VoiceDesign.to_spec``);
- ``"remote:NAME"`` / ``"clone:PATH"``: a stock or a cloned voice on the operator's speech server
  (``talkie.voice.remote``: ``TALKIE_TTS_URL``, OpenAI-compatible ``/audio/speech``);
- ``"espeak"`` / ``"espeak:en-us+f3"``: espeak-ng through the system library (GPL, loaded in the
  process that runs it: optional, never the default), any of its voices.

Heavy dependencies (onnxruntime, faster-whisper) are imported only when an engine is first used.
"""

from __future__ import annotations

from talkie.errors import InvalidInputError
from talkie.voice.align import WordTiming, align_speech, align_words
from talkie.voice.base import TextToSpeech
from talkie.voice.design import VoiceDesign, design_from_prompt
from talkie.voice.espeak_tts import EspeakOptions, EspeakTTS
from talkie.voice.piper_tts import PiperOptions, PiperTTS
from talkie.voice.text import split_clauses

__all__ = [
    "EspeakOptions",
    "EspeakTTS",
    "PiperOptions",
    "PiperTTS",
    "TTS_SPECS",
    "TextToSpeech",
    "VoiceDesign",
    "design_from_prompt",
    "WordTiming",
    "align_speech",
    "align_words",
    "load_tts",
    "split_clauses",
]

TTS_SPECS = (
    "piper",
    "piper:/path/voice.onnx",
    "design:pitch=205,formant=1.17,...",
    "remote:<server voice>",
    "espeak",
    "espeak:<voice> (e.g. espeak:en-us+f3)",
)


def load_tts(spec: str = "piper") -> TextToSpeech:
    """Create the TTS engine named by ``spec`` (see the module docstring for the forms).

    Raises ``InvalidInputError`` for an unknown spec or a missing voice file, and
    ``MissingDependencyError`` if the engine's library is not installed.
    """
    engine, _, argument = spec.strip().partition(":")
    engine = engine.lower()
    argument = argument.strip()
    if engine == "piper":
        if not argument or argument.lower() == "joe":
            return PiperTTS()
        return PiperTTS(model_path=argument)
    if engine == "design":
        from talkie.voice.designed import DesignedTTS

        return DesignedTTS(VoiceDesign.from_spec(spec.strip()))
    if engine in ("remote", "clone") and argument:
        from talkie.voice.remote import RemoteTTS

        if engine == "clone":
            return RemoteTTS(reference=argument)
        return RemoteTTS(voice=argument)
    if engine == "espeak" or engine == "espeak-ng":
        return EspeakTTS(voice=argument) if argument else EspeakTTS()
    raise InvalidInputError(f"unknown TTS {spec!r}: use one of {', '.join(TTS_SPECS)}")
