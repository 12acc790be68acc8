"""The acceptance test: a 20-page synthetic company handbook and 30 questions asked the way an
employee would ask them. The built-in brain must find the right passage for at least 80 % of
them, name its source, and say it does not know when the handbook has no answer."""

from __future__ import annotations

import pytest
from kb_handbook import CHARACTER, OFF_TOPIC, QUESTIONS, Question, handbook_pages

from talkie.brain import BuiltinBrain, Persona
from talkie.brain.kb import KnowledgeBase, Passage, SearchMode, spoken_source

PERSONA = Persona(
    name="Nora",
    system_prompt="You are Nora, the HR assistant of Northwind Analytics.",
    greeting="Hi, I'm Nora from HR. Ask me anything about the handbook.",
)


def is_right(passage: Passage, question: Question) -> bool:
    return (
        passage.document_id == question.document_id
        and passage.headings[-1] == question.section
        and question.fact in passage.text
    )


def accuracy(kb: KnowledgeBase, mode: SearchMode) -> float:
    hits = 0
    for question in QUESTIONS:
        found = kb.search(CHARACTER, question.text, k=1, mode=mode)
        hits += bool(found) and is_right(found[0], question)
    return hits / len(QUESTIONS)


def test_the_handbook_is_realistic() -> None:
    pages = handbook_pages()
    assert len(pages) == 20 and len(QUESTIONS) == 30
    assert {q.document_id for q in QUESTIONS} <= {p.document_id for p in pages}
    for question in QUESTIONS:
        page = next(p for p in pages if p.document_id == question.document_id)
        assert question.fact in page.text and question.section in page.text
    # Paraphrased, not copied: few questions contain their section's heading ("helpdesk", "VPN"
    # are what people say).
    copied = [q for q in QUESTIONS if q.section.lower() in q.text.lower()]
    assert len(copied) <= 3, copied


def test_builtin_brain_answers_the_handbook_questions(handbook_kb: KnowledgeBase) -> None:
    brain = BuiltinBrain(persona=PERSONA, retriever=handbook_kb.retriever(CHARACTER))
    right_passage = 0
    right_answer = 0
    for question in QUESTIONS:
        found = handbook_kb.search(CHARACTER, question.text, k=brain.options.passages)
        right_passage += bool(found) and is_right(found[0], question)
        answer = brain.answer([], question.text)
        if question.fact in answer:
            right_answer += 1
            # The answer names its source.
            title = next(p for p in handbook_pages() if p.document_id == question.document_id)
            assert answer.startswith(f"According to {spoken_source(title.source, found[0].title)}")
    passage_rate = right_passage / len(QUESTIONS)
    answer_rate = right_answer / len(QUESTIONS)
    print(
        f"\nhandbook: right passage {right_passage}/{len(QUESTIONS)} ({passage_rate:.0%}), "
        f"answer states the fact {right_answer}/{len(QUESTIONS)} ({answer_rate:.0%})"
    )
    assert passage_rate >= 0.8
    assert answer_rate >= 0.8


def test_hybrid_ranking_is_at_least_as_good_as_each_ranker(handbook_kb: KnowledgeBase) -> None:
    scores = {mode: accuracy(handbook_kb, mode) for mode in ("bm25", "embedding", "hybrid")}
    print("\nhandbook top-1 accuracy: " + ", ".join(f"{m} {s:.0%}" for m, s in scores.items()))
    assert scores["hybrid"] >= scores["bm25"]
    assert scores["hybrid"] >= scores["embedding"]


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_get_an_honest_dont_know(
    handbook_kb: KnowledgeBase, question: str
) -> None:
    brain = BuiltinBrain(persona=PERSONA, retriever=handbook_kb.retriever(CHARACTER))
    answer = brain.answer([], question)
    assert "don't know" in answer and "According to" not in answer


def test_answers_name_the_source_in_words(handbook_kb: KnowledgeBase) -> None:
    brain = BuiltinBrain(persona=PERSONA, retriever=handbook_kb.retriever(CHARACTER))
    answer = brain.answer([], "How many days of annual leave do I get?")
    assert answer.startswith("According to the leave policy, ")
    assert "28 days" in answer
    answer = brain.answer([], "What is the hotel limit in London?")
    assert answer.startswith("According to the business travel document, ")
    assert "250 euros" in answer
