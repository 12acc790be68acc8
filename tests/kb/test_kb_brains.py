"""Both brains with a knowledge-base retriever: the built-in brain speaks the best passage and
names its source; the LLM brain receives the passages, with sources, in its system message."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from talkie.brain import (
    BuiltinBrain,
    LLMOptions,
    OpenAICompatibleBrain,
    Passage,
    Persona,
    Retriever,
    load_brain,
)
from talkie.brain.kb import Embedder, KnowledgeBase, format_passages, spoken_source

PERSONA = Persona(
    name="Nora",
    system_prompt="You are Nora, the HR assistant.",
    greeting="Hi, I'm Nora.",
    knowledge="Opening hours\nThe HR office is open Monday to Friday from 9 am to 5 pm.",
)
HOTELS = Passage(
    document_id="travel",
    source="travel-policy.md",
    headings=("Travel policy", "Hotels"),
    text="The hotel limit is **180 euros** per night. In London the limit is 250 euros.",
    score=0.62,
    similarity=0.58,
    coverage=0.4,
    title="Travel policy",
)


class FixedRetriever:
    """Returns the same passages for every question and records the calls."""

    def __init__(self, *passages: Passage, error: Exception | None = None) -> None:
        self.passages = list(passages)
        self.error = error
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, k: int = 3) -> list[Passage]:
        self.calls.append((query, k))
        if self.error is not None:
            raise self.error
        return self.passages[:k]


def test_builtin_speaks_the_passage_and_names_its_source() -> None:
    retriever = FixedRetriever(HOTELS)
    assert isinstance(retriever, Retriever)
    brain = BuiltinBrain(persona=PERSONA, retriever=retriever)
    answer = brain.answer([], "How much can I spend on a hotel?")
    assert answer == (
        "According to the travel policy, the hotel limit is 180 euros per night. "
        "In London the limit is 250 euros."
    )
    assert retriever.calls == [("How much can I spend on a hotel?", 3)]


def test_builtin_prefers_the_sentence_that_matches_the_words() -> None:
    passage = Passage(
        document_id="travel",
        source="travel.md",
        headings=("Travel",),
        text="Book all trips through TravelDesk. Flights under 6 hours are economy class. "
        "In London the hotel limit is 250 euros per night. Trains over 3 hours are first class.",
        score=0.5,
        similarity=0.5,
    )
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(passage))
    answer = brain.answer([], "What is the hotel limit in London?")
    assert answer == (
        "According to the travel document, in London the hotel limit is 250 euros per night."
    )


def test_builtin_says_it_does_not_know_below_the_threshold() -> None:
    weak = Passage("travel", "travel.md", ("Hotels",), "The hotel limit is 180 euros.", 0.2, 0.2)
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(weak))
    assert "don't know" in brain.answer([], "Who won the world cup?")
    assert "don't know" in BuiltinBrain(retriever=FixedRetriever()).answer([], "Who won it?")


def test_builtin_keyword_only_passages_need_word_coverage() -> None:
    keyword_only = Passage("t", "travel.md", (), "The hotel limit is 180 euros.", 0.9, None, 0.4)
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(keyword_only))
    assert "don't know" in brain.answer([], "What is the hotel limit for trains?")
    covered = Passage("t", "travel.md", (), "The hotel limit is 180 euros.", 0.9, None, 0.8)
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(covered))
    assert brain.answer([], "What is the hotel limit?") == (
        "According to the travel document, the hotel limit is 180 euros."
    )


def test_builtin_persona_knowledge_wins_when_it_matches_better() -> None:
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(HOTELS))
    answer = brain.answer([], "When is the HR office open?")
    assert "9 am to 5 pm" in answer and "According to" not in answer
    # Small talk never consults the knowledge base.
    retriever = FixedRetriever(HOTELS)
    assert "Hello" in BuiltinBrain(persona=PERSONA, retriever=retriever).answer([], "Hello!")
    assert retriever.calls == []


def test_builtin_survives_a_broken_retriever(caplog: pytest.LogCaptureFixture) -> None:
    brain = BuiltinBrain(persona=PERSONA, retriever=FixedRetriever(error=RuntimeError("db gone")))
    with caplog.at_level(logging.WARNING):
        answer = brain.answer([], "How much can I spend on a hotel?")
    assert "don't know" in answer
    assert "knowledge-base search failed (RuntimeError)" in caplog.text


@pytest.mark.asyncio
async def test_builtin_reply_streams_from_a_real_knowledge_base(
    tmp_path: Path, embedder: Embedder
) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder) as kb:
        kb.put_document(
            "nora",
            "leave",
            source="leave-policy.md",
            text="# Leave policy\n\n## Parental leave\n\nThe primary caregiver receives 20 weeks "
            "of leave at full pay.\n",
        )
        brain = load_brain("builtin", persona=PERSONA, retriever=kb.retriever("nora"))
        chunks = [c async for c in brain.reply([], "How long can I stay home with a newborn?")]
    assert "".join(chunks) == (
        "According to the leave policy, the primary caregiver receives 20 weeks of leave at "
        "full pay."
    )
    assert len(chunks) > 5  # streamed word by word


def _capture_llm() -> tuple[httpx.MockTransport, list[dict[str, object]]]:
    requests: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(json.loads(request.content))
        body = 'data: {"choices": [{"delta": {"content": "Sure."}}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handler), requests


@pytest.mark.asyncio
async def test_llm_gets_the_passages_with_their_sources() -> None:
    transport, requests = _capture_llm()
    weak = Passage("canteen", "canteen.md", ("Canteen",), "Lunch costs 4.50 euros.", 0.1, 0.1)
    brain = OpenAICompatibleBrain(
        options=LLMOptions(base_url="http://llm.test/v1"),
        persona=PERSONA,
        transport=transport,
        retriever=FixedRetriever(HOTELS, weak),
    )
    reply = [d async for d in brain.reply([], "How much can I spend on a hotel?")]
    await brain.aclose()
    assert "".join(reply) == "Sure."
    messages = requests[0]["messages"]
    assert isinstance(messages, list)
    assert [m["role"] for m in messages] == ["system", "user"]  # still one system message
    system = messages[0]["content"]
    assert system.startswith(brain.system_prompt)
    assert "Source: travel-policy.md (the travel policy), section: Travel policy > Hotels" in system
    assert "180 euros" in system
    assert "Lunch costs" not in system  # below min_passage_score
    assert brain.last_passages == [HOTELS]


@pytest.mark.asyncio
async def test_llm_without_passages_or_with_a_broken_retriever() -> None:
    transport, requests = _capture_llm()
    for retriever in (None, FixedRetriever(), FixedRetriever(error=OSError("disk"))):
        brain = OpenAICompatibleBrain(
            options=LLMOptions(base_url="http://llm.test/v1"),
            persona=PERSONA,
            transport=transport,
            retriever=retriever,
        )
        assert "".join([d async for d in brain.reply([], "Hi there, anything new?")]) == "Sure."
        await brain.aclose()
        assert requests[-1]["messages"][0]["content"] == brain.system_prompt  # type: ignore[index]


def test_format_passages_budget_and_labels() -> None:
    assert format_passages([]) == ""
    long = Passage("big", "big.txt", (), "word " * 2000, 0.9, 0.9)
    text = format_passages([HOTELS, long], max_chars=800)
    assert len(text) <= 800
    assert "[1] Source: travel-policy.md (the travel policy), section: Travel policy > Hotels" in (
        text
    )
    assert "[2] Source: big.txt (the big document)" in text and text.endswith("...")


@pytest.mark.parametrize(
    ("source", "title", "spoken"),
    [
        ("leave.md", "Leave policy", "the leave policy"),
        ("business-travel.md", None, "the business travel document"),
        ("x.md", "IT support", "the IT support document"),
        ("employee_handbook.txt", None, "the employee handbook"),
        ("Northwind Handbook.md", None, "the Northwind Handbook"),
        ("docs/faq.MD", None, "the faq"),
        ("The Staff Guide.txt", None, "The Staff Guide"),
        ("---.md", None, "my notes"),
    ],
)
def test_spoken_source(source: str, title: str | None, spoken: str) -> None:
    assert spoken_source(source, title) == spoken
