"""Cut a stream of reply text into clauses the moment each one is complete.

The session sends every clause to TTS as soon as it exists, so the first clause decides how fast
the character starts speaking. ``ClauseChunker`` applies the same rules as
``talkie.voice.text.split_clauses`` (sentence ends, ``;``/``:``, commas after a few words,
abbreviations, decimals, times, list items) to a growing buffer, and adds two streaming rules:

- ``!``, ``?`` and ``;`` end a clause at once, without waiting for the next token (they never
  occur inside a word or number, unlike ``.``/``:``/``,``, which need the next characters);
- a long run without punctuation is cut after ``max_words`` words, preferably before a
  conjunction, so a run-on LLM sentence does not hold back speech.
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


class ClauseChunker:
    """Incremental clause splitter.

    ``push(delta)`` returns the clauses completed by that delta (often ``[]``); ``flush()``
    returns what is left at the end of the reply; ``clear()`` drops everything (barge-in).
    Returned clauses are whitespace-normalised, non-empty and contain a word.
    """

    def __init__(self, *, min_comma_words: int = 4, max_words: int = 12) -> None:
        if min_comma_words < 1 or max_words < 2:
            raise ValueError("min_comma_words must be >= 1 and max_words >= 2")
        self._min_comma_words = min_comma_words
        self._max_words = max_words
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

    # -- internals -------------------------------------------------------------------------

    def _drain(self) -> list[str]:
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

    def _cut_long_run(self) -> list[str]:
        out: list[str] = []
        while True:
            words = [m for m in _COMPLETE_WORD.finditer(self._pending) if _HAS_WORD.search(m[0])]
            if len(words) < self._max_words:
                return out
            cut = words[self._max_words - 1].end()
            for index in range(self._max_words - 1, self._min_cut_words - 1, -1):
                if words[index][0].lower() in _CUT_BEFORE:
                    cut = words[index].start()
                    break
            head = " ".join(self._pending[:cut].split())
            self._pending = self._pending[cut:].lstrip()
            if head:
                out.append(head)
