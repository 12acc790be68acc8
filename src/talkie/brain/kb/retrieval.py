"""What the brains see of the knowledge base: passages, the retriever protocol and formatting.

A brain is bound to one character, so it gets a ``Retriever`` (``search(query, k)``) rather than
the whole ``KnowledgeBase``; ``KnowledgeBase.retriever(character_id)`` makes one. Both brains
name the source of what they say: the built-in brain speaks it ("According to the employee
handbook, ..."), the LLM brain receives passages labelled with their sources and is asked to
mention them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol, runtime_checkable

from talkie.brain.kb.chunking import HEADING_SEPARATOR
from talkie.brain.markdown import strip_markdown

__all__ = ["PASSAGE_RULES", "Passage", "Retriever", "format_passages", "spoken_source"]

# Budget of the context message for an LLM: a CPU-served model spends seconds on a long prompt.
DEFAULT_CONTEXT_CHARS = 3000


@dataclass(frozen=True)
class Passage:
    """One search result.

    ``score`` orders results (higher is better; its scale depends on the ranker). ``similarity``
    is the cosine between question and passage embeddings (``None`` without an embedding model);
    ``coverage`` is the IDF-weighted share of the question's content words found in the passage
    (0..1). The two say how well the passage matches in absolute terms, which is what a brain
    needs to decide between answering and "I don't know". ``title`` is the document's title (its
    first Markdown heading), if any.
    """

    document_id: str
    source: str
    headings: tuple[str, ...]
    text: str
    score: float
    similarity: float | None = None
    coverage: float = 0.0
    position: int = 0
    title: str | None = None

    @property
    def heading(self) -> str:
        """The heading path ("Leave policy > Parental leave"), or ``""``."""
        return HEADING_SEPARATOR.join(self.headings)


@runtime_checkable
class Retriever(Protocol):
    """Searches one character's knowledge. Blocking (SQLite, an embedding model): async callers
    run it in a worker thread. Must be safe to call from several threads."""

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The best ``k`` passages for ``query``, best first (may be fewer or empty)."""
        ...


_SOURCE_SUFFIX = re.compile(r"\.(?:md|markdown|mdown|mkd|txt|text)$", re.IGNORECASE)
# Names that already say what kind of document they are ("the leave policy"); others get
# "document" appended ("the business travel document"), which reads better than a bare topic.
_DOCUMENT_NOUN_TEXT = """policy policies handbook guide guidelines manual faq faqs notes document
    documents page rules terms conditions wiki book brochure sheet list menu catalogue catalog
    agreement contract report readme docs documentation instructions overview summary article"""
_DOCUMENT_NOUNS = frozenset(_DOCUMENT_NOUN_TEXT.split())


def spoken_source(source: str, title: str | None = None) -> str:
    """How to say where a passage comes from, from the document's title if it has one, else its
    file name: "Leave policy" -> "the leave policy", "business-travel.md" -> "the business
    travel document", "IT support" -> "the IT support document"."""
    name = " ".join((title or "").split())
    if not name:
        name = PurePath(source.replace("\\", "/")).name or source
        name = " ".join(re.sub(r"[_\-]+", " ", _SOURCE_SUFFIX.sub("", name)).split())
    if not name:
        return "my notes"
    words = name.split()
    if words[0].lower() == "the":
        return name
    # Sentence case ("Leave policy"): the capital is only the title's first letter. Names,
    # acronyms and Title Case ("IT support", "Northwind Handbook") keep theirs.
    if (
        words[0][:1].isupper()
        and words[0][1:].islower()
        and not any(w[:1].isupper() for w in words[1:])
    ):
        words[0] = words[0].lower()
    if words[-1].lower().strip(".,:;") not in _DOCUMENT_NOUNS:
        words.append("document")
    return "the " + " ".join(words)


#: What an LLM is told about the passages; in the system prompt when they come ``compact``.
PASSAGE_RULES = (
    "Passages from the knowledge base that may help with the user's question. Use them only "
    "if they are relevant; when you use one, say where it comes from (for example "
    '"according to the employee handbook"). If they do not contain the answer, say you '
    "do not know rather than guess."
)


def format_passages(
    passages: Sequence[Passage], *, max_chars: int = DEFAULT_CONTEXT_CHARS, compact: bool = False
) -> str:
    """Passages as context for an LLM: numbered, each with its source and section, within
    ``max_chars``. Returns ``""`` when there is nothing to say. ``compact`` leaves out the
    rules (``PASSAGE_RULES``, then given once in the system prompt) and the file names: on a
    CPU every token of a per-question prompt is time before the first word."""
    if not passages:
        return ""
    lines = ["Knowledge base passages:" if compact else PASSAGE_RULES]
    budget = max_chars - len(lines[0])
    for number, passage in enumerate(passages, 1):
        where = spoken_source(passage.source, passage.title)
        if compact:
            section = f", {passage.headings[-1]}" if passage.headings else ""
            label = f"[{number}] {where}{section}"
        else:
            label = f"[{number}] Source: {passage.source} ({where})"
            if passage.heading:
                label += f", section: {passage.heading}"
        body = strip_markdown(passage.text) if compact else passage.text.strip()
        # Each entry costs its label, a newline, the body and the blank line before it.
        room = budget - len(label) - 3
        if room < 80:
            break
        if len(body) > room:
            body = body[: room - 4].rsplit(" ", 1)[0] + " ..."
        entry = f"{label}\n{body}"
        lines.append(entry)
        budget -= len(entry) + 2
    return "\n\n".join(lines) if len(lines) > 1 else ""
