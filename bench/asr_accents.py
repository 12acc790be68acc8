"""Word errors of the recogniser on accents and voices unlike the test sets', per beam size.

Run from the repository root::

    .venv/bin/python bench/asr_accents.py [--beams 1,3,5] [--snr 20] \
        [--out bench/results/asr_accents.json]

Eighteen everyday questions (not the character's test questions only) are said by seven espeak-ng
accents (Scottish, Caribbean, West Midlands, New York, RP, Lancaster, a low US voice) and by
the shipped Piper voice, with white noise at ``--snr`` dB, and transcribed by ``WhisperAsr`` with
the prompt a session of the astronaut character gives it (its hotwords). Reported per beam size:
WER over all words and per voice, and the CPU time per utterance (median, p95; one thread, as
in a session). Definitions: bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "session"))

QUESTIONS = (
    "How does your face move?", "How far away is the Moon?", "How long is a day on Mars?",
    "Can I use any photo of a face?", "Is Talkie open source?", "How do astronauts train?",
    "What is the weather like on Venus?", "Could you tell me a joke about planets?",
    "My computer is pretty old, can it run Talkie?", "Why is the sky blue during the day?",
    "What should I pack for a trip to the mountains?", "Which planet has the most moons?",
    "How often does the space station go around the Earth?", "Do you need a graphics card?",
    "I never understood how your face moves, can you explain it?",
    "What time does the museum open tomorrow?",
    "Can you recommend a good book about black holes?",
    "How much water does an astronaut drink each day?",
)  # fmt: skip
ACCENTS = (
    ("en-gb-scotland+m4", 165), ("en-029+m4", 175), ("en-gb-x-gbcwmd+m2", 165),
    ("en-us-nyc+f3", 170), ("en-gb-x-rp+f2", 160), ("en-us+m7", 150), ("en-gb-x-gbclan+f4", 170),
)  # fmt: skip


def utterances(snr_db: float) -> list[tuple[str, str, np.ndarray]]:
    """(voice, text, 16 kHz audio with noise) for every voice and question."""
    from scipy.signal import resample_poly
    from speech_set import speech

    from talkie.voice import PiperTTS

    rng = np.random.default_rng(0)

    def noisy(audio: np.ndarray) -> np.ndarray:
        power = float(np.mean(audio**2))
        noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
        return (audio + noise).astype(np.float32)

    out = [(v, q, noisy(speech(q, v, rate))) for v, rate in ACCENTS for q in QUESTIONS]
    piper = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    piper.load()
    for q in QUESTIONS:
        clips = list(piper.synthesize(q))
        audio = np.concatenate([c.audio for c in clips]).astype(np.float64)
        rate = clips[0].sample_rate
        out.append(("piper (shipped voice)", q, noisy(resample_poly(audio, 16_000, rate))))
    return out


def character_prompt() -> str:
    """The recogniser's prompt in a session of the astronaut (as ``Conversation`` builds it)."""
    from talkie.session import CharacterLibrary
    from talkie.session.conversation import character_hotwords

    return character_hotwords(CharacterLibrary().get("astronaut")).prompt()


def measure(beam: int, clips: list[tuple[str, str, np.ndarray]], prompt: str) -> dict[str, object]:
    from talkie.hearing.asr import WhisperAsr, WhisperOptions, normalize_words, word_errors

    asr = WhisperAsr(options=WhisperOptions(beam_size=beam))
    asr.load()
    asr.transcribe(clips[0][2], prompt=prompt)  # warm-up
    errors: dict[str, int] = {}
    words: dict[str, int] = {}
    cpu_ms: list[float] = []
    heard: list[dict[str, str]] = []
    for voice, text, audio in clips:
        started = time.process_time()
        result = asr.transcribe(audio, prompt=prompt)
        cpu_ms.append((time.process_time() - started) * 1000)
        errors[voice] = errors.get(voice, 0) + word_errors(text, result.text)
        words[voice] = words.get(voice, 0) + len(normalize_words(text))
        heard.append({"voice": voice, "said": text, "heard": result.text})
    return {
        "beam_size": beam,
        "wer": round(sum(errors.values()) / sum(words.values()), 4),
        "wer_by_voice": {v: round(errors[v] / words[v], 4) for v in errors},
        "cpu_ms_median": round(statistics.median(cpu_ms), 1),
        "cpu_ms_p95": round(float(np.percentile(cpu_ms, 95)), 1),
        "audio_s_median": round(statistics.median(len(c[2]) / 16_000 for c in clips), 2),
        "heard": heard,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beams", default="1,3,5", help="beam sizes to compare, comma-separated")
    ap.add_argument("--snr", type=float, default=20.0, help="white noise, dB below the speech")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "asr_accents.json")
    args = ap.parse_args()
    beams = [int(b) for b in args.beams.split(",")]
    clips = utterances(args.snr)
    prompt = character_prompt()
    print(f"{len(clips)} utterances, {args.snr:g} dB SNR; prompt: {prompt!r}")
    results = []
    for beam in beams:
        r = measure(beam, clips, prompt)
        results.append(r)
        print(f"beam {beam}: WER {r['wer']:.3f}, CPU per utterance median {r['cpu_ms_median']} ms, "
              f"p95 {r['cpu_ms_p95']} ms")  # fmt: skip
        for voice, wer in r["wer_by_voice"].items():  # type: ignore[attr-defined]
            print(f"    {voice:24s} {wer:.3f}")
    out = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "snr_db": args.snr, "prompt": prompt, "questions": len(QUESTIONS),
        "voices": [v for v, _ in ACCENTS] + ["piper (shipped voice)"], "results": results,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
