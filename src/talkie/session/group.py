"""Group conversation: in a meeting, the character answers only what is meant for it.

Several people talk in a call; most of what the ears hear is people talking to each other. A
turn is for the character when

- it names the character (``names``: its name and any aliases, matched as whole words, so
  "Nova, what is your name?" and "what do you think, Nova?" count, "novak" does not), or
- it calls the character by a word that sounds like its name and asks something: "Hey, no,
  what is your name?" is how a small recogniser hears "Hey Nova, what is your name?" (a short
  name right after "hey" is often clipped). Only after a greeting, only a clipped or one-letter-off
  name, only with a question or request after it, so "Hey, no, that's wrong" stays overheard, or
- it asks something (a question or a request, ``talkie.hearing.turn_end.classify``) within
  ``follow_up_s`` of the character having spoken: the follow-up to what it just said.

Everything else is overheard: kept as a transcript line (who said it, when the meeting tells),
never answered. Typed messages are always for the character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from talkie.hearing.turn_end import classify

__all__ = ["GroupOptions", "group_options", "is_addressed", "names_in", "without_address"]

_WORD = re.compile(r"[a-z0-9']+")
_GREETINGS = ("hey", "hi", "hello", "ok", "okay", "oh", "so", "excuse me")
# A greeting, then one or two words (the name as heard), then the rest of the turn.
_CALL = re.compile(
    rf"^\s*(?:{'|'.join(_GREETINGS)})[\s,.!]+([a-z']+)(?:[\s-]+([a-z']+))?\s*[,.!:;-]+\s*(.*)$",
    re.I | re.S,
)


@dataclass(frozen=True)
class GroupOptions:
    """``names``: what people call the character (lower-case words are compared);
    ``follow_up_s``: how long after the character spoke a question is taken as for it;
    ``join_s``: overheard words and the next segment are one turn only within this pause (a
    breath: "what is the weather ... Nova?"); after a longer one the chatter is not part of the
    question (it would confuse the answer)."""

    names: tuple[str, ...]
    follow_up_s: float = 10.0
    join_s: float = 1.2

    def __post_init__(self) -> None:
        if not any(_words(n) for n in self.names):
            raise ValueError("group mode needs the character's name (a word to answer to)")
        if self.follow_up_s < 0:
            raise ValueError("follow_up_s must not be negative")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def names_in(text: str, names: tuple[str, ...]) -> bool:
    """Does ``text`` name the character? Whole words; a name of several words must appear
    in order ("Captain Nova"). A possessive counts ("Nova's")."""
    said = [w.removesuffix("'s") for w in _words(text)]
    for name in names:
        wanted = _words(name)
        if not wanted:
            continue
        n = len(wanted)
        if any(said[i : i + n] == wanted for i in range(len(said) - n + 1)):
            return True
    return False


def _sounds_like(heard: str, name: str) -> bool:
    """``heard`` (lower-case letters) is ``name`` clipped ("no" for "nova", at least two
    letters) or one letter off ("nava"; names of four letters or more)."""
    if heard == name:
        return True
    if 2 <= len(heard) < len(name) and name.startswith(heard):
        return True
    return len(name) >= 4 and abs(len(heard) - len(name)) <= 1 and _one_edit(heard, name)


def _one_edit(a: str, b: str) -> bool:
    """At most one substitution, insertion or deletion between ``a`` and ``b``."""
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def _sound_alike_call(text: str, names: tuple[str, ...]) -> str | None:
    """The question or request after "hey <a word that sounds like the name>," in ``text``
    (None: no such call). Both the word alone and two words joined ("no va") are compared."""
    match = _CALL.match(text.replace("’", "'"))
    if match is None:
        return None
    first, second, rest = match.group(1).lower(), (match.group(2) or "").lower(), match.group(3)
    heard = [first] if not second else [first + second]
    for name in names:
        wanted = "".join(_words(name))
        if any(_sounds_like(h.replace("'", ""), wanted) for h in heard):
            asks = len(_words(rest)) >= 3 and classify(rest) in ("question", "request")
            return rest if asks else None  # "Hey, no, what?" is too little to go on
    return None


def without_address(text: str, names: tuple[str, ...]) -> str:
    """``text`` without the words that only call the character ("Nova, what is ..." -> "what
    is ..."; "..., Nova?" -> "...?"): an address is not part of the question, and a brain that
    matches words (the built-in one) answers the question better without it. The text itself
    when nothing else would be left."""
    stripped = text.strip()
    called = _sound_alike_call(stripped, names)
    if called is not None:
        stripped = called
    for name in sorted(names, key=len, reverse=True):
        escaped = r"\s+".join(re.escape(w) for w in name.split())
        if not escaped:
            continue
        lead = re.compile(rf"^(?:(?:hey|hi|ok|okay|so)[\s,]+)?{escaped}\s*[,.!:;-]+\s*", re.I)
        tail = re.compile(rf"[\s,]+{escaped}\s*([?.!]*)$", re.I)
        stripped = lead.sub("", stripped, count=1)
        stripped = tail.sub(r"\1", stripped, count=1)
    if not _words(stripped):
        return text.strip()
    return stripped[:1].upper() + stripped[1:]


def is_addressed(text: str, options: GroupOptions, *, since_character_spoke: float | None) -> bool:
    """Is this turn for the character? ``since_character_spoke``: seconds since its voice was
    last heard (0 while it speaks, None if it has not spoken yet)."""
    if names_in(text, options.names):
        return True
    if _sound_alike_call(text, options.names) is not None:
        return True
    recent = since_character_spoke is not None and since_character_spoke <= options.follow_up_s
    return recent and classify(text) in ("question", "request")


def group_options(
    on: bool, names: tuple[str, ...], follow_up_s: float | None, *, character_name: str
) -> GroupOptions | None:
    """The options a page's ``group`` event asks for (None: group mode off). Without names
    the character answers to its own."""
    if not on:
        return None
    chosen = names or (character_name,)
    if follow_up_s is None:
        return GroupOptions(chosen)
    return GroupOptions(chosen, follow_up_s)
