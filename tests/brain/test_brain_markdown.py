"""Markdown and layout stripping for speech, whole-text and streamed."""

from __future__ import annotations

import random

import pytest

from talkie.brain import MarkdownStripper, strip_markdown

CASES = [
    ("**Hello** there, *friend*!", "Hello there, friend!"),
    ("# Opening hours\nWe open at 9.", "Opening hours. We open at 9."),
    ("Options:\n- one\n- two\n* three\n+ four", "Options: one. two. three. four"),
    ("1. First\n2. Second", "1. First. 2. Second"),
    ("Run `pip install talkie` now.", "Run pip install talkie now."),
    ("```python\nprint('hi')\n```\nDone.", "print('hi'). Done."),
    ("See [the docs](https://docs.example.com/a?b=1).", "See the docs."),
    ("Visit https://www.example.org/some/path, then call.", "Visit example.org, then call."),
    ("Go to www.acme.example.", "Go to acme.example."),
    ("A fact [1] and another [23].", "A fact and another."),
    ("snake_case and __bold__ and _emph_ and ~~gone~~", "snake case and bold and emph and gone"),
    ("Great! 😀 Let's go 🚀.", "Great! Let's go."),
    ("> quoted text\n---\nafter", "quoted text. after"),
    ("| Day | Hours |\n|-----|-------|\n| Mon | 9-5 |", "Day Hours. Mon 9-5"),
    ("![a cat](http://x.example/cat.png) Nice!", "a cat Nice!"),
    ("Price: 5 - 10 dollars, 3 * 4 = 12.", "Price: 5 - 10 dollars, 3 4 = 12."),
    ("Plain text stays exactly as it is.", "Plain text stays exactly as it is."),
]


@pytest.mark.parametrize(("raw", "spoken"), CASES)
def test_strip_markdown(raw: str, spoken: str) -> None:
    assert strip_markdown(raw) == spoken


@pytest.mark.parametrize(("raw", "spoken"), CASES)
def test_streamed_equals_whole(raw: str, spoken: str) -> None:
    for seed in range(20):
        rng = random.Random(seed)
        stripper = MarkdownStripper()
        out = ""
        i = 0
        while i < len(raw):
            size = rng.randint(1, 5)
            out += stripper.push(raw[i : i + size])
            i += size
        out += stripper.flush()
        assert out.strip() == spoken, seed


def test_plain_text_is_not_held_back() -> None:
    stripper = MarkdownStripper()
    assert stripper.push("Hello") == "Hello"
    assert stripper.push(" world") == " world"
    assert stripper.push("! How") == "! How"
    # Only a possible marker waits for the next characters (and a space for the next word).
    assert stripper.push(" *") == ""
    assert stripper.push("*are** you?") == " are you?"
    assert stripper.flush() == ""


def test_unclosed_link_does_not_mute_the_reply() -> None:
    stripper = MarkdownStripper()
    text = "A stray [bracket " + "word " * 80
    out = stripper.push(text) + stripper.flush()
    assert out.startswith("A stray bracket word")
    assert out.count("word") == 80
