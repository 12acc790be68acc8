"""espeak-ng text-to-speech through the system library (ctypes), with phoneme timings.

espeak-ng reports every phoneme it speaks as an ``espeakEVENT_PHONEME`` event carrying the sample
position where it starts, so the phoneme timeline is exact and free. It is robotic but tiny, very
fast (real-time factor ~0.001) and speaks ~100 languages: the fallback and multilingual engine.

The library keeps global state (one synthesis callback, one current voice) and is not thread-safe,
so it is initialised once per process and every call into it holds ``_LIB_LOCK``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.voice.phonemes import SILENCE, clean_phoneme_counts, counts_to_timings
from talkie.voice.text import clauses_for_speech, prepare_for_tts

__all__ = ["EspeakOptions", "EspeakTTS"]

log = logging.getLogger(__name__)

_LIBRARY_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so")
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000  # without it, espeak calls exit() when its data is missing
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
RATE_MIN, RATE_MAX = 80, 450
PITCH_MIN, PITCH_MAX = 0, 100


class _EspeakEvent(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (API revision 12)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the message
        ("sample", ctypes.c_int),  # sample index from the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # union; for phoneme events a UTF-8 name, NUL-terminated
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


class _Collector:
    """Receives one message's audio and phoneme events from the synthesis callback."""

    def __init__(self) -> None:
        self.audio: list[bytes] = []
        self.samples = 0
        # (sample index, milliseconds, phoneme name) per phoneme event, in order.
        self.events: list[tuple[int, int, str]] = []


class _EspeakLibrary:
    """The process-wide espeak-ng library, initialised once. Use only while holding the lock."""

    def __init__(self) -> None:
        lib = None
        names = list(_LIBRARY_NAMES)
        found = ctypes.util.find_library("espeak-ng")
        if found:
            names.append(found)
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            raise MissingDependencyError(
                "the espeak-ng library (libespeak-ng.so.1) is not installed: "
                "run `apt-get install espeak-ng`"
            )
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if rate <= 0:
            raise EngineError(
                "espeak-ng could not start (its voice data is missing?): "
                "reinstall it with `apt-get install --reinstall espeak-ng-data`"
            )
        self.lib = lib
        self.sample_rate = int(rate)
        self.current: _Collector | None = None
        # Keep a reference: ctypes frees the trampoline when the Python object is collected.
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(
        self,
        wav: ctypes._Pointer[ctypes.c_short],
        count: int,
        events: ctypes._Pointer[_EspeakEvent],
    ) -> int:
        # Runs inside espeak_Synth on the calling thread. An exception here would be printed and
        # swallowed by ctypes, so keep it trivial.
        collector = self.current
        if collector is None:
            return 1  # abort: nobody is listening
        ev = events
        i = 0
        while ev[i].type != _EVENT_LIST_TERMINATED:
            if ev[i].type == _EVENT_PHONEME:
                name = ev[i].id.split(b"\0", 1)[0].decode("utf-8", "replace")
                collector.events.append((int(ev[i].sample), int(ev[i].audio_position), name))
            i += 1
        if wav and count > 0:
            collector.audio.append(ctypes.string_at(wav, count * 2))
            collector.samples += count
        return 0

    def set_voice(self, voice: str) -> bool:
        return bool(self.lib.espeak_SetVoiceByName(voice.encode("utf-8")) == _EE_OK)

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> _Collector:
        if not self.set_voice(voice):
            raise InvalidInputError(
                f"unknown espeak-ng voice {voice!r}: list voices with `espeak-ng --voices`"
            )
        # Parameters are set after the voice because selecting a voice resets them.
        self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        collector = _Collector()
        self.current = collector
        data = text.encode("utf-8")
        try:
            # ENDPAUSE keeps the clause's closing pause, so consecutive clips sound like speech.
            status = self.lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
            )
        finally:
            self.current = None
        if status != _EE_OK:
            raise EngineError(f"espeak-ng failed to synthesise (error {status}); try other text")
        return collector


_LIB_LOCK = threading.Lock()
_LIBRARY: _EspeakLibrary | None = None


def _library() -> _EspeakLibrary:
    """The initialised library; call with ``_LIB_LOCK`` held."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _EspeakLibrary()
        log.debug("espeak-ng initialised at %d Hz", _LIBRARY.sample_rate)
    return _LIBRARY


@dataclass(frozen=True)
class EspeakOptions:
    """espeak-ng settings: voice name (``en-us``, ``en-us+f3``, ``de``...), rate in words per
    minute (80..450) and base pitch (0..100, 50 is normal)."""

    voice: str = "en-us"
    rate: int = 175
    pitch: int = 50

    def __post_init__(self) -> None:
        if not self.voice or any(c.isspace() for c in self.voice):
            raise InvalidInputError(
                f"invalid espeak-ng voice {self.voice!r}: use a name like en-us or en-us+f3"
            )
        if not RATE_MIN <= self.rate <= RATE_MAX:
            raise InvalidInputError(
                f"espeak-ng rate {self.rate} is out of range: use {RATE_MIN}..{RATE_MAX} words/min"
            )
        if not PITCH_MIN <= self.pitch <= PITCH_MAX:
            raise InvalidInputError(
                f"espeak-ng pitch {self.pitch} is out of range: use {PITCH_MIN}..{PITCH_MAX}"
            )


def _events_to_timings(
    events: list[tuple[int, int, str]], total: int, sample_rate: int
) -> tuple[PhonemeTiming, ...]:
    """Phoneme start events -> timings that tile ``total`` samples.

    Each phoneme lasts until the next event; audio before the first event is silence. The
    event's sample index is used (exact); the millisecond position is the fallback if the sample
    index ever looks wrong (out of range or going backwards).
    """
    starts: list[tuple[int, str]] = []
    previous = 0
    for sample, millis, name in events:
        position = sample
        if not previous <= position <= total:
            position = int(round(millis * sample_rate / 1000))
        position = min(max(position, previous), total)
        starts.append((position, name))
        previous = position
    pairs: list[tuple[str, int]] = []
    if not starts or starts[0][0] > 0:
        pairs.append((SILENCE, starts[0][0] if starts else total))
    for i, (position, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        pairs.append((name, end - position))
    return counts_to_timings(clean_phoneme_counts(pairs), sample_rate, total)


class EspeakTTS:
    """Text-to-speech with espeak-ng; yields one ``SpeechClip`` per clause with exact timings.

    The library is loaded on construction so a missing install or an unknown voice fails early
    with a one-line error.
    """

    def __init__(self, *, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> None:
        self.options = EspeakOptions(voice=voice, rate=rate, pitch=pitch)
        with _LIB_LOCK:
            library = _library()
            if not library.set_voice(self.options.voice):
                raise InvalidInputError(
                    f"unknown espeak-ng voice {self.options.voice!r}: "
                    "list voices with `espeak-ng --voices`"
                )
            self.sample_rate: int = library.sample_rate
        self.name: str = f"espeak:{self.options.voice}"

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        """Speak ``text`` clause by clause. Raises ``InvalidInputError`` if there is nothing
        to say."""
        clauses = clauses_for_speech(text)
        return self._generate(clauses)

    def synthesize_clause(self, clause: str) -> SpeechClip:
        """Synthesise one clause as a single clip (no splitting)."""
        started = time.perf_counter()
        with _LIB_LOCK:
            library = _library()
            collected = library.synthesize(
                prepare_for_tts(clause), self.options.voice, self.options.rate, self.options.pitch
            )
            sample_rate = library.sample_rate
        pcm = np.frombuffer(b"".join(collected.audio), dtype="<i2")
        audio = (pcm.astype(np.float32) / 32768.0).clip(-1.0, 1.0)
        phonemes = _events_to_timings(collected.events, len(audio), sample_rate)
        elapsed = time.perf_counter() - started
        log.debug(
            "espeak clause: %d phonemes, %.2f s audio in %.1f ms",
            len(phonemes),
            len(audio) / sample_rate,
            elapsed * 1000,
        )
        return SpeechClip(audio=audio, sample_rate=sample_rate, phonemes=phonemes, text=clause)

    def _generate(self, clauses: list[str]) -> Iterator[SpeechClip]:
        for clause in clauses:
            yield self.synthesize_clause(clause)
