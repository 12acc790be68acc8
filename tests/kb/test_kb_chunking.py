"""Chunking: Markdown by headings with the heading path, plain text by paragraphs, bounded size
with overlap-free splitting at sentence boundaries."""

from __future__ import annotations

import re

import pytest

from talkie.brain.kb import chunk_document, chunk_markdown, chunk_text
from talkie.brain.kb.chunking import markdown_title


def test_markdown_sections_keep_their_heading_path() -> None:
    text = """# Leave policy

Intro to leave.

## Annual leave

You get 28 days.

## Parental leave

### Primary caregiver

You get 20 weeks at full pay.

### Second parent

You get 6 weeks.

# Expenses

Claims within 60 days.
"""
    chunks = chunk_markdown(text)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Leave policy", "Intro to leave."),
        ("Leave policy > Annual leave", "You get 28 days."),
        ("Leave policy > Parental leave > Primary caregiver", "You get 20 weeks at full pay."),
        ("Leave policy > Parental leave > Second parent", "You get 6 weeks."),
        ("Expenses", "Claims within 60 days."),
    ]
    assert [c.position for c in chunks] == [0, 1, 2, 3, 4]
    assert chunks[2].headings == ("Leave policy", "Parental leave", "Primary caregiver")


def test_markdown_edge_cases() -> None:
    text = """---
title: front matter is metadata
---
Handbook
========

Welcome text.

Travel **rules**
----------------

```python
# not a heading
print("code stays in its section")
```

A paragraph.

---

After a rule, still the same section.

####### seven hashes is text
#no-space is text too
## [Linked heading](travel.md) ##

Linked body.
"""
    chunks = chunk_markdown(text)
    assert [c.heading for c in chunks] == [
        "Handbook",
        "Handbook > Travel rules",
        "Handbook > Linked heading",
    ]
    travel = chunks[1].text
    assert "# not a heading" in travel and "After a rule" in travel
    assert "seven hashes is text" in travel and "#no-space is text too" in travel
    assert "front matter" not in " ".join(c.text for c in chunks)
    assert markdown_title(text) == "Handbook"
    assert markdown_title("## Only a subsection\n\n# Later title") is None
    assert markdown_title("no heading at all") is None


def test_long_sections_split_at_sentence_boundaries_without_overlap() -> None:
    sentences = [
        f"Rule number {i} says that claims of type {i} are paid within {i + 10} days."
        for i in range(60)
    ]
    text = "# Expenses\n\n## Rules\n\n" + " ".join(sentences) + "\n"
    chunks = chunk_markdown(text, max_chars=300)
    assert len(chunks) > 5
    for chunk in chunks:
        assert len(chunk.text) <= 300
        assert chunk.headings == ("Expenses", "Rules")
        # Every chunk starts and ends on a sentence boundary.
        assert chunk.text.startswith("Rule number") and chunk.text.endswith("days.")
    # No overlap and nothing lost: the chunks are the sentences, in order, once each.
    rejoined = [s for chunk in chunks for s in re.findall(r"Rule number \d+[^.]*\.", chunk.text)]
    assert rejoined == sentences


def test_small_blocks_are_packed_and_lists_split_by_item() -> None:
    items = "\n".join(f"- Item {i}: bring {i} badges to the office reception." for i in range(40))
    text = f"## Checklist\n\nFirst paragraph.\n\nSecond paragraph.\n\n{items}\n"
    chunks = chunk_markdown(text, max_chars=400)
    assert chunks[0].text.startswith("First paragraph.\n\nSecond paragraph.")
    for chunk in chunks:
        assert len(chunk.text) <= 400
        for line in chunk.text.split("\n"):
            assert not line or line.startswith(("- Item", "First", "Second"))
    assert sum(chunk.text.count("- Item") for chunk in chunks) == 40


def test_giant_words_are_cut_hard() -> None:
    chunks = chunk_markdown("# Data\n\n" + "x" * 2500, max_chars=1000)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


def test_plain_text_paragraphs_with_heading_lines() -> None:
    text = (
        "Opening hours\nWe are open from 9 to 5.\n\n"
        "We are closed on Sundays.\n\n"
        "Returns\nBring it back within 30 days.\r\n"
    )
    chunks = chunk_text(text)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Opening hours", "We are open from 9 to 5.\n\nWe are closed on Sundays."),
        ("Returns", "Bring it back within 30 days."),
    ]
    assert chunk_document(text, kind="text") == chunks
    with pytest.raises(ValueError):
        chunk_document(text, kind="pdf")


def test_headings_without_body_make_no_chunk() -> None:
    assert chunk_markdown("# Title\n\n## Empty\n\n## Also empty\n") == []
    assert chunk_text("   \n\n  ") == []
