"""Answers about what the character sees, without an LLM: the user's camera and shared screen.

The built-in brain (and the local LLM's brain, which hands such questions to it: a 0.5B model
miscounts lines) answers from a ``Sight`` (``talkie.messages``): who is in view, whether they
look at the screen, a raised hand, and the lines of text read on the shared screen ("what does
my screen say?", "read me the second line", "what does this error say?"). It says honestly
what it cannot tell: colours, clothes, objects (it sees faces, eyes, hands and text only),
and what it cannot see at all (the camera or screen share is off).
"""

from __future__ import annotations

import re

from talkie.messages import Sight

__all__ = ["sight_answer"]

_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "top": 1, "1st": 1, "2nd": 2,
    "3rd": 3,
}  # fmt: skip
_SPOKEN = {v: k for k, v in reversed(list(_ORDINALS.items())) if not k[0].isdigit()}
# "the second line", "line 3", "line number two" (looked for separately: "on line 3" holds both)
_LINE_BEFORE = re.compile(r"\b(\w+)\s+line\b")
_LINE_AFTER = re.compile(r"\bline\s+(?:number\s+)?(\w+)\b")
# Words that are about the screen whatever is shared; and those that are only while it is
# ("what does this say?" with nothing shared is about something else).
_SCREEN_NAMED = re.compile(r"\b(?:screen|monitor|display)\b")
_SCREEN_SHARED = re.compile(r"\b(?:error|message|window|code|page|document|shared|sharing)\b")
_READ = re.compile(r"\b(?:read|say|says|saying|written|write|text|wording)\b")
_POINTING = re.compile(r"\b(?:this|that|it|here)\b")
_CAMERA_NAMED = re.compile(
    r"\b(?:see me|see us|seeing me|see anyone|see anybody|see somebody|see someone|who do you "
    r"see|am i there|am i in view|in view|how many people|looking at you|look at you|camera)\b"
)
_CAMERA_ON = re.compile(
    r"\b(?:can you see|do you see|what do you see|who is there|who's there|anyone there|"
    r"anybody there|my hand|in the picture)\b"
)
_DETAILS = re.compile(
    r"\b(?:wearing|wear|colou?r|holding|hold|shirt|hair|glasses|hat|object|thing|"
    r"room|behind me|background|how do i look|what do i look like|pretty|old am i)\b"
)
_MAX_READ = 8  # lines read aloud at once: more is a monologue


def sight_answer(sight: Sight | None, user_text: str) -> str | None:
    """The answer when ``user_text`` asks about what the character sees, else None."""
    text = user_text.lower()
    screen_on = sight is not None and sight.screen
    camera_on = sight is not None and sight.camera
    line = _line_number(text)
    named = bool(_SCREEN_NAMED.search(text))
    reading = bool(_READ.search(text)) or "what" in text
    if named and reading:
        return _screen_answer(sight, text, line)
    if screen_on and (
        line is not None
        or (reading and _SCREEN_SHARED.search(text))
        or (_READ.search(text) and _POINTING.search(text))
    ):
        return _screen_answer(sight, text, line)
    if camera_on and _DETAILS.search(text):
        return (
            "I can tell whether you're there, where you are and where you're looking, and I "
            "can read text on a shared screen, but I can't make out details like that."
        )
    if _CAMERA_NAMED.search(text) or (camera_on and _CAMERA_ON.search(text)):
        return _camera_answer(sight)
    return None


def _line_number(text: str) -> int | None:
    matches = [*_LINE_BEFORE.finditer(text), *_LINE_AFTER.finditer(text)]
    for match in matches:
        word = match.group(1)
        if word == "last":
            return -1
        if word in _ORDINALS:
            return _ORDINALS[word]
        if word.isdigit():
            return int(word)
    return None


def _screen_answer(sight: Sight | None, text: str, line: int | None) -> str:
    if sight is None or not sight.screen:
        return (
            "I can't see your screen: you're not sharing it. Press Share screen and ask me "
            "again."
        )
    lines = sight.screen_text.lines if sight.screen_text is not None else ()
    if sight.screen_text is None:
        return "I'm still reading your screen. Ask me again in a moment."
    if not lines:
        return "I can see your screen, but I can't make out any text on it."
    if line is not None:
        index = len(lines) if line == -1 else line
        if not 1 <= index <= len(lines):
            count = "one line" if len(lines) == 1 else f"{len(lines)} lines"
            return f"I can only read {count} on your screen."
        which = "last" if line == -1 else _SPOKEN.get(index, f"number {index}")
        return f'The {which} line says: "{lines[index - 1]}".'
    if re.search(r"\berror|exception|fail|warning\b", text):
        errors = [s for s in lines if re.search(r"error|exception|fail|warning", s, re.I)]
        if errors:
            return "The error says: " + " ".join(f'"{s}".' for s in errors[:3])
    shown = lines[:_MAX_READ]
    said = " ".join(f'"{s}".' for s in shown)
    more = len(lines) - len(shown)
    tail = f" And {more} more line{'s' if more > 1 else ''}." if more > 0 else ""
    return f"Your screen says: {said}{tail}"


def _camera_answer(sight: Sight | None) -> str:
    if sight is None or not sight.camera:
        return "I can't see you: your camera is off. Turn it on and I'll be able to."
    p = sight.presence
    if p is None:
        return "Your camera is on, but I haven't had a good look yet. Give me a second."
    if not p.present:
        return "Your camera is on, but I can't see anyone in the picture right now."
    who = "you" if p.faces == 1 else f"{p.faces} people"
    look = {True: ", and you're looking at me", False: ", but you're looking away", None: ""}
    hand = " You have your hand up." if p.hand_raised else ""
    return f"Yes, I can see {who}{look[p.looking]}.{hand}"
