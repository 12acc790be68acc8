"""Phoneme -> viseme -> mouth shape tables and the reference openness track."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import PhonemeTiming
from talkie.motion.visemes import (
    MOUTH_PARAMS,
    OPENNESS,
    VISEME_SHAPES,
    VISEMES,
    phoneme_openness_track,
    viseme_for,
    viseme_timeline,
)

EXPECTED = {
    "PP": "p b m",
    "FF": "f v",
    "TH": "θ ð",
    "DD": "t d ɾ",
    "kk": "k g ɡ h",
    "CH": "ʃ ʒ tʃ dʒ t͡ʃ",
    "SS": "s z",
    "nn": "n ŋ l",
    "RR": "ɹ r ɚ",
    "aa": "a ɑ ɐ æ ʌ aɪ aʊ ɑː",
    "E": "e ɛ ə ɜ ɜː eɪ",
    "ih": "i ɪ j iː",
    "oh": "o ɔ ɒ oʊ ɔɪ ɔː",
    "ou": "u ʊ w uː",
    "sil": "_ ^ $ ʔ . , ˈ ː",
}


def test_tables_cover_all_visemes() -> None:
    assert len(VISEMES) == 15
    assert set(VISEME_SHAPES) == set(VISEMES) == set(OPENNESS)
    for vis in VISEMES:
        shape = VISEME_SHAPES[vis].as_array()
        assert shape.shape == (len(MOUTH_PARAMS),)
        assert 0.0 <= OPENNESS[vis] <= 1.0
        assert 0.0 <= shape[0] <= 1.0 and -1.0 <= shape[1] <= 1.0
        assert np.all((shape[2:] >= 0.0) & (shape[2:] <= 1.0))
    assert VISEME_SHAPES["PP"].lip_press == 1.0 and VISEME_SHAPES["PP"].jaw_open == 0.0
    assert VISEME_SHAPES["aa"].jaw_open > VISEME_SHAPES["E"].jaw_open > VISEME_SHAPES["SS"].jaw_open
    assert VISEME_SHAPES["ou"].lip_round > 0.5 > VISEME_SHAPES["ih"].lip_round
    assert VISEME_SHAPES["ih"].lip_width > 0 > VISEME_SHAPES["ou"].lip_width
    assert VISEME_SHAPES["FF"].upper_lip_raise > 0.3
    assert OPENNESS["aa"] == max(OPENNESS.values()) and OPENNESS["sil"] == OPENNESS["PP"] == 0.0


@pytest.mark.parametrize("viseme", sorted(EXPECTED))
def test_ipa_mapping(viseme: str) -> None:
    for phoneme in EXPECTED[viseme].split():
        assert viseme_for(phoneme) == viseme, phoneme


def test_silence_and_stress_marks() -> None:
    assert viseme_for("") == "sil"
    assert viseme_for(" ") == "sil"
    assert viseme_for("ˈa") == "aa"
    assert viseme_for("ˌoʊ") == "oh"


@pytest.mark.parametrize(
    "symbol", ["Q", "#", "\U0001f600", "123", "\x00", "ʘ", "ǃ", "ẽ", "xyz", "ːː"]
)
def test_unknown_symbols_never_crash(symbol: str) -> None:
    assert viseme_for(symbol) in VISEMES


def test_openness_track_follows_active_phoneme() -> None:
    phonemes = (
        PhonemeTiming("", 0.0, 0.1),
        PhonemeTiming("m", 0.1, 0.2),
        PhonemeTiming("a", 0.2, 0.4),
        PhonemeTiming("s", 0.5, 0.6),  # 0.4..0.5 is an untimed gap: silence
    )
    fps = 20.0
    track = phoneme_openness_track(phonemes, fps, 16)
    expected = np.zeros(16)
    expected[2:4] = OPENNESS["PP"]
    expected[4:8] = OPENNESS["aa"]
    expected[10:12] = OPENNESS["SS"]
    np.testing.assert_allclose(track, expected)
    assert phoneme_openness_track(phonemes, fps, 0).shape == (0,)
    assert np.all(phoneme_openness_track((), fps, 5) == 0.0)


def test_openness_track_accepts_unsorted_input() -> None:
    phonemes = (PhonemeTiming("a", 0.5, 1.0), PhonemeTiming("i", 0.0, 0.5))
    track = phoneme_openness_track(phonemes, 4.0, 5)
    np.testing.assert_allclose(track, [OPENNESS["ih"]] * 2 + [OPENNESS["aa"]] * 2 + [0.0])


def test_timeline_folds_piper_modifier_tokens() -> None:
    # Raw Piper alignments: "^ h ə l ˈ o ʊ , ␠ b ˈ ɑ ː b . $" (stress and length marks timed).
    raw = [
        ("^", 0.046),
        ("h", 0.035),
        ("ə", 0.035),
        ("l", 0.046),
        ("ˈ", 0.116),
        ("o", 0.058),
        ("ʊ", 0.046),
        (",", 0.139),
        (" ", 0.162),
        ("b", 0.058),
        ("ˈ", 0.046),
        ("ɑ", 0.07),
        ("ː", 0.081),
        ("b", 0.07),
        (".", 0.058),
        ("$", 0.035),
    ]
    phonemes, t = [], 0.0
    for sym, dur in raw:
        phonemes.append(PhonemeTiming(sym, t, t + dur))
        t += dur
    spans = viseme_timeline(phonemes)
    symbols = [v for v, _, _ in spans]
    assert symbols == [
        "sil",
        "kk",
        "E",
        "nn",
        "oh",
        "ou",
        "sil",
        "sil",
        "PP",
        "aa",
        "PP",
        "sil",
        "sil",
    ]
    by_vis = {v: (s, e) for v, s, e in spans}
    # The stress mark's time went to the stressed vowel, the length mark's to the vowel before it.
    assert by_vis["oh"][0] == pytest.approx(phonemes[4].start)
    assert by_vis["aa"] == pytest.approx((phonemes[10].start, phonemes[12].end))
    # Spans stay sorted and non-overlapping.
    for (_, _, e0), (_, s1, _) in zip(spans, spans[1:], strict=False):
        assert s1 >= e0 - 1e-9
    track = phoneme_openness_track(phonemes, 100.0, int(t * 100))
    assert track[int(phonemes[12].start * 100) + 2] == OPENNESS["aa"]  # "ː" keeps the vowel open
