"""Text preparation for TTS: clause splitting (so the first audio comes fast) and small fixes.

A TTS engine synthesises one clause at a time; the shorter the first clause, the sooner the
character starts speaking. Sentences end at ``. ! ?`` (and ellipses before a capital), clauses at
``; :`` and at commas once the clause has a few words. Periods that do not end a sentence
(``Dr.``, ``e.g.``, ``3.5``, initials) are recognised, so no sentence is cut in the middle.
"""

from __future__ import annotations

import re
import unicodedata

from talkie.errors import InvalidInputError

__all__ = ["clauses_for_speech", "prepare_for_tts", "split_clauses", "word_tokens"]

# Abbreviations whose period never ends a sentence (lower case, without the final period).
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "st", "mt", "gen", "col", "lt", "sgt", "capt", "cpt",
        "rev", "hon", "fr", "vs", "e.g", "i.e", "cf", "approx", "ca", "viz",
    }
)  # fmt: skip
# Abbreviations only when a number follows ("No. 5", "Jan. 3"); "no." also ends many sentences.
_BEFORE_NUMBER = frozenset(
    {
        "no", "nos", "p", "pp", "fig", "figs", "vol", "vols", "ch", "sec", "art", "jan", "feb",
        "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip
# Abbreviations that often end a sentence too: a boundary only if a capital letter follows.
_MAYBE_FINAL = frozenset(
    {"etc", "inc", "ltd", "co", "corp", "jr", "sr", "al", "ave", "blvd", "rd", "dept", "univ"}
)
# Titles before a name: the TTS front end (espeak) would otherwise end a sentence at their period
# and speak "Doctor." with a falling tone and a pause before the name.
_TITLE_PERIOD = re.compile(
    r"\b(Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|Mt|Gen|Col|Lt|Sgt|Capt|Rev|Hon|Fr|vs)\.(?=\s+\w)"
)
# A candidate boundary: terminator run, optional closing quotes/brackets, then space or the end.
_BOUNDARY = re.compile(r"(\.{3,}|…|[.!?]+|[;:,])([\"'”’»)\]}]*)(?=\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*•·–—]|\d{1,3}[.)])\s+")
_SYMBOL_BULLET = re.compile(r"^\s*[-*•·–—]\s+")
_WORD = re.compile(r"\w", re.UNICODE)
_MIN_WORDS_AFTER_COMMA = 2
_HEADING_MAX_WORDS = 6


def _count_words(text: str) -> int:
    return sum(1 for token in text.split() if _WORD.search(token))


def _next_word(text: str, pos: int) -> str:
    rest = text[pos:].lstrip()
    rest = rest.lstrip("\"'“‘«([{")
    return rest.split(maxsplit=1)[0] if rest else ""


def _lines_to_paragraphs(text: str) -> list[str]:
    """Join hard-wrapped lines; keep blank lines, list items and short heading lines separate."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            flush()
            continue
        if _BULLET.match(line):
            flush()
            # A symbol bullet is layout, not speech; numbers ("1.") are kept and read out.
            line = _SYMBOL_BULLET.sub("", line)
        elif current:
            previous = current[-1]
            ends_open = previous[-1].isalnum() or previous[-1] in ",;:-("
            looks_like_heading = (
                previous[-1].isalnum()
                and line[0].isupper()
                and _count_words(" ".join(current)) <= _HEADING_MAX_WORDS
            )
            if looks_like_heading or not ends_open:
                flush()
        current.append(line)
    flush()
    return paragraphs


def _is_sentence_period(text: str, start: int, end: int) -> bool:
    """Decide whether the single period at ``text[start]`` ends a sentence."""
    before = text[:start]
    token = before.split()[-1] if before.split() else ""
    token = token.lstrip("\"'“‘«([{")
    word = token.lower()
    following = _next_word(text, end)
    next_is_capital = bool(following) and (following[0].isupper() or following[0].isdigit())
    if not following:
        return True
    if token.isdigit() and not before[: -len(token)].strip():
        return False  # a list marker at the start of a line: "1. Buy milk"
    if word in _MAYBE_FINAL:
        return next_is_capital
    if word in _ABBREVIATIONS:
        return False
    if word in _BEFORE_NUMBER and following[0].isdigit():
        return False
    if len(token) == 1 and token.isalpha() and token.isupper() and next_is_capital:
        return False  # an initial: "J. R. R. Tolkien"
    if "." in token and re.fullmatch(r"(?:\w\.)+\w", token) and not next_is_capital:
        return False  # "U.S. army", "a.m. tomorrow"
    # Text after a real sentence end starts with a capital, digit or quote; a lower-case word
    # after a period is almost always an abbreviation we do not know.
    return next_is_capital or not following[0].isalpha()


def _split_paragraph(text: str, min_comma_words: int) -> list[str]:
    clauses: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        terminator = match.group(1)
        end = match.end()
        clause_so_far = text[start:end]
        if terminator == ".":
            boundary = _is_sentence_period(text, match.start(1), end)
        elif terminator in ("...", "…") or terminator.startswith("..."):
            following = _next_word(text, end)
            boundary = (
                (not following)
                or following[0].isupper()
                or (_count_words(clause_so_far) >= min_comma_words)
            )
        elif terminator == ",":
            rest = text[end:]
            next_strong = re.search(r"[.!?;:…](?=[\"'”’»)\]}]*(?:\s|$))", rest)
            rest_of_sentence = rest[: next_strong.start()] if next_strong else rest
            boundary = (
                _count_words(clause_so_far) >= min_comma_words
                and _count_words(rest_of_sentence) >= _MIN_WORDS_AFTER_COMMA
            )
        else:  # ! ? ; : and runs like "?!"
            boundary = True
        if boundary:
            clauses.append(clause_so_far.strip())
            start = end
    clauses.append(text[start:].strip())
    return [c for c in clauses if c]


def split_clauses(text: str, *, min_comma_words: int = 4) -> list[str]:
    """Split ``text`` into clauses to synthesise one after another.

    Splits after sentence ends (``. ! ?``), ``;`` and ``:``, ellipses followed by a capital, and
    commas once the clause has at least ``min_comma_words`` words (and at least two words
    follow). Abbreviations (``Dr.``, ``e.g.``), initials, decimal numbers (``3.5``) and times
    (``10:30``) are not split. Blank lines and list items always start a new clause; hard-wrapped
    lines are joined. Never returns empty strings; punctuation-only fragments are attached to the
    clause before them (or dropped), so the result is ``[]`` when there is nothing to say.
    """
    normalized = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    normalized = normalized.replace("\t", " ").replace("\u00a0", " ")
    clauses: list[str] = []
    for paragraph in _lines_to_paragraphs(normalized):
        paragraph = re.sub(r"\s+", " ", paragraph).strip()
        for clause in _split_paragraph(paragraph, min_comma_words):
            if _WORD.search(clause):
                clauses.append(clause)
            elif clauses:
                clauses[-1] = f"{clauses[-1]} {clause}"
    return clauses


def prepare_for_tts(clause: str) -> str:
    """Small text fixes before a clause reaches a TTS front end.

    Drops the period after titles before a name ("Dr. Smith" -> "Dr Smith"): espeak-based front
    ends read the title either way, but with the period they also end the sentence there.
    """
    return _TITLE_PERIOD.sub(r"\1", clause)


def word_tokens(text: str) -> list[str]:
    """Spoken words of ``text``: whitespace tokens with surrounding punctuation removed.

    Inner punctuation is kept ("don't", "3.5", "well-known"); tokens without a letter or digit
    are dropped.
    """
    words: list[str] = []
    for token in text.split():
        word = re.sub(r"^[^\w]+|[^\w]+$", "", token)
        if _WORD.search(word):
            words.append(word)
    return words


def clauses_for_speech(text: str) -> list[str]:
    """``split_clauses`` for a TTS engine: raises ``InvalidInputError`` if nothing can be said."""
    if not text or not text.strip():
        raise InvalidInputError("nothing to say: the text is empty; give some text to speak")
    clauses = split_clauses(text)
    if not clauses:
        raise InvalidInputError(
            "nothing to say: the text has no words, only punctuation; give some text to speak"
        )
    return clauses
