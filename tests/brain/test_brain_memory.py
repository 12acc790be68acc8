"""Conversation memory: a token budget for recent turns, a bounded rolling summary of older
ones, recollections from earlier sessions, and how an LLM receives them."""

from __future__ import annotations

from fake_openai import FakeOpenAIServer

from talkie.brain import LLMOptions, OpenAICompatibleBrain, Persona, Turn
from talkie.brain.memory import ConversationMemory, estimate_tokens, fold_turn

PERSONA = Persona(name="Ann", system_prompt="You are Ann.", greeting="Hi!")


def _talk(memory: ConversationMemory, n: int) -> None:
    for i in range(n):
        memory.add(Turn("user", f"Question number {i} about the garden and the roses?"))
        memory.add(Turn("assistant", f"Answer {i}: roses like sun. They need water weekly."))


def test_recent_turns_stay_within_budget_and_older_ones_are_summarised() -> None:
    memory = ConversationMemory(budget_tokens=120, summary_tokens=60)
    _talk(memory, 20)
    recent = sum(estimate_tokens(t.text) for t in memory.turns)
    assert recent <= 120 and memory.turns[-1].text.startswith("Answer 19")
    assert memory.summary and sum(estimate_tokens(x) for x in memory.summary) <= 60
    assert "Answer 0" not in " ".join(memory.summary)  # the oldest lines rolled out first
    context = memory.context()
    assert context[0].role == "context" and "Earlier in this conversation" in context[0].text
    assert context[1:] == memory.turns
    # a fold keeps only the first sentence of an answer
    assert fold_turn(Turn("assistant", "One. Two. Three.")) == "You said: One."


def test_a_short_conversation_has_no_summary_and_recall_comes_first() -> None:
    memory = ConversationMemory(recall="They said: my name is Bo.")
    memory.add(Turn("user", "Hi"))
    context = memory.context()
    assert [t.role for t in context] == ["context", "user"]
    assert "earlier conversations" in context[0].text and "Bo" in context[0].text
    assert ConversationMemory().context() == []


def test_the_llm_gets_memory_in_its_one_system_message(fake_openai: FakeOpenAIServer) -> None:
    brain = OpenAICompatibleBrain(
        options=LLMOptions(base_url=fake_openai.base_url, model="fake"), persona=PERSONA
    )
    memory = ConversationMemory(budget_tokens=40, recall="They said: I'm allergic to bees.")
    _talk(memory, 5)
    messages = brain.build_messages(memory.context(), "And the tulips?")
    assert [m["role"] for m in messages].count("system") == 1
    system = messages[0]["content"]
    assert system.startswith("You are Ann.") and "allergic to bees" in system
    assert "Earlier in this conversation" in system
    assert messages[-1] == {"role": "user", "content": "And the tulips?"}
    assert all(m["role"] in ("system", "user", "assistant") for m in messages)
