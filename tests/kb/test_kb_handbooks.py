"""Retrieval on handbooks it was not built for: a short-page shop FAQ and long library policy
pages (``kb_handbooks.py``), asked paraphrased questions. Reports top-1 and top-3 per handbook;
``bench/brain.py`` records the same numbers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kb_handbook import Page, Question
from kb_handbooks import HANDBOOKS, SHOP, Handbook

from talkie.brain.kb import Embedder, KnowledgeBase, Passage


def is_right(passage: Passage, question: Question) -> bool:
    return (
        passage.document_id == question.document_id
        and bool(passage.headings)
        and passage.headings[-1] == question.section
        and question.fact in passage.text
    )


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(tmp_path_factory.mktemp("handbooks") / "kb.sqlite", embedder=embedder)
    for handbook in HANDBOOKS:
        for page in handbook.pages:
            base.put_document(handbook.character, page.document_id, source=page.source,
                              text=page.text)  # fmt: skip
    yield base
    base.close()


def test_the_handbooks_are_different_shapes() -> None:
    def average_section(pages: tuple[Page, ...]) -> float:
        sections = [s for page in pages for s in page.text.split("\n## ")[1:]]
        return sum(map(len, sections)) / len(sections)

    shop, library = HANDBOOKS
    assert average_section(shop.pages) < 150 and max(len(p.text) for p in shop.pages) < 600
    assert average_section(library.pages) > 300 and min(len(p.text) for p in library.pages) > 1000
    for handbook in HANDBOOKS:
        assert len(handbook.questions) >= 20
        for question in handbook.questions:
            page = next(p for p in handbook.pages if p.document_id == question.document_id)
            assert question.fact in page.text and f"## {question.section}" in page.text


# Measured: shop 24/24, library 21-22/24 (two questions whose wrong passage also mentions
# returning and late fees; one "at once" vs "at a time"). The goal is 95 %; these bars keep
# what was reached from slipping.
@pytest.mark.parametrize(
    ("handbook", "bar"),
    [(HANDBOOKS[0], 0.95), (HANDBOOKS[1], 0.85)],
    ids=lambda v: getattr(v, "character", ""),
)
def test_paraphrased_questions_find_their_section(
    indexed: KnowledgeBase, handbook: Handbook, bar: float
) -> None:
    top1 = top3 = 0
    misses = []
    for question in handbook.questions:
        found = indexed.search(handbook.character, question.text, k=3)
        top1 += bool(found) and is_right(found[0], question)
        top3 += any(is_right(p, question) for p in found)
        if not (found and is_right(found[0], question)):
            misses.append(question.text)
    n = len(handbook.questions)
    print(f"\n{handbook.name}: top-1 {top1}/{n}, top-3 {top3}/{n}; missed {misses}")
    assert top1 / n >= bar
    assert top3 / n >= 0.95


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("When do you open on Saturday?", "Saturday"),
        ("Where is the shop?", "Where to find us"),
        ("Who founded the shop?", "Our story"),
    ],
)
def test_a_short_passage_does_not_win_on_one_shared_word(
    indexed: KnowledgeBase, question: str, section: str
) -> None:
    # The "Holidays" line ("The shop is closed on public holidays ...") shares "shop"/"open"
    # words with many questions; the section that answers must still come first.
    best = indexed.search(SHOP.character, question, k=1)[0]
    assert best.headings[-1] == section, best.headings
