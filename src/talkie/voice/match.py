"""Voice matching: the designed voice that sounds most like a 5-30 s sample of someone.

This is matching, not cloning: the bundled voice is moved (pitch, intonation range, formants)
towards the sample's measured pitch and formants, then the speaker embedding of candidate voices
is compared with the sample's and the closest one is kept. The similarity is reported as it is:
a designed voice keeps joe's articulation, so it comes closer to the sample without becoming it.
Real cloning needs a cloning server (``talkie.voice.remote``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkie.errors import InvalidInputError
from talkie.voice.design import VoiceDesign
from talkie.voice.designed import base_pitch
from talkie.voice.phonemes import speech_bounds
from talkie.voice.piper_tts import PiperTTS
from talkie.voice.shift import ShiftSettings, formant_frequencies, median_f0, shift_voice
from talkie.voice.speaker import cosine, speaker_embedder

__all__ = ["MIN_SAMPLE_SECONDS", "MAX_SAMPLE_SECONDS", "MatchResult", "match_voice"]

log = logging.getLogger(__name__)

MIN_SAMPLE_SECONDS = 5.0
MAX_SAMPLE_SECONDS = 30.0
# A text with every English vowel and the common consonants, long enough for a stable embedding.
_PROBE = (
    "Good morning. I hope you slept well, because today we have a lot to do: the garden needs "
    "water, the old boat is waiting by the river, and three friends are coming for lunch."
)
_probe_cache: dict[str, tuple[np.ndarray, int]] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True)
class MatchResult:
    design: VoiceDesign
    similarity: float  # cosine similarity of the matched voice to the sample (speaker embedding)
    base_similarity: float  # the same for the plain bundled voice
    sample_pitch: float  # Hz, median
    sample_formants: tuple[float, ...]  # Hz, median F1..F3
    candidates: int  # voices tried

    def as_dict(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["design"] = self.design.as_dict()
        return out


def _probe(accent: str) -> tuple[np.ndarray, int]:
    """The bundled voice reading the probe text, once per process and accent."""
    with _probe_lock:
        if accent not in _probe_cache:
            tts = PiperTTS(dialect=accent, noise_scale=0.5, noise_w_scale=0.6)
            audio = np.concatenate([c.audio for c in tts.synthesize(_PROBE)])
            _probe_cache[accent] = (audio, tts.sample_rate)
        return _probe_cache[accent]


def _check_sample(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    seconds = len(x) / sample_rate if sample_rate > 0 else 0.0
    if not MIN_SAMPLE_SECONDS <= seconds <= MAX_SAMPLE_SECONDS + 0.5:
        raise InvalidInputError(
            f"a voice sample must be {MIN_SAMPLE_SECONDS:.0f} to {MAX_SAMPLE_SECONDS:.0f} s long "
            f"(this one is {seconds:.1f} s)"
        )
    bounds = speech_bounds(x, sample_rate)
    if bounds is None or bounds[1] - bounds[0] < 0.5 * MIN_SAMPLE_SECONDS:
        raise InvalidInputError("the voice sample has too little speech: record someone talking")
    return x


def match_voice(
    audio: np.ndarray,
    sample_rate: int,
    *,
    accent: str = "en-us",
    progress: Callable[[float], None] | None = None,
) -> MatchResult:
    """Search the design parameters for the voice closest to the sample (speaker embedding).

    Pitch and formants start at the sample's measured values (relative to the bundled voice),
    then a small coordinate search around them keeps whatever brings the embedding closer.
    ``progress`` is called with 0..1 as candidates are tried.
    """
    x = _check_sample(audio, sample_rate)
    embedder = speaker_embedder()
    target = embedder.embed(x, sample_rate)
    pitch = median_f0(x, sample_rate)
    if pitch <= 0:
        raise InvalidInputError("no voiced speech found in the sample: record someone talking")
    formants = formant_frequencies(x, sample_rate)
    probe, rate = _probe(accent)
    reference = base_pitch(PiperTTS(dialect=accent))
    probe_formants = formant_frequencies(probe, rate)
    ratio = float(np.mean(formants / np.maximum(probe_formants, 1.0))) if formants.all() else 1.0
    start = VoiceDesign(
        pitch=round(float(np.clip(pitch, 60.0, 350.0)), 1),
        formant=round(float(np.clip(ratio, 0.8, 1.35)), 3),
        accent=accent,
    )
    scores: dict[tuple[float, float, float], float] = {}

    def score(design: VoiceDesign) -> float:
        key = (round(design.pitch, 1), round(design.formant, 3), round(design.pitch_range, 2))
        if key not in scores:
            settings = ShiftSettings(
                pitch=design.pitch / reference,
                pitch_range=design.pitch_range,
                formant=design.formant,
            )
            voice = shift_voice(probe, rate, settings)
            scores[key] = cosine(embedder.embed(voice, rate), target)
            if progress is not None:
                progress(min(1.0, len(scores) / 16))
        return scores[key]

    base_similarity = cosine(embedder.embed(probe, rate), target)
    best, best_score = start, score(start)
    steps = (("formant", 0.06), ("pitch", 0.1), ("formant", 0.03), ("pitch_range", 0.25))
    for name, step in steps:
        for direction in (-1.0, 1.0):
            value = getattr(best, name) * (1.0 + direction * step)
            try:
                changes: dict[str, Any] = {name: round(value, 1 if name == "pitch" else 3)}
                candidate = dataclasses.replace(best, **changes)
            except InvalidInputError:
                continue  # out of the design's range
            s = score(candidate)
            if s > best_score:
                best, best_score = candidate, s
    if progress is not None:
        progress(1.0)
    log.info("voice match: %.3f (plain voice %.3f) after %d candidates", best_score,
             base_similarity, len(scores))  # fmt: skip
    return MatchResult(
        design=best,
        similarity=round(best_score, 4),
        base_similarity=round(base_similarity, 4),
        sample_pitch=round(pitch, 1),
        sample_formants=tuple(round(float(f), 1) for f in formants),
        candidates=len(scores),
    )
