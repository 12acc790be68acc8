"""Split uploaded documents into passages ("chunks") for the knowledge base.

- Markdown is cut at its headings (ATX ``#`` .. ``######`` and setext underlines); each chunk keeps
  the path of headings above it ("Leave policy > Parental leave") as context, because a section's
  sentences rarely repeat their topic ("You get 20 weeks." is about parental leave only under its
  heading). Headings inside code fences and YAML front matter are ignored.
- Plain text is cut at blank lines; a short first line without final punctuation ("Opening
  hours") is taken as the heading of its paragraph, like ``talkie.brain.knowledge`` does.
- Consecutive small blocks of one section are packed together up to ``max_chars``; a section
  longer than that is split at paragraph, then sentence, then word boundaries, without overlap
  (each part keeps the heading path, so it stays understandable on its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from talkie.voice.text import split_clauses

__all__ = [
    "HEADING_SEPARATOR",
    "Chunk",
    "chunk_document",
    "chunk_markdown",
    "chunk_text",
    "markdown_title",
]

HEADING_SEPARATOR = " > "
# ~900 characters is ~200 word pieces: under MiniLM's 256-token window (text beyond it would be
# ignored by the embedding) and still a whole policy paragraph or two.
DEFAULT_MAX_CHARS = 900
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Chunk:
    """One passage of a document: its text (as written, markdown included), the headings above it
    (outermost first) and its position in the document (0, 1, ...)."""

    text: str
    headings: tuple[str, ...]
    position: int

    @property
    def heading(self) -> str:
        """The heading path as one line ("Leave policy > Parental leave"), or ``""``."""
        return HEADING_SEPARATOR.join(self.headings)


def chunk_document(text: str, *, kind: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Chunks of ``text`` read as ``kind`` (``"markdown"`` or ``"text"``)."""
    if kind == "markdown":
        return chunk_markdown(text, max_chars=max_chars)
    if kind == "text":
        return chunk_text(text, max_chars=max_chars)
    raise ValueError(f"unknown document kind {kind!r}")


def chunk_markdown(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Chunks of a Markdown document, one or more per section (see the module docstring)."""
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    stack: list[tuple[int, str]] = []  # (level, title) of the open headings
    body: list[str] = []

    def close_section() -> None:
        if any(line.strip() for line in body):
            sections.append((tuple(title for _, title in stack), list(body)))
        body.clear()

    lines = _drop_front_matter(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    fence = ""
    for index, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence:
            body.append(line)
            if (
                fence_match
                and fence_match.group(1)[0] == fence[0]
                and len(fence_match.group(1)) >= len(fence)
            ):
                fence = ""
            continue
        if fence_match:
            fence = fence_match.group(1)
            body.append(line)
            continue
        level, title = _heading(line, lines[index + 1] if index + 1 < len(lines) else "", body)
        if level:
            if title is None:
                # A setext heading: its title is the previous line, already in ``body``.
                title = body.pop().strip()
            close_section()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, _clean_heading(title)))
            continue
        body.append(line)
    close_section()
    chunks: list[Chunk] = []
    for headings, section in sections:
        for part in _pack(_blocks("\n".join(section)), max_chars):
            chunks.append(Chunk(part, tuple(h for h in headings if h), len(chunks)))
    return chunks


def chunk_text(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Chunks of a plain text: paragraphs, packed and split to the size bound."""
    chunks: list[Chunk] = []
    heading = ""
    pending: list[str] = []

    def flush() -> None:
        for part in _pack(pending, max_chars):
            chunks.append(Chunk(part, (heading,) if heading else (), len(chunks)))
        pending.clear()

    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    for paragraph in re.split(r"\n[ \t]*\n", normalized):
        lines = [line.rstrip() for line in paragraph.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) > 1 and _looks_like_heading(lines[0]):
            flush()
            heading = lines[0].strip().rstrip(":")
            lines = lines[1:]
        pending.append("\n".join(lines))
    flush()
    return chunks


def markdown_title(text: str) -> str | None:
    """The document's title: its first level-1 heading, if it starts with one (before any other
    heading)."""
    lines = _drop_front_matter(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    previous: list[str] = []
    fence = False
    for index, line in enumerate(lines[:400]):
        if _FENCE.match(line):
            fence = not fence
        if fence:
            continue
        level, title = _heading(line, lines[index + 1] if index + 1 < len(lines) else "", previous)
        if level:
            if level != 1:
                return None
            return _clean_heading(previous[-1] if title is None else title) or None
        previous = [line] if line.strip() else []
    return None


# -- internals -----------------------------------------------------------------------------


def _drop_front_matter(lines: list[str]) -> list[str]:
    """YAML front matter (``---`` ... ``---`` at the very top) is metadata, not content."""
    if lines and lines[0].strip() == "---":
        for end in range(1, min(len(lines), 200)):
            if lines[end].strip() in ("---", "..."):
                return lines[end + 1 :]
    return lines


def _heading(line: str, next_line: str, body: list[str]) -> tuple[int, str | None]:
    """(level, title) if ``line`` is a heading; title ``None`` means setext (the line before).

    Level 0 means "not a heading".
    """
    match = _ATX.match(line)
    if match and (match.group(2) or "").strip():
        return len(match.group(1)), match.group(2)
    setext = _SETEXT.match(line)
    # "Title\n=====" or "Title\n-----"; a "---" after a blank line is a rule, not a heading.
    # Only one-line paragraphs count: "---" under a wrapped paragraph is almost always a rule in
    # hand-written files.
    if (
        setext
        and body
        and body[-1].strip()
        and not _LIST_ITEM.match(body[-1])
        and (len(body) == 1 or not body[-2].strip())
    ):
        return (1 if setext.group(1)[0] == "=" else 2), None
    return 0, None


def _clean_heading(title: str) -> str:
    title = re.sub(r"[*_`]+", "", title).strip()
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # "[Leave](leave.md)" -> "Leave"
    return title.rstrip(":").strip()


def _looks_like_heading(line: str) -> bool:
    first = line.strip().rstrip(":")
    return (
        bool(first)
        and len(first.split()) <= 6
        and ":" not in first
        and not re.search(r"[.!?,;]\s*$", first)
        and not _LIST_ITEM.match(line)
    )


def _blocks(body: str) -> list[str]:
    """Paragraphs of a section body (blank-line separated), code fences kept whole."""
    blocks: list[str] = []
    current: list[str] = []
    fence = ""
    for line in body.split("\n"):
        fence_match = _FENCE.match(line)
        if fence:
            current.append(line)
            if fence_match and fence_match.group(1)[0] == fence[0]:
                fence = ""
            continue
        if fence_match:
            fence = fence_match.group(1)
        if not line.strip() and not fence:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append("\n".join(current))
    return [block for block in blocks if _WORD.search(block)]


def _pack(blocks: list[str], max_chars: int) -> Iterator[str]:
    """Greedily join consecutive blocks (blank line between) while within ``max_chars``;
    oversized blocks are split first (lines, then sentences, then words)."""
    current = ""
    for block in blocks:
        for piece in _split_block(block, max_chars):
            if current and len(current) + 2 + len(piece) > max_chars:
                yield current
                current = ""
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        yield current


def _split_block(block: str, max_chars: int) -> Iterator[str]:
    if len(block) <= max_chars:
        yield block
        return
    lines = block.split("\n")
    if len(lines) > 1:
        # A list or a hard-wrapped paragraph: items (lines) are the natural units.
        units = _merge_wrapped(lines)
        if len(units) > 1:
            yield from _join_units(units, max_chars, "\n")
            return
    sentences = split_clauses(block, min_comma_words=10**6)
    if len(sentences) > 1:
        yield from _join_units(sentences, max_chars, " ")
        return
    yield from _split_words(block, max_chars)


def _merge_wrapped(lines: list[str]) -> list[str]:
    """List items are units; continuation lines (hard wrap) stay with the line before."""
    units: list[str] = []
    for line in lines:
        if units and not _LIST_ITEM.match(line) and not units[-1].rstrip().endswith((".", ":")):
            units[-1] = f"{units[-1]} {line.strip()}"
        else:
            units.append(line)
    return units


def _join_units(units: list[str], max_chars: int, glue: str) -> Iterator[str]:
    current = ""
    for unit in units:
        for piece in (unit,) if len(unit) <= max_chars else _split_block(unit, max_chars):
            if current and len(current) + len(glue) + len(piece) > max_chars:
                yield current
                current = ""
            current = f"{current}{glue}{piece}" if current else piece
    if current:
        yield current


def _split_words(text: str, max_chars: int) -> Iterator[str]:
    """Last resort for a run-on "sentence" longer than a chunk: cut between words."""
    current = ""
    for word in text.split():
        while len(word) > max_chars:  # a single giant token (a URL, base64): hard cut
            if current:
                yield current
                current = ""
            yield word[:max_chars]
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            yield current
            current = ""
        current = f"{current} {word}" if current else word
    if current:
        yield current
