"""The espeak-ng program as a separate-process phonemizer: clause punctuation, dialects, errors."""

from __future__ import annotations

import pytest

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.voice.phonemizer import EspeakPhonemizer, attach_punctuation, phonemizer


def test_clause_punctuation_is_put_back_as_piper_voices_expect() -> None:
    # Piper's own front end gives exactly these strings (espeak-ng's clause terminators).
    p = phonemizer()
    assert p.phonemize("Hello, world.") == "həlˈoʊ, wˈɜːld."
    assert p.phonemize("how are you") == "hˈaʊ ɑːɹ juː"
    assert p.phonemize("well; then: ok") == "wˈɛl; ðˈɛn: ˌoʊkˈeɪ"
    assert p.phonemize("yes!! really?!") == "jˈɛs! ɹˈiəli?"


def test_attach_punctuation_falls_back_when_counts_disagree() -> None:
    assert attach_punctuation("a b. c", ["a", "b", "c"]) == "a, b, c"
    assert attach_punctuation("so... what", ["sˈoʊ", "wˈʌt"]) == "sˈoʊ wˈʌt"
    assert attach_punctuation("one, two?", ["wˈʌn", "tˈuː"]) == "wˈʌn, tˈuː?"


def test_dialect_is_the_accent() -> None:
    p = phonemizer()
    us, gb = p.phonemize("Water, a hot dog.", "en-us"), p.phonemize("Water, a hot dog.", "en-gb")
    assert us != gb
    assert "ɹ" in us.split(",")[0] or "ɾ" in us  # American flap / rhotic
    assert "ɒ" in gb  # British "hot"


def test_text_is_sanitised_and_answers_stay_in_step() -> None:
    p = phonemizer()
    # the sentinel word and control characters cannot desynchronise the pipe
    assert p.phonemize("zxqv one\x00 two\nthree") == p.phonemize("one two three")
    assert p.phonemize("   ") == ""
    assert p.phonemize("Good night.") == "ɡˈʊd nˈaɪt."


def test_unknown_dialect_and_missing_program_are_clear_errors() -> None:
    with pytest.raises(InvalidInputError, match="dialect"):
        phonemizer().phonemize("hello", "not a voice")
    with pytest.raises(InvalidInputError, match="does not know"):
        phonemizer().phonemize("hello", "xx-yy")
    with pytest.raises(MissingDependencyError, match="apt-get install espeak-ng"):
        EspeakPhonemizer(program="espeak-ng-not-installed").phonemize("hello")


def test_runs_as_a_separate_program() -> None:
    p = EspeakPhonemizer()
    p.phonemize("hello")
    process = p._processes["en-us"].proc
    assert process.poll() is None and process.args[0] == "espeak-ng"
    p.close()
    assert process.poll() is not None
