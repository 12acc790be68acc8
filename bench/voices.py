"""Voice benchmark: first audio per clause, the cost of pitch/formant shifting, how close designed
voices come to their targets (Praat), the speaker embedding's gender reading, and voice matching.

Run from the repository root::

    .venv/bin/python bench/voices.py [--out bench/results/voices.json] [--quick]

- first audio per clause: wall time from asking the engine for a clause to having its audio and
  phoneme timings (phonemizer + model + shifting), in the process that synthesises, warm;
- shift cost: ms of CPU per second of speech for the PSOLA pitch/formant shift alone;
- design targets: median F0 and the F1-F3 ratio to the unshifted voice, by Praat (praat-parselmouth,
  a test/bench-only tool), against each prompt's design;
- gender reading: is the speaker embedding closer to espeak-ng's female or male voices;
- match: cosine similarity of held-out speech of another voice to plain joe and to the voice
  matched on a different recording of it (espeak-ng voices; the LibriVox reader of Debian's
  pocketsphinx-testdata if installed, a real human).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from talkie.voice import PiperTTS, design_from_prompt
from talkie.voice.designed import DesignedTTS
from talkie.voice.espeak_tts import EspeakTTS
from talkie.voice.match import match_voice
from talkie.voice.shift import ShiftSettings, shift_voice
from talkie.voice.speaker import cosine, speaker_embedder

CLAUSES = [
    "Sure, I can help with that.",
    "The museum opens at nine in the morning.",
    "Hello there!",
    "Would you like to hear more about the old harbour?",
    "That is a really good question,",
    "and the answer depends on the season.",
]
PROMPTS = {
    "a warm older woman, slow and calm": "female",
    "an energetic young man with a British accent": "male",
    "a cheerful young woman who speaks fast": "female",
    "a deep-voiced old man": "male",
    "a calm female narrator": "female",
    "a serious man with a Scottish accent": "male",
}
TEXT = (
    "The museum opens at nine in the morning. Visitors can see paintings, old maps and a small "
    "garden behind the main hall."
)
SAMPLE = (
    "The weather has been strange this week. On Monday it rained all day, and on Tuesday the sun "
    "came out for an hour before the wind returned. I walked to the station twice."
)
HELD_OUT = (
    "My sister works at the library near the harbour. She likes quiet mornings, strong coffee "
    "and long books about ships."
)
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def speak(tts: Any, text: str) -> tuple[np.ndarray, int]:
    clips = list(tts.synthesize(text))
    return np.concatenate([c.audio for c in clips]), clips[0].sample_rate


def first_audio(tts: Any, rounds: int) -> dict[str, float]:
    tts.load()
    tts.synthesize_clause("Warming up.")
    times = []
    for _ in range(rounds):
        for clause in CLAUSES:
            started = time.perf_counter()
            tts.synthesize_clause(clause)
            times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(float(np.median(times)), 1),
            "p95_ms": round(float(np.percentile(times, 95)), 1),
            "max_ms": round(float(np.max(times)), 1), "clauses": len(times)}  # fmt: skip


def shift_cost(rounds: int) -> dict[str, float]:
    audio, rate = speak(PiperTTS(), TEXT)
    settings = ShiftSettings(pitch=2.2, pitch_range=1.0, formant=1.17)
    started = time.process_time()
    for _ in range(rounds):
        shift_voice(audio, rate, settings)
    cpu = (time.process_time() - started) / rounds
    seconds = len(audio) / rate
    return {"cpu_ms_per_speech_second": round(cpu * 1000 / seconds, 1),
            "speech_seconds": round(seconds, 2)}  # fmt: skip


def praat(audio: np.ndarray, rate: int, ceiling: float) -> tuple[float, np.ndarray]:
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), rate)
    pitch = sound.to_pitch(pitch_floor=60, pitch_ceiling=500)
    f0 = pitch.selected_array["frequency"]
    times = pitch.xs()[f0 > 0]
    formant = sound.to_formant_burg(max_number_of_formants=5, maximum_formant=ceiling)
    values = np.array([[formant.get_value_at_time(i, t) for t in times] for i in (1, 2, 3)])
    return float(np.median(f0[f0 > 0])), np.nanmedian(values, axis=1)


def designs() -> dict[str, Any]:
    embed = speaker_embedder().embed
    anchors = {
        gender: [embed(*speak(EspeakTTS(voice=v), TEXT)) for v in voices]
        for gender, voices in (
            ("female", ("en-us+f2", "en-us+f3", "en-us+f4", "en+f1")),
            ("male", ("en-us", "en-us+m3", "en+m1", "en-gb-x-rp")),
        )
    }
    out: dict[str, Any] = {}
    for prompt, gender in PROMPTS.items():
        design, _ = design_from_prompt(prompt)
        audio, rate = speak(DesignedTTS(design), TEXT)
        base, _ = speak(DesignedTTS(replace(design, pitch=0.0, formant=1.0, pitch_range=1.0)), TEXT)
        pitch, formants = praat(audio, rate, 5000 * design.formant)
        _, base_formants = praat(base, rate, 5000)
        vector = embed(audio, rate)
        f = float(np.mean([cosine(vector, a) for a in anchors["female"]]))
        m = float(np.mean([cosine(vector, a) for a in anchors["male"]]))
        ratio = float(np.mean(formants / base_formants))
        out[prompt] = {
            "spec": design.to_spec(),
            "pitch_hz": round(pitch, 1), "pitch_target_hz": design.pitch,
            "pitch_error": round(pitch / design.pitch - 1, 3),
            "formant_ratio": round(ratio, 3), "formant_target": design.formant,
            "formant_error": round(ratio / design.formant - 1, 3),
            "gender_asked": gender, "gender_read": "female" if f > m else "male",
            "female_minus_male_similarity": round(f - m, 3),
        }  # fmt: skip
    return out


def matches() -> dict[str, Any]:
    embed = speaker_embedder().embed
    targets: dict[str, tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]] = {}
    for voice in ("en-us+f2", "en-gb-x-rp"):
        tts = EspeakTTS(voice=voice)
        targets[f"espeak-ng {voice}"] = (speak(tts, SAMPLE), speak(tts, HELD_OUT))
    if LIBRIVOX.is_dir():
        from talkie.media.audio import load_audio

        def load(names: tuple[str, ...]) -> tuple[np.ndarray, int]:
            chunks = [load_audio(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-0{n}.wav")
                      for n in names]  # fmt: skip
            return np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate

        targets["LibriVox reader (human)"] = (load(("870", "890")), load(("920", "930", "880")))
    out: dict[str, Any] = {}
    for name, ((sample, rate), (held, held_rate)) in targets.items():
        started = time.perf_counter()
        result = match_voice(sample, rate)
        seconds = time.perf_counter() - started
        held_vector = embed(held, held_rate)
        joe = cosine(embed(*speak(PiperTTS(), HELD_OUT)), held_vector)
        matched = cosine(embed(*speak(DesignedTTS(result.design), HELD_OUT)), held_vector)
        out[name] = {
            "matched_spec": result.design.to_spec(),
            "sample_similarity_joe": result.base_similarity,
            "sample_similarity_matched": result.similarity,
            "held_out_similarity_joe": round(joe, 3),
            "held_out_similarity_matched": round(matched, 3),
            "match_seconds": round(seconds, 1), "candidates": result.candidates,
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/voices.json"))
    parser.add_argument("--quick", action="store_true", help="latency only")
    args = parser.parse_args()
    results: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    woman, _ = design_from_prompt("a warm older woman, slow and calm")
    results["first_audio_per_clause"] = {
        "joe (piper)": first_audio(PiperTTS(), 3),
        "designed: a warm older woman": first_audio(DesignedTTS(woman), 3),
    }
    results["shift_cost"] = shift_cost(5)
    print("first audio per clause (warm):")
    for name, r in results["first_audio_per_clause"].items():
        print(f"  {name:32s} median {r['median_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms")
    print(f"pitch/formant shift: {results['shift_cost']['cpu_ms_per_speech_second']} ms CPU per "
          "second of speech")  # fmt: skip
    if not args.quick:
        results["designs"] = designs()
        print(f"{'prompt':46s} {'pitch':>12s} {'formants':>14s} {'gender':>15s}")
        for prompt, r in results["designs"].items():
            print(f"{prompt:46s} {r['pitch_hz']:5.0f}/{r['pitch_target_hz']:<5.0f} "
                  f"{r['formant_ratio']:6.3f}/{r['formant_target']:<6.3f} "
                  f"{r['gender_asked']:>6s}->{r['gender_read']}")  # fmt: skip
        results["matches"] = matches()
        for name, r in results["matches"].items():
            print(f"match {name:28s} held-out similarity joe {r['held_out_similarity_joe']:.3f} "
                  f"-> matched {r['held_out_similarity_matched']:.3f} "
                  f"({r['match_seconds']} s, {r['candidates']} candidates)")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
