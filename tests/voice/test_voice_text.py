"""Clause splitting and text preparation for TTS."""

from __future__ import annotations

import pytest

from talkie.errors import InvalidInputError
from talkie.voice import split_clauses
from talkie.voice.text import clauses_for_speech, prepare_for_tts, word_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there.", ["Hello there."]),
        ("Hi! How are you? Fine.", ["Hi!", "How are you?", "Fine."]),
        # abbreviations and initials are not sentence ends
        ("Dr. Smith met Mrs. Jones.", ["Dr. Smith met Mrs. Jones."]),
        (
            "J. R. R. Tolkien wrote it. Then he slept.",
            ["J. R. R. Tolkien wrote it.", "Then he slept."],
        ),
        ("Use tools, e.g. a hammer.", ["Use tools, e.g. a hammer."]),
        ("See No. 5 and fig. 3 for details.", ["See No. 5 and fig. 3 for details."]),
        ("I said no. Then he left.", ["I said no.", "Then he left."]),
        ("Apples, pears, etc. and more.", ["Apples, pears, etc. and more."]),
        (
            "We sold apples, pears, etc. Then we left.",
            ["We sold apples, pears, etc.", "Then we left."],
        ),
        ("The U.S. army came.", ["The U.S. army came."]),
        # numbers and times
        (
            "It is 3.5 degrees and 1,000 people at 10:30 today.",
            ["It is 3.5 degrees and 1,000 people at 10:30 today."],
        ),
        ("Version 2.0. Next line.", ["Version 2.0.", "Next line."]),
        # semicolons and colons
        ("First this; then that: done.", ["First this;", "then that:", "done."]),
        # commas split only after a few words, and not before a tiny tail
        ("Yes, I agree.", ["Yes, I agree."]),
        (
            "When you get there tomorrow, call me please.",
            ["When you get there tomorrow,", "call me please."],
        ),
        ("I went to the big store, too.", ["I went to the big store, too."]),
        # ellipses
        ("Wait... What was that?", ["Wait...", "What was that?"]),
        ("Well… maybe not.", ["Well… maybe not."]),
        # quotes and repeated punctuation stay with their clause
        ('She said "yes." And left.', ['She said "yes."', "And left."]),
        ("Really?! No way!!!", ["Really?!", "No way!!!"]),
        # newlines: wrapped prose joins; blank lines, bullets and short headings split
        ("This line is\nwrapped in the middle.", ["This line is wrapped in the middle."]),
        ("One paragraph\n\nAnother one", ["One paragraph", "Another one"]),
        ("Shopping\n- milk\n- eggs", ["Shopping", "milk", "eggs"]),
        ("1. Buy milk\n2. Call mum", ["1. Buy milk", "2. Call mum"]),
        ("Hi Anna\nThanks for writing.", ["Hi Anna", "Thanks for writing."]),
        # punctuation-only fragments attach to the clause before them or vanish
        ("Hello!!! ???", ["Hello!!! ???"]),
        ("...", []),
        ("", []),
        ("   \n\t ", []),
        ("  spaced    out   words  ", ["spaced out words"]),
    ],
)
def test_split_clauses(text: str, expected: list[str]) -> None:
    assert split_clauses(text) == expected


def test_split_clauses_never_returns_empty_strings() -> None:
    text = " . , ; : ! ? ... \n\n - \n Hi . . , okay ;; fine :: "
    clauses = split_clauses(text)
    assert clauses
    assert all(c and c == c.strip() for c in clauses)


def test_split_clauses_keeps_all_words() -> None:
    text = (
        "Dr. Who said, after a long and tiring day at work, that 3.5 hours was enough; "
        "nobody agreed. Did they? No... Not at all!"
    )
    assert " ".join(split_clauses(text)).split() == text.split()


def test_min_comma_words_is_configurable() -> None:
    assert split_clauses("Yes, I agree with you.", min_comma_words=1) == [
        "Yes,",
        "I agree with you.",
    ]


def test_prepare_for_tts_drops_title_periods() -> None:
    assert prepare_for_tts("Dr. Smith and Mrs. Jones met St. John.") == (
        "Dr Smith and Mrs Jones met St John."
    )
    assert prepare_for_tts("Call the Dr.") == "Call the Dr."


def test_word_tokens() -> None:
    assert word_tokens('Hello, "Dr." Smith! It\'s 3.5 -- well-known.') == [
        "Hello",
        "Dr",
        "Smith",
        "It's",
        "3.5",
        "well-known",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_clauses_for_speech_rejects_empty_text(text: str) -> None:
    with pytest.raises(InvalidInputError, match="nothing to say: the text is empty"):
        clauses_for_speech(text)


def test_clauses_for_speech_rejects_punctuation_only() -> None:
    with pytest.raises(InvalidInputError, match="nothing to say"):
        clauses_for_speech("?! ...")
