"""What the built-in brain knows about itself and about the person it talks to.

- ``self_description``: a first-person sentence or two from the persona: its own "I am ..."
  knowledge lines, or the system prompt's "You are NAME, a ..." turned around ("I'm NAME,
  a ..."), so "tell me about yourself" gets an answer in character.
- ``user_name``: the name the user gave in this conversation ("my name is Daniel", "I'm
  Priya", "call me Jo"), newest first; ``asks_own_name`` spots "what's my name?".
- ``question_parts``: a turn said in several breaths ("I was reading about the Moon yesterday.
  How far away is it?") split into its sentences, the question first, so the brain can look up
  the question with the context the earlier sentences give it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from talkie.brain.base import Turn
from talkie.brain.persona import Persona
from talkie.hearing.turn_end import classify
from talkie.hearing.vocabulary import introduced_names

__all__ = ["asks_own_name", "question_parts", "self_description", "user_name", "without_intro"]

_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_YOU_ARE = re.compile(r"^\s*you\s+are\s+(.+)$", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"^\s*(i am|i'm|my name is|i)\b", re.IGNORECASE)
_SWAPS = (
    (re.compile(r"\byour\b", re.IGNORECASE), "my"),
    (re.compile(r"\byours\b", re.IGNORECASE), "mine"),
    (re.compile(r"\byourself\b", re.IGNORECASE), "myself"),
    (re.compile(r"\byou are\b", re.IGNORECASE), "I am"),
    (re.compile(r"\byou\b", re.IGNORECASE), "I"),
)
_OWN_NAME = re.compile(
    r"\b(what(?:'s| is) my name|do you (?:know|remember) my name|who am i|what am i called)\b",
    re.IGNORECASE,
)
_INTRO = re.compile(
    r"\b(?i:my name is|my name's|i am called|i'm called|call me)\s+[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?"
    r"|\b(?i:i am|i'm)\s+[A-Z][a-z'-]+(?=[\s.,!?]|$)"
)
_MAX_SELF_CHARS = 260


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.split(text.strip()) if s.strip()]


def self_description(persona: Persona) -> str:
    """Who the character says it is, in the first person (see the module docstring)."""
    mine = [s for s in _sentences(persona.knowledge) if _FIRST_PERSON.match(s)]
    if mine:
        text = " ".join(mine[:2])
    else:
        first = next(iter(_sentences(persona.system_prompt)), "")
        match = _YOU_ARE.match(first)
        if match is None:
            return f"I'm {persona.name}."
        text = "I'm " + match.group(1)
        for pattern, replacement in _SWAPS:
            text = pattern.sub(replacement, text)
    if len(text) > _MAX_SELF_CHARS:
        text = text[:_MAX_SELF_CHARS].rsplit(" ", 1)[0].rstrip(",;") + "."
    return text if text.endswith((".", "!", "?")) else text + "."


def user_name(history: Sequence[Turn], user_text: str = "") -> str:
    """The name the user gave (in ``user_text`` first, then the history, newest first)."""
    for text in [user_text, *(t.text for t in reversed(history) if t.role == "user")]:
        names = introduced_names(text)
        if names:
            return names[-1]
    return ""


def asks_own_name(text: str) -> bool:
    return _OWN_NAME.search(text) is not None


def without_intro(text: str) -> str:
    """``text`` with the user's self-introduction removed ("My name is Daniel, what's yours?"
    -> "what's yours?")."""
    return _INTRO.sub("", text).strip(" ,.;-\u2014")


def question_parts(text: str) -> list[str]:
    """The sentences of a multi-breath turn: questions and requests first (last first), then
    the rest; a single sentence comes back alone. A question after a comma is a part of its
    own ("Because I'm building a kiosk, I need to know, does it need a graphics card?")."""
    sentences: list[str] = []
    for sentence in _sentences(text):
        clauses = [c.strip() for c in sentence.split(",") if c.strip()]
        tail = clauses[-1] if len(clauses) > 1 else ""
        head = ", ".join(clauses[:-1])
        if (
            tail
            and classify(tail) in ("question", "request")
            and min(len(tail.split()), len(head.split())) >= 3
        ):
            sentences += [head, tail]
        else:
            sentences.append(sentence)
    if len(sentences) <= 1:
        return sentences
    asking = [s for s in reversed(sentences) if classify(s) in ("question", "request")]
    rest = [s for s in sentences if s not in asking]
    return asking + rest
