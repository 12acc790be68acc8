"""Voice design: a few numbers that turn the bundled voice into another one, and a sentence that
sets them ("a warm older woman, slow and calm").

The numbers are what the engine can really change: pace (the model's length scale), liveliness (its
noise scales: variation of the voice and of the rhythm), the median pitch and how far intonation
swings around it, the formants (vocal-tract length) and the accent (espeak-ng's dialect that writes
the phonemes). ``design_from_prompt`` reads a description with fixed word rules, so the same prompt
always gives the same voice, and says which words it understood.

A design is written as a voice spec, ``design:pitch=205,range=1.1,formant=1.17,...``, so a worker
process can rebuild the engine from the string alone.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

from talkie.errors import InvalidInputError
from talkie.voice.phonemizer import dialect_is_valid

__all__ = ["ACCENTS", "VoiceDesign", "design_from_prompt"]

# Accents the bundled (American English) voice can take through espeak-ng's dialects.
ACCENTS = {
    "american": "en-us",
    "british": "en-gb",
    "received pronunciation": "en-gb-x-rp",
    "scottish": "en-gb-scotland",
    "northern english": "en-gb-x-gbclan",
    "west midlands": "en-gb-x-gbcwmd",
    "caribbean": "en-029",
}
_LIMITS = {
    "pitch": (0.0, 400.0),
    "pitch_range": (0.3, 2.0),
    "formant": (0.75, 1.4),
    "length_scale": (0.5, 2.0),
    "noise_scale": (0.0, 1.5),
    "noise_w": (0.0, 1.5),
}
_SPEC_KEYS = {
    "pitch": "pitch",
    "range": "pitch_range",
    "formant": "formant",
    "length": "length_scale",
    "noise": "noise_scale",
    "noise_w": "noise_w",
    "accent": "accent",
}


@dataclass(frozen=True)
class VoiceDesign:
    """The parameters of a designed voice.

    - ``pitch``: target median pitch in Hz (0: the base voice's own, ~88 Hz for joe);
    - ``pitch_range``: intonation swing (1 as the base voice, <1 flatter, >1 livelier);
    - ``formant``: formant ratio (1 as the base voice; ~1.17 sounds like a woman's vocal tract);
    - ``length_scale``: slowness (1 normal, 1.2 slower, 0.85 faster);
    - ``noise_scale``/``noise_w``: variation of the voice and of the rhythm (0.667/0.8 default);
    - ``accent``: the espeak-ng dialect that phonemizes the text (``en-us``, ``en-gb``...).
    """

    pitch: float = 0.0
    pitch_range: float = 1.0
    formant: float = 1.0
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    accent: str = "en-us"

    def __post_init__(self) -> None:
        for name, (lo, hi) in _LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or not lo <= float(value) <= hi:
                raise InvalidInputError(f"voice {name} {value!r} is out of range: use {lo}..{hi}")
        if self.pitch and self.pitch < 50:
            raise InvalidInputError("voice pitch must be 0 (the voice's own) or 50..400 Hz")
        if not dialect_is_valid(self.accent):
            raise InvalidInputError(
                f"unknown accent {self.accent!r}: use an espeak-ng dialect such as en-us or en-gb"
            )

    def to_spec(self) -> str:
        """``design:...`` with only the values that differ from the defaults, in a fixed order."""
        default = VoiceDesign()
        parts = []
        for key, name in _SPEC_KEYS.items():
            value = getattr(self, name)
            if value != getattr(default, name):
                parts.append(f"{key}={_number(value) if name != 'accent' else value}")
        return "design:" + ",".join(parts)

    @classmethod
    def from_spec(cls, spec: str) -> VoiceDesign:
        """Parse ``design:key=value,...`` (the form ``to_spec`` writes)."""
        engine, _, body = spec.partition(":")
        if engine.strip().lower() != "design":
            raise InvalidInputError(f"not a designed voice spec: {spec!r}")
        values: dict[str, object] = {}
        for item in filter(None, (p.strip() for p in body.split(","))):
            key, sep, raw = item.partition("=")
            name = _SPEC_KEYS.get(key.strip())
            if not sep or name is None:
                raise InvalidInputError(
                    f"bad voice design item {item!r}: use {', '.join(_SPEC_KEYS)} as key=value"
                )
            if name == "accent":
                values[name] = raw.strip()
            else:
                try:
                    values[name] = float(raw)
                except ValueError as exc:
                    raise InvalidInputError(f"voice {key} must be a number, not {raw!r}") from exc
        return cls(**values)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, object]) -> VoiceDesign:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(f"unknown voice parameters: {', '.join(sorted(unknown))}")
        return cls(**data)  # type: ignore[arg-type]


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Rule:
    words: tuple[str, ...]
    changes: dict[str, float]
    note: str


# Who is speaking: a target pitch (Hz) and formant ratio. Typical adult speaking pitch is
# ~115 Hz for men and ~205 Hz for women; children ~250 Hz. Formant ratios from the usual
# vocal-tract length differences (women ~17 % shorter than men, children ~30 %).
_PERSONS: tuple[tuple[tuple[str, ...], float, float, str], ...] = (
    (("girl",), 235.0, 1.22, "a girl: pitch 235 Hz, formants x1.22"),
    (("boy", "child", "kid"), 250.0, 1.28, "a child: pitch 250 Hz, formants x1.28"),
    (("woman", "female", "lady", "women", "grandmother", "she"), 205.0, 1.17,
     "a woman: pitch 205 Hz, formants x1.17"),
    (("man", "male", "gentleman", "guy", "men", "grandfather", "he"), 115.0, 1.0,
     "a man: pitch 115 Hz"),
)  # fmt: skip
_RULES: tuple[_Rule, ...] = (
    _Rule(("slow", "slowly", "unhurried", "measured"), {"length_scale": 1.2}, "slow: pace x0.83"),
    _Rule(("calm", "relaxed", "gentle", "soothing", "soft", "quiet"),
          {"noise_scale": 0.5, "noise_w": 0.6, "pitch_range": 0.8},
          "calm: less variation, flatter intonation"),
    _Rule(("fast", "quick", "quickly", "rapid", "brisk", "hurried"), {"length_scale": 0.85},
          "fast: pace x1.18"),
    _Rule(("energetic", "lively", "excited", "enthusiastic", "cheerful", "bubbly", "expressive",
           "animated"),
          {"noise_scale": 0.8, "noise_w": 1.0, "pitch_range": 1.3, "length_scale": 0.92},
          "energetic: more variation, livelier intonation"),
    _Rule(("monotone", "flat", "robotic", "serious", "stern"),
          {"noise_scale": 0.45, "noise_w": 0.5, "pitch_range": 0.6}, "flat: little intonation"),
    _Rule(("deep", "low", "low-pitched", "bass", "husky"), {"pitch_factor": 0.85,
          "formant_factor": 0.95}, "deep: pitch x0.85, formants x0.95"),
    _Rule(("high", "high-pitched", "squeaky", "light"), {"pitch_factor": 1.15},
          "high: pitch x1.15"),
    _Rule(("warm", "rich", "mellow"), {"formant_factor": 0.97}, "warm: formants x0.97"),
    _Rule(("bright", "crisp", "clear", "sharp"), {"formant_factor": 1.03},
          "bright: formants x1.03"),
)  # fmt: skip
_AGES = (
    (("young", "younger", "youthful", "teen", "teenage", "teenager"),
     {"pitch_factor": 1.06, "formant_factor": 1.02, "length_scale": 0.95}, "young: pitch x1.06"),
    (("old", "older", "elderly", "aged", "senior", "grandmother", "grandfather"),
     {"pitch_factor": 0.9, "formant_factor": 0.97, "length_scale": 1.05, "pitch_range": 0.85},
     "older: pitch x0.9, slower"),
)  # fmt: skip


def design_from_prompt(prompt: str) -> tuple[VoiceDesign, list[str]]:
    """The voice a description asks for, and what was understood (one note per rule used).

    Deterministic: fixed word rules, no randomness. Unknown words are ignored; an empty or
    unrecognised prompt gives the base voice.
    """
    text = prompt.lower()
    words = set(re.findall(r"[a-z]+", text)) | set(re.findall(r"[a-z]+-[a-z]+", text))
    if len(prompt) > 500:
        raise InvalidInputError("a voice prompt must be at most 500 characters")
    notes: list[str] = []
    design = VoiceDesign()
    pitch_factor = formant_factor = 1.0
    for person_words, pitch, formant, note in _PERSONS:
        if words & set(person_words):
            design = replace(design, pitch=pitch, formant=formant)
            notes.append(note)
            break
    scale = {"length_scale": 1.0, "pitch_range": 1.0}
    for rule_words, changes, note in _AGES:
        if words & set(rule_words):
            pitch_factor *= changes.get("pitch_factor", 1.0)
            formant_factor *= changes.get("formant_factor", 1.0)
            for key in scale:
                scale[key] *= changes.get(key, 1.0)
            notes.append(note)
    for rule in _RULES:
        if words & set(rule.words):
            pitch_factor *= rule.changes.get("pitch_factor", 1.0)
            formant_factor *= rule.changes.get("formant_factor", 1.0)
            for key in scale:
                scale[key] *= rule.changes.get(key, 1.0)
            design = replace(
                design,
                noise_scale=rule.changes.get("noise_scale", design.noise_scale),
                noise_w=rule.changes.get("noise_w", design.noise_w),
            )
            notes.append(rule.note)
    for name, dialect in sorted(ACCENTS.items(), key=lambda item: -len(item[0])):
        if name in text or (name == "british" and words & {"english", "uk", "london", "posh"}):
            design = replace(design, accent=dialect)
            notes.append(f"{name} accent: phonemes from espeak-ng's {dialect}")
            break
    if pitch_factor != 1.0 and not design.pitch:
        design = replace(design, pitch=115.0)  # "a deep voice": relative to a man's pitch
    return (
        replace(
            design,
            pitch=round(design.pitch * pitch_factor, 1),
            formant=round(min(max(design.formant * formant_factor, 0.75), 1.4), 3),
            length_scale=round(min(max(scale["length_scale"], 0.5), 2.0), 3),
            pitch_range=round(min(max(scale["pitch_range"], 0.3), 2.0), 3),
        ),
        notes,
    )
