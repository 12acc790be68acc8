"""Normalising engine phoneme tokens into clean, tiling timelines."""

from __future__ import annotations

import numpy as np

from talkie.messages import PhonemeTiming
from talkie.voice.phonemes import (
    clean_phoneme_counts,
    counts_to_timings,
    distribute_phonemes,
    fill_silences,
    spread_phonemes,
    typical_duration,
)


def test_clean_counts_merges_stress_length_and_pauses() -> None:
    # Piper's tokens for "hello, dark" (abridged): BOS, stress marks, length mark, comma+space, EOS
    pairs = [
        ("^", 512), ("h", 100), ("ə", 200), ("l", 300), ("ˈ", 50), ("o", 400), ("ʊ", 80),
        (",", 600), (" ", 700), ("d", 90), ("ˈ", 60), ("ɑ", 120), ("ː", 30), ("k", 70),
        (".", 500), ("$", 200),
    ]  # fmt: skip
    cleaned = clean_phoneme_counts(pairs)
    assert cleaned == [
        ("", 512), ("h", 100), ("ə", 200), ("l", 300), ("o", 450), ("ʊ", 80), ("", 1300),
        ("d", 90), ("ɑː", 210), ("k", 70), ("", 700),
    ]  # fmt: skip
    assert sum(n for _, n in cleaned) == sum(n for _, n in pairs)


def test_clean_counts_edge_cases() -> None:
    assert clean_phoneme_counts([]) == []
    # a stress mark before a pause stays pause time; a trailing one joins the last phoneme
    assert clean_phoneme_counts([("a", 5), ("ˈ", 3), (" ", 2), ("b", 4), ("ˌ", 1)]) == [
        ("a", 5),
        ("", 5),
        ("b", 5),
    ]
    # a modifier after a silence cannot attach backwards: it stands alone
    assert clean_phoneme_counts([(" ", 2), ("ː", 3)]) == [("", 2), ("ː", 3)]
    # tie bars join the next symbol (t͡ʃ); zero-length tokens disappear
    assert clean_phoneme_counts([("t", 2), ("\u0361", 0), ("ʃ", 3), ("x", 0)]) == [("t͡ʃ", 5)]


def test_counts_to_timings_tiles_exactly() -> None:
    timings = counts_to_timings([("", 3), ("a", 7), ("b", 5)], 10, 15)
    assert [t.phoneme for t in timings] == ["", "a", "b"]
    assert timings[0].start == 0.0 and timings[-1].end == 1.5
    assert all(a.end == b.start for a, b in zip(timings, timings[1:], strict=False))
    # counts longer than the audio are cut; shorter ones padded with silence
    assert counts_to_timings([("a", 20)], 10, 15)[-1] == PhonemeTiming("a", 0.0, 1.5)
    assert counts_to_timings([("a", 5)], 10, 15)[-1] == PhonemeTiming("", 0.5, 1.5)


def test_fill_silences_resolves_gaps_and_overlaps() -> None:
    timings = fill_silences(
        [PhonemeTiming("b", 0.5, 0.8), PhonemeTiming("a", 0.2, 0.6), PhonemeTiming("c", 0.9, 2.0)],
        1.2,
    )
    assert [(t.phoneme, t.start, t.end) for t in timings] == [
        ("", 0.0, 0.2), ("a", 0.2, 0.6), ("b", 0.6, 0.8), ("", 0.8, 0.9), ("c", 0.9, 1.2),
    ]  # fmt: skip


def test_typical_durations_rank_vowels_over_stops() -> None:
    assert typical_duration("ɑː") > typical_duration("æ") > typical_duration("t")
    assert typical_duration("aɪ") > typical_duration("ɪ")
    assert typical_duration("s") > typical_duration("p") > typical_duration("ɾ")


def test_spread_phonemes_covers_the_span() -> None:
    timings = spread_phonemes(["k", "æ", "t"], 1.0, 1.4)
    assert timings[0].start == 1.0 and timings[-1].end == 1.4
    assert timings[1].duration > timings[0].duration
    assert spread_phonemes([], 0.0, 1.0) == []


def test_distribute_phonemes_places_speech_inside_audible_part() -> None:
    sr = 16000
    audio = np.zeros(sr, dtype=np.float32)
    rng = np.random.default_rng(1)
    audio[4000:12000] = 0.3 * rng.standard_normal(8000).astype(np.float32)
    timings = distribute_phonemes(
        ["^", "h", "ˈ", "a", "ɪ", " ", "j", "u", "ː", ".", "$"], audio, sr
    )
    spoken = [t for t in timings if t.phoneme]
    assert [t.phoneme for t in spoken] == ["h", "a", "ɪ", "j", "uː"]
    assert abs(spoken[0].start - 0.25) < 0.02 and abs(spoken[-1].end - 0.75) < 0.02
    assert timings[0].start == 0.0 and timings[-1].end == 1.0
