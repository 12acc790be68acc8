"""ClauseChunker: incremental clause splitting that agrees with split_clauses."""

from __future__ import annotations

import random

import pytest

from talkie.brain import ClauseChunker
from talkie.voice.text import split_clauses, word_tokens


def stream(text: str, seed: int, chunker: ClauseChunker | None = None) -> list[list[str]]:
    """Feed ``text`` in random small deltas; return what each push (and the flush) returned."""
    chunker = chunker or ClauseChunker()
    rng = random.Random(seed)
    out: list[list[str]] = []
    i = 0
    while i < len(text):
        size = rng.randint(1, 7)
        out.append(chunker.push(text[i : i + size]))
        i += size
    out.append(chunker.flush())
    return out


PARITY_TEXTS = [
    "Hello there! How are you today? I am fine, thanks for asking.",
    "Dr. Smith paid 3.5 dollars at 10:30 am. Then he left.",
    "We open at 9 am; we close at 6 pm. The shop, which is small and cosy, sells bikes.",
    "Well... I think so. E.g. this works, i.e. it is fine. See you at 5 p.m. tomorrow.",
    "Here is a list:\n- one thing\n- another thing\nDone.",
    "Mr. and Mrs. Jones moved to No. 5 in Jan. 2020. They like it.",
    "It costs $1,299.99 in total. Version 2.0 is out.",
]


@pytest.mark.parametrize("text", PARITY_TEXTS)
def test_same_clauses_as_split_clauses(text: str) -> None:
    expected = split_clauses(text)
    for seed in range(25):
        got = [clause for step in stream(text, seed) for clause in step]
        assert got == expected, (seed, got)


def test_clauses_come_out_as_soon_as_they_end() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Hello") == []
    assert chunker.push(" there!") == ["Hello there!"]  # "!" ends a clause without waiting
    assert chunker.push(" Is it") == []
    assert chunker.push(" open?") == ["Is it open?"]
    assert chunker.push(" We open at 9.") == []  # "9." could still become "9.5"
    assert chunker.push(" Then") == ["We open at 9."]
    assert chunker.push(" more") == []
    assert chunker.flush() == ["Then more"]
    assert chunker.flush() == []


def test_decimals_times_and_abbreviations_are_not_cut() -> None:
    chunker = ClauseChunker()
    out = []
    deltas = [
        "It is 3",
        ".",
        "5 degrees at 10",
        ":",
        "30, says Dr",
        ". Who",
        " by the way",
        " is e.",
    ]
    for delta in [*deltas, "g. great."]:
        out += chunker.push(delta)
    out += chunker.flush()
    assert out == ["It is 3.5 degrees at 10:30,", "says Dr. Who by the way is e.g. great."]


def test_comma_needs_four_words() -> None:
    chunker = ClauseChunker()
    assert chunker.push("Yes, of course, we do that every day, and more.") == [
        "Yes, of course, we do that every day,"
    ]
    assert chunker.flush() == ["and more."]


def test_long_run_without_punctuation_is_cut() -> None:
    text = (
        "this is a very long answer without any punctuation that goes on and on "
        "because the model likes to talk a lot and never stops"
    )
    pieces = stream(text, seed=1, chunker=ClauseChunker(max_words=12))
    clauses = [c for step in pieces for c in step]
    assert all(len(c.split()) <= 12 for c in clauses)
    assert len(clauses) >= 3
    # Cut before a conjunction where possible, and nothing lost.
    assert any(c.startswith(("that", "because", "and")) for c in clauses[1:])
    assert " ".join(clauses) == text
    # The first piece is out before the text ends.
    first_step = next(i for i, step in enumerate(pieces) if step)
    assert first_step < len(pieces) - 1


def test_leftover_punctuation_after_an_early_cut() -> None:
    chunker = ClauseChunker()
    assert chunker.push('He said "really?') == ['He said "really?']
    assert chunker.push('!" And') == []
    assert chunker.push(" left.") == []
    assert chunker.flush() == ["And left."]


def test_newlines_and_empty_input() -> None:
    chunker = ClauseChunker()
    assert chunker.push("") == []
    assert chunker.push("   ") == []
    assert chunker.push("...") == []
    assert chunker.flush() == []
    out = chunker.push("First line\n\nSecond line\n\n")
    out += chunker.flush()
    assert out == ["First line", "Second line"]


def test_clear_drops_pending_text() -> None:
    chunker = ClauseChunker()
    chunker.push("Half a sent")
    assert chunker.pending
    chunker.clear()
    assert chunker.flush() == []


@pytest.mark.parametrize("seed", range(10))
def test_no_words_lost_on_random_text(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = ["we", "open", "at", "9", "3.5", "Dr.", "e.g.", "and", "then", "Yes", "it"]
    marks = ["", "", "", ",", ".", "!", "?", ";", ":", "..."]
    text = " ".join(rng.choice(vocabulary) + rng.choice(marks) for _ in range(60))
    clauses = [c for step in stream(text, seed) for c in step]
    assert all(c.strip() for c in clauses)
    assert word_tokens(" ".join(clauses)) == word_tokens(text)


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        ClauseChunker(max_words=1)


def _first_short() -> ClauseChunker:
    return ClauseChunker(first_max_words=8, first_min_comma_words=3)


@pytest.mark.parametrize("seed", range(5))
def test_a_short_first_clause_comes_at_a_natural_break(seed: int) -> None:
    def clauses(text: str) -> list[str]:
        return [c for piece in stream(text, seed, _first_short()) for c in piece]

    # a comma after three words ends the first clause (later clauses need four)
    assert clauses("I am Nova, the guide, and I love the stars, the planets too.") == [
        "I am Nova,", "the guide, and I love the stars,", "the planets too.",
    ]  # fmt: skip
    # a conjunction within the first eight words
    assert clauses("You can upload a photo and I will talk with its face.") == [
        "You can upload a photo", "and I will talk with its face.",
    ]  # fmt: skip
    # never in the middle of a phrase: without a break the ordinary limit decides, and then
    # the cut does not end on a word that leads into the next ("from the | Earth")
    moon = "The Moon is about three hundred eighty four thousand kilometres from the Earth."
    assert clauses(moon) == [
        "The Moon is about three hundred eighty four thousand kilometres", "from the Earth.",
    ]  # fmt: skip
    # the same text, said in full, is the same words
    for text in ("I am Nova, the guide, and I love the stars, the planets too.", moon):
        assert word_tokens(" ".join(clauses(text))) == word_tokens(text)


def test_the_first_clause_limits_start_again_after_clear() -> None:
    chunker = _first_short()
    assert chunker.push("Well, I think ") == []
    chunker.clear()
    assert chunker.push("Yes, I can, of course. ") == ["Yes, I can,"]


def test_a_pronoun_is_not_a_break_for_the_first_clause() -> None:
    chunker = _first_short()
    assert chunker.push("Let me check that for you") == []
    assert chunker.push(". Your order") == ["Let me check that for you."]
