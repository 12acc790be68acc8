"""Make LLM text speakable: strip markdown and other layout from a stream of text deltas.

LLMs write for screens even when told not to: ``**bold**``, ``# headings``, ``- bullets``,
backticks, ``[links](https://...)``, bare URLs and emoji. A TTS engine reads those literally
("asterisk asterisk") or stumbles over them. ``MarkdownStripper`` removes them *incrementally*:
markers often arrive split over two deltas ("*" then "*"), so it holds back only the few characters
that are still ambiguous and passes everything else straight through (latency matters more than
perfection here). Line breaks become sentence breaks, so list items are spoken as separate
sentences.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MarkdownStripper", "strip_markdown"]

# Characters that can make up a whole line of layout (rules, fences, table separators, empty
# bullets); while a line holds only these we cannot tell yet what it will be.
_MARKER_ONLY = re.compile(r"[ \t#>\-*+•|:=_`~]*")
_LAYOUT_LINE = re.compile(r"[ \t#>\-*+•|:=_`~]*")
_FENCE_LINE = re.compile(r"[ \t]*(?:`{3,}|~{3,})[\w+.\-]*[ \t]*")
_FENCE_PREFIX = re.compile(r"[ \t]*(?:`{3,}|~{3,})[\w+.\-]*")
# What a line may start with: headings, block quotes, bullets (numbered items are read out).
_LINE_PREFIX = re.compile(r"[ \t]*(?:(?:#{1,6}|>+|[-*+•])(?:[ \t]+|$))*[ \t]*")
_URL_STARTS = ("https://", "http://", "www.")
_URL_TRAILING = ".,;:!?)]}'\"”’"
_CITATION = re.compile(r"\^?\d{1,3}")
# Hold at most this much text while waiting for a link or URL to close; beyond it the text is
# passed on as it is (a stray "[" must not mute the rest of the reply).
_MAX_HOLD = 300
# Emoji and pictographs: TTS engines skip them or read their names ("smiling face").
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\ufe0f\u200d\u2b50\u2b06"
    "\u2b07\u2b05\u27a1\u2934\u2935\u2705\u274c]"
)


def _host(url: str) -> str:
    """The part of a URL worth saying: its host name without ``www.``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or url
    return host[4:] if host.startswith("www.") else host


class MarkdownStripper:
    """Incremental markdown-to-speech cleaner: ``push(delta)`` returns the text that is now
    safe to speak (possibly ``""``), ``flush()`` returns the rest at the end of the stream.

    Removes emphasis markers (``*``, ``_``, ``~~``), backticks and code fences, heading/quote/
    bullet markers, horizontal rules and table separator lines, emoji; ``[text](url)`` becomes
    ``text``, a bare URL becomes its host ("example.com"), citation marks like ``[1]`` vanish.
    A line break becomes ". " after a line that does not end in punctuation, else a space.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._line_start = True
        self._newline_pending = False
        # A space is held until the next word: removed markers ("[1]", an emoji) must not leave
        # "word ." behind, and no trailing space is spoken at all.
        self._space_pending = False
        self._last = ""  # last non-space character emitted

    @property
    def _prev(self) -> str:
        """The character before the current position, as the listener will get it."""
        return " " if (self._space_pending or self._newline_pending) else self._last

    def push(self, delta: str) -> str:
        """Add a delta; return the cleaned text that can be spoken now."""
        self._buf += delta.replace("\r\n", "\n").replace("\r", "\n")
        return self._drain(final=False)

    def flush(self) -> str:
        """End of stream: return everything still held back, cleaned."""
        out = self._drain(final=True)
        self._buf = ""
        return out

    # -- internals -------------------------------------------------------------------------

    def _emit(self, out: list[str], text: str) -> None:
        if not text:
            return
        if self._newline_pending:
            self._newline_pending = False
            text = text.lstrip()
            if self._last:
                # A line that ended without punctuation (a heading, a list item) still ends a
                # sentence when spoken.
                if self._last.isalnum() or self._last in ")\"'”’":
                    out.append(".")
                    self._last = "."
                self._space_pending = True
        body = text.strip(" \t")
        if not body:
            self._space_pending = self._space_pending or bool(self._last)
            return
        spaced = self._space_pending or body != text.rstrip(" \t")
        if spaced and self._last and body[0] not in ".,;:!?":
            out.append(" ")
        out.append(body)
        self._last = body[-1]
        self._space_pending = body != text.lstrip(" \t")

    def _drain(self, *, final: bool) -> str:
        buf = self._buf
        out: list[str] = []
        i = 0
        n = len(buf)
        while i < n:
            if self._line_start:
                step = self._line_start_step(buf, i, final)
                if step is None:
                    break  # need more text to classify this line
                i = step
                continue
            ch = buf[i]
            if ch == "\n":
                self._line_start = True
                self._newline_pending = True
                i += 1
                continue
            step = self._inline_step(buf, i, final, out)
            if step is None:
                break
            i = step
        self._buf = buf[i:]
        return "".join(out)

    def _line_start_step(self, buf: str, i: int, final: bool) -> int | None:
        """Consume layout at the start of a line; ``None`` means wait for more text."""
        newline = buf.find("\n", i)
        line = buf[i:] if newline < 0 else buf[i:newline]
        complete = newline >= 0 or final
        if not complete:
            if len(line) < _MAX_HOLD and (
                _MARKER_ONLY.fullmatch(line) or _FENCE_PREFIX.fullmatch(line)
            ):
                return None
        elif _LAYOUT_LINE.fullmatch(line) or _FENCE_LINE.fullmatch(line):
            # A whole line of layout (rule, fence, table separator, empty bullet): drop it.
            return len(buf) if newline < 0 else newline + 1
        match = _LINE_PREFIX.match(buf, i)
        end = match.end() if match else i
        # "**Bold** text" starts with "*" but is emphasis, not a bullet: the prefix pattern needs
        # whitespace after a bullet marker, so it stops before "**Bold".
        self._line_start = False
        return max(end, i)

    def _inline_step(self, buf: str, i: int, final: bool, out: list[str]) -> int | None:
        """Handle the text at ``buf[i]`` (not a line start); ``None`` means wait for more."""
        ch = buf[i]
        n = len(buf)
        if ch in "*`#":
            return i + 1
        if ch == "|":
            self._emit(out, " ")  # table cells: the words are enough
            return i + 1
        if ch == "~":
            return i + 1  # strike-through markers; a lone "~5" reads fine as "5"
        if ch == "_":
            if i + 1 >= n and not final:
                return None
            following = buf[i + 1] if i + 1 < n else ""
            inside_word = self._prev.isalnum() and following.isalnum()
            self._emit(out, " " if inside_word else "")
            return i + 1
        if ch == "!":
            if self._prev and not self._prev.isspace():
                self._emit(out, ch)  # "Great!" ends a sentence; only "![" after a space is an image
                return i + 1
            if i + 1 >= n and not final:
                return None
            if i + 1 < n and buf[i + 1] == "[":
                return i + 1  # an image: "![alt](url)" is spoken as its alt text
            self._emit(out, ch)
            return i + 1
        if ch == "[":
            return self._link_step(buf, i, final, out)
        if not self._prev or not (self._prev.isalnum() or self._prev in "/.@-"):
            rest = buf[i : i + 8].lower()
            if any(rest.startswith(start) for start in _URL_STARTS):
                return self._url_step(buf, i, final, out)
            if not final and i + len(rest) >= n and any(s.startswith(rest) for s in _URL_STARTS):
                return None  # could still become "https://"
        if _EMOJI.match(ch):
            return i + 1
        # Plain text: pass on the whole run up to the next special character at once.
        j = i + 1
        while j < n and buf[j] not in "*`#~_![|\n" and not _EMOJI.match(buf[j]):
            if buf[j - 1] in " \t\"'(" and buf[j] in "hHwW":
                break  # a possible URL start: look at it on the next round
            j += 1
        self._emit(out, buf[i:j])
        return j

    def _link_step(self, buf: str, i: int, final: bool, out: list[str]) -> int | None:
        close = buf.find("]", i + 1, i + 1 + _MAX_HOLD)
        newline = buf.find("\n", i + 1, close if close >= 0 else None)
        if close < 0 or newline >= 0:
            if not final and newline < 0 and len(buf) - i < _MAX_HOLD:
                return None
            return i + 1  # a stray "[": drop the bracket, keep the text
        text = buf[i + 1 : close]
        end = close + 1
        if end >= len(buf) and not final:
            return None  # "(url)" may follow
        if end < len(buf) and buf[end] == "(":
            paren = buf.find(")", end + 1, end + 1 + _MAX_HOLD)
            if paren < 0:
                if not final and len(buf) - end < _MAX_HOLD and "\n" not in buf[end:]:
                    return None
            else:
                end = paren + 1
        if _CITATION.fullmatch(text.strip()):
            return end
        inner = strip_markdown(text)
        if any(inner.lower().startswith(start) for start in _URL_STARTS):
            inner = _host(inner)
        self._emit(out, inner)
        return end

    def _url_step(self, buf: str, i: int, final: bool, out: list[str]) -> int | None:
        end = i
        while end < len(buf) and not buf[end].isspace() and buf[end] not in '<>"':
            end += 1
        if end >= len(buf) and not final and end - i < _MAX_HOLD:
            return None
        url = buf[i:end]
        trail = ""
        while url and url[-1] in _URL_TRAILING:
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break  # a parenthesis that belongs to the URL (wikipedia style)
            trail = url[-1] + trail
            url = url[:-1]
        self._emit(out, _host(url) + trail)
        return end


def strip_markdown(text: str) -> str:
    """Whole-text version of ``MarkdownStripper``."""
    stripper = MarkdownStripper()
    return (stripper.push(text) + stripper.flush()).strip()
