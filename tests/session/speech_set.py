"""Conversations as real people have them, generated at test time (espeak-ng voices).

Used by the turn-taking tests and by ``bench/conversation.py``. Each ``Question`` is one thing a
user wants answered, said in one, two or three breaths, with pauses of 0.4-1.2 s between them:
a preamble and then the question ("I was reading about the Moon yesterday. ... How far away is
it?"), a clause left hanging ("So the thing is, ... how do you listen to me?"), two questions
that make one ("Mars is the red planet, right? ... Which planet is it from the Sun?"). The
questions are about what the sample character (Nova) knows, so "answered" can be checked.

``build_track`` places utterances on one 16 kHz microphone track (with optional white noise at a
given SNR) and returns the exact time span of every spoken part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from talkie.voice import EspeakTTS

RATE = 16_000
VOICES = (
    ("en-us+m3", 165), ("en-gb-x-rp+f2", 160), ("en-us+f4", 155), ("en-gb-scotland+m2", 170),
    ("en-us+m7", 150), ("en-029+m4", 175), ("en-us+f2", 165), ("en-gb-x-gbclan+m1", 160),
)  # fmt: skip


@dataclass(frozen=True)
class Question:
    parts: tuple[str, ...]
    pauses: tuple[float, ...]  # silence between consecutive parts (seconds)
    answer_words: tuple[str, ...] = ()  # an answer from Nova's knowledge has one of these

    @property
    def text(self) -> str:
        return " ".join(self.parts)


# Nova's knowledge covers these; ``answer_words`` are what a right answer mentions.
MULTI_PART: tuple[Question, ...] = (
    Question(("I was reading about the Moon yesterday.", "How far away is it from the Earth?"),
             (0.8,), ("kilometres",)),
    Question(("So I have a question about Mars.", "How long does a day last there?"),
             (0.6,), ("hours",)),
    Question(("My friend told me about the space station.",
              "How often does it go around the Earth?"), (1.0,), ("ninety", "minutes")),
    Question(("Okay, so,", "what is Talkie exactly?"), (0.5,), ("photo", "open")),
    Question(("I want to make my own character.", "Can I use any photo of a face?"),
             (0.9,), ("photo",)),
    Question(("Um, the Sun,", "how far away is it from the Earth?"), (0.7,), ("million",)),
    Question(("I have always wanted to be an astronaut.", "How do astronauts train?"),
             (1.1,), ("years",)),
    Question(("You know what,", "I never understood how your face moves.", "Can you explain it?"),
             (0.6, 0.9), ("photo", "mouth")),
    Question(("My computer is pretty old.", "It has only two cores.", "Can it run Talkie?"),
             (0.8, 0.7), ("two",)),
    Question(("Quick question.", "Is Talkie open source?"), (0.9,), ("open",)),
    Question(("I was wondering", "how high the space station flies."), (0.6,), ("kilometres",)),
    Question(("Mars is the red planet, right?", "Which planet is it from the Sun?"),
             (0.7,), ("fourth",)),
    Question(("Let me think.", "What do astronauts learn?"), (1.2,), ("fly", "repair")),
    Question(("So the thing is,", "how do you listen to me?"), (0.5,), ("speech", "recognizer")),
    Question(("Tell me about the Moon,", "how far away is it?"), (0.6,), ("kilometres",)),
    Question(("I have two questions.", "How far is the Sun?", "And how far is the Moon?"),
             (0.8, 0.6), ("kilometres",)),
    Question(("My name is Daniel.", "What is your name?"), (0.7,), ("nova",)),
    Question(("I am curious about space.", "How long is a day on Mars?"), (1.0,), ("hours",)),
    Question(("Because I am building a kiosk,", "I need to know,",
              "does Talkie need a graphics card?"), (0.6, 0.5), ("graphics", "card")),
    Question(("And another thing,", "what can you do?"), (0.4,), ()),
    Question(("I heard that you were made from a photo.", "Is that true?"), (0.9,), ("photo",)),
    Question(("The space station,", "how many kilometres up is it?"), (0.8,), ("hundred",)),
)  # fmt: skip

ONE_BREATH: tuple[Question, ...] = (
    Question(("How far away is the Moon?",), (), ("kilometres",)),
    Question(("What's your name?",), (), ("nova",)),
    Question(("How long is a day on Mars?",), (), ("hours",)),
    Question(("Is Talkie open source?",), (), ("open",)),
    Question(("How do astronauts train?",), (), ("years",)),
    Question(("Do you need a graphics card?",), (), ("graphics",)),
)

BACKCHANNELS = ("Mm-hmm.", "Yeah.", "Okay.", "Right.", "Uh-huh.")


@functools.lru_cache(maxsize=16)
def _voice(voice: str, rate: int) -> EspeakTTS:
    return EspeakTTS(voice=voice, rate=rate)


@functools.lru_cache(maxsize=512)
def speech(text: str, voice: str = "en-us+m3", rate: int = 165) -> np.ndarray:
    """``text`` spoken by espeak-ng at 16 kHz, trimmed to the voice (no leading/trailing pad)."""
    tts = _voice(voice, rate)
    clips = list(tts.synthesize(text))
    audio = np.concatenate([c.audio for c in clips]).astype(np.float32)
    audio = resample_poly(audio, RATE, clips[0].sample_rate).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    audio = audio[loud[0] : loud[-1] + 1] if len(loud) else audio
    return audio / max(1e-6, float(np.abs(audio).max())) * 0.5


@dataclass(frozen=True)
class Spoken:
    """One utterance on the track: its words and where they are (seconds)."""

    text: str
    start: float
    end: float
    question: int = -1  # index of the question it belongs to (-1: not a question)
    part: int = 0


class Track:
    """A microphone track being composed (16 kHz mono)."""

    def __init__(self, seconds: float) -> None:
        self.audio = np.zeros(round(seconds * RATE), np.float32)
        self.spoken: list[Spoken] = []

    def say(
        self,
        text: str,
        at: float,
        *,
        voice: tuple[str, int] = VOICES[0],
        question: int = -1,
        part: int = 0,
    ) -> float:
        """Place ``text`` starting at ``at``; returns where it ends."""
        clip = speech(text, *voice)
        first = round(at * RATE)
        needed = first + len(clip)
        if needed > len(self.audio):
            self.audio = np.concatenate(
                [self.audio, np.zeros(needed - len(self.audio), np.float32)]
            )
        self.audio[first:needed] += clip
        end = at + len(clip) / RATE
        self.spoken.append(Spoken(text, at, end, question, part))
        return end

    def ask(self, index: int, q: Question, at: float, voice: tuple[str, int]) -> float:
        """Say every part of ``q`` with its pauses from ``at``; returns where it ends."""
        t = at
        for k, part in enumerate(q.parts):
            t = self.say(part, t, voice=voice, question=index, part=k)
            if k < len(q.pauses):
                t += q.pauses[k]
        return t

    def with_noise(self, snr_db: float, seed: int = 0) -> np.ndarray:
        """The track with white noise ``snr_db`` below the speech's active level."""
        active = self.audio[np.abs(self.audio) > 0.01]
        level = float(np.sqrt(np.mean(active**2))) if len(active) else 0.1
        noise = np.random.default_rng(seed).standard_normal(len(self.audio)).astype(np.float32)
        return (self.audio + noise * level / 10 ** (snr_db / 20)).astype(np.float32)
