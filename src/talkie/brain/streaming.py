"""Cut a stream of reply text into clauses the moment each one is complete.

The session sends every clause to TTS as soon as it exists, so the first clause decides how fast
the character starts speaking. ``ClauseChunker`` applies the same rules as
``talkie.voice.text.split_clauses`` (sentence ends, ``;``/``:``, commas after a few words,
abbreviations, decimals, times, list items) to a growing buffer, and adds two streaming rules:

- ``!``, ``?`` and ``;`` end a clause at once, without waiting for the next token (they never
  occur inside a word or number, unlike ``.``/``:``/``,``, which need the next characters);
- a long run without punctuation is cut after ``max_words`` words, preferably before a
  conjunction, so a run-on LLM sentence does not hold back speech;
- optionally the *first* clause is kept short (``first_max_words``, a comma after
  ``first_min_comma_words``): a voice synthesises a whole clause before its first sound, so the
  first clause's length is added to the wait the user feels, while later clauses are made as
  earlier ones play.
"""

from __future__ import annotations

import re
import unicodedata

from talkie.voice.text import split_clauses

__all__ = ["ClauseChunker"]

_ENDS_NOW = re.compile(r"\w[\"'”’»)\]}]*[!?;]+[\"'”’»)\]}]*\s*\Z")
_LEADING_LEFTOVER = re.compile(r"\A[\s\"'”’»)\]}!?;.,:]+")
_COMPLETE_WORD = re.compile(r"\S+(?=\s)")
_HAS_WORD = re.compile(r"\w")
# Cutting before these words keeps the pieces natural to say ("..., and then we").
_CUT_BEFORE = frozenset(
    {"and", "but", "or", "so", "because", "which", "that", "when", "while", "then", "where",
     "although", "though", "if", "since", "unless", "until", "whereas", "who"}
)  # fmt: skip


# Where a short first clause may end: before a conjunction that starts a new clause ("that",
# "which", "who" and "where" are left out: "Let me check | that for you" is a wrong break).
_FIRST_CUT_BEFORE = _CUT_BEFORE - {"that", "which", "who", "where"}
# Words that lead into what follows (prepositions, articles, possessives): never the last word.
_LEADS_IN = frozenset(
    {"the", "a", "an", "of", "to", "from", "in", "on", "at", "for", "with", "by", "about",
     "into", "my", "your", "our", "their", "his", "her", "its", "this", "these", "those", "is",
     "are", "was", "were", "very", "more", "most", "not"}
)  # fmt: skip


class ClauseChunker:
    """Incremental clause splitter.

    ``push(delta)`` returns the clauses completed by that delta (often ``[]``); ``flush()``
    returns what is left at the end of the reply; ``clear()`` drops everything (barge-in).
    Returned clauses are whitespace-normalised, non-empty and contain a word.
    """

    def __init__(
        self,
        *,
        min_comma_words: int = 4,
        max_words: int = 12,
        first_max_words: int | None = None,
        first_min_comma_words: int | None = None,
    ) -> None:
        if min_comma_words < 1 or max_words < 2:
            raise ValueError("min_comma_words must be >= 1 and max_words >= 2")
        if first_max_words is not None and not 2 <= first_max_words <= max_words:
            raise ValueError("first_max_words must be 2..max_words")
        self._min_comma_words = min_comma_words
        self._max_words = max_words
        self._first_max_words = first_max_words or max_words
        self._first_min_comma_words = first_min_comma_words or min_comma_words
        self._started = False  # a clause was returned (the first-clause limits no longer apply)
        # Never cut a run-on sentence into a fragment shorter than this before a conjunction.
        self._min_cut_words = max(2, max_words // 2)
        self._pending = ""
        self._cut_early = False

    @property
    def pending(self) -> str:
        """Text received but not yet returned as a clause."""
        return self._pending

    def push(self, delta: str) -> list[str]:
        """Add a text delta; return the clauses it completes, in order."""
        if not delta:
            return []
        self._pending += unicodedata.normalize("NFC", delta)
        if self._cut_early:
            # After "Really?" was emitted at once, a following "!" or closing quote is left over.
            stripped = _LEADING_LEFTOVER.sub("", self._pending)
            if stripped:
                self._cut_early = False
                self._pending = stripped
                if not self._pending or not _HAS_WORD.search(self._pending):
                    return []
            else:
                self._pending = ""
                return []
        return self._drain()

    def flush(self) -> list[str]:
        """End of the reply: return the remaining clauses and reset."""
        clauses = split_clauses(self._pending, min_comma_words=self._min_comma_words)
        self.clear()
        return clauses

    def clear(self) -> None:
        """Forget all pending text (the reply was interrupted)."""
        self._pending = ""
        self._cut_early = False
        self._started = False

    # -- internals -------------------------------------------------------------------------

    def _drain(self) -> list[str]:
        if not self._started:
            first = self._first_clause()
            if first is None:
                return []
            if first:
                self._started = True
                return [first, *(self._drain() if self._pending.strip() else [])]
        done = self._drain_clauses()
        self._started = self._started or bool(done)
        return done

    def _first_clause(self) -> str | None:
        """The first clause under the first-clause limits: ``None`` while it is incomplete,
        ``""`` when the ordinary rules should decide (the limits are not stricter)."""
        if (self._first_max_words, self._first_min_comma_words) == (
            self._max_words, self._min_comma_words,
        ):  # fmt: skip
            return ""
        clauses = split_clauses(self._pending, min_comma_words=self._first_min_comma_words)
        if len(clauses) >= 2:
            head = clauses[0]
            pattern = r"\A\s*" + r"\s+".join(re.escape(t) for t in head.split()) + r"\s*"
            match = re.match(pattern, self._pending)
            if match is None:
                return ""  # layout was dropped before it: let the ordinary rules cut
            self._pending = self._pending[match.end() :]
            return head
        if not clauses or _ENDS_NOW.search(self._pending):
            return ""
        # Only at a natural break: before a conjunction after three words ("I can help you |
        # and then..."); a cut in the middle of a phrase ("three hundred eighty | four
        # thousand") would be heard as a wrong full stop.
        words = [m for m in _COMPLETE_WORD.finditer(self._pending) if _HAS_WORD.search(m[0])]
        for word in words[3 : self._first_max_words]:
            if word[0].lower() in _FIRST_CUT_BEFORE:
                head = " ".join(self._pending[: word.start()].split())
                self._pending = self._pending[word.start() :]
                return head
        return None if len(words) < self._first_max_words else ""

    def _drain_clauses(self) -> list[str]:
        clauses = split_clauses(self._pending, min_comma_words=self._min_comma_words)
        if not clauses:
            return []
        done = clauses[:-1]
        last = clauses[-1]
        if done:
            self._pending = self._raw_suffix(last)
        if _ENDS_NOW.search(self._pending):
            done.append(last)
            self._pending = ""
            self._cut_early = True
            return done
        done.extend(self._cut_long_run())
        return done

    def _raw_suffix(self, clause: str) -> str:
        """The raw pending text that ``split_clauses`` turned into ``clause`` (its last one)."""
        pattern = r"\s+".join(re.escape(token) for token in clause.split()) + r"\s*\Z"
        match = re.search(pattern, self._pending)
        # split_clauses only changes whitespace and drops layout before the clause, so the clause
        # is found; if not, its normalised text is an equivalent stand-in.
        return self._pending[match.start() :] if match else clause

    def _cut_point(self, max_words: int, min_cut_words: int) -> int | None:
        """Where a run of ``max_words`` complete words is cut (before a conjunction if there
        is one after ``min_cut_words``); ``None`` while the run is shorter."""
        words = [m for m in _COMPLETE_WORD.finditer(self._pending) if _HAS_WORD.search(m[0])]
        if len(words) < max_words:
            return None
        for index in range(max_words - 1, min_cut_words - 1, -1):
            if words[index][0].lower() in _CUT_BEFORE:
                return words[index].start()
        # No conjunction: cut after the last content word ("... kilometres | from the Earth",
        # not "... from the | Earth").
        last = max_words - 1
        while last > min_cut_words and words[last][0].lower() in _LEADS_IN:
            last -= 1
        return words[last].end()

    def _cut_long_run(self) -> list[str]:
        out: list[str] = []
        while True:
            cut = self._cut_point(self._max_words, self._min_cut_words)
            if cut is None:
                return out
            head = " ".join(self._pending[:cut].split())
            self._pending = self._pending[cut:].lstrip()
            if head:
                out.append(head)
