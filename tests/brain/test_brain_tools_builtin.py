"""The built-in brain with tools: it picks a tool from the user's words, asks for a missing
argument, runs the tool through the executor and says the outcome; chit-chat runs nothing; the
guardrails still stand in front of it."""

from __future__ import annotations

from typing import Any

import pytest
from brain_tools_fakes import ORDER_STATUS, SHOW_PRODUCT, TOOLS, FakeExecutor

from talkie.brain import BuiltinBrain, Persona, ToolResult, Turn, load_brain
from talkie.brain.builtin_tools import UI_DONE, UI_TIMEOUT, spoken_result
from talkie.brain.guardrails import GuardedBrain, GuardrailPolicy

pytestmark = pytest.mark.asyncio

PERSONA = Persona(
    name="Ada", system_prompt="You are Ada of Acme Outdoor.", greeting="Hi, I'm Ada!",
    knowledge="Acme Outdoor sells hiking gear. We are open every day from 9 am to 6 pm.",
)  # fmt: skip


def brain_with(executor: FakeExecutor) -> BuiltinBrain:
    return BuiltinBrain(persona=PERSONA, tools=TOOLS, executor=executor)


async def say(brain: Any, text: str, history: list[Turn] | None = None) -> str:
    return "".join([d async for d in brain.reply(history or [], text)]).strip()


async def test_a_ui_request_runs_the_tool_and_confirms() -> None:
    executor = FakeExecutor()
    brain = brain_with(executor)
    assert await say(brain, "Show me the trail runner") == UI_DONE
    assert executor.calls == [("show_product", {"product": "trail runner"})]


async def test_a_webhook_answer_is_read_out() -> None:
    executor = FakeExecutor(
        {"order_status": lambda args: ToolResult(
            ok=True, content={"message": f"Order {args['order_id']} left our warehouse today."}
        )}
    )  # fmt: skip
    brain = brain_with(executor)
    answer = await say(brain, "Has my order A-5521 shipped?")
    assert answer == "Let me check. Order A-5521 left our warehouse today."
    assert executor.calls == [("order_status", {"order_id": "A-5521"})]
    # Without a message field: a compact "key: value" rendering.
    executor.results["order_status"] = ToolResult(
        ok=True, content={"status": "shipped", "eta_days": 2, "express": False, "items": [1, 2]}
    )
    assert await say(brain, "Track my package 7781 please") == (
        "Let me check. Here's what I found. Status: shipped, eta days: 2, express: no, items: 1, 2."
    )


async def test_a_failed_webhook_is_said_plainly() -> None:
    executor = FakeExecutor(
        {"order_status": ToolResult(ok=False, reason="timeout", error="no answer in 5 s")}
    )
    answer = await say(brain_with(executor), "Where is my order 1234?")
    assert answer == "Let me check. That service is taking too long to answer."
    refused = ToolResult(ok=False, reason="refused", error="127.0.0.1, a loopback address")
    assert spoken_result(ORDER_STATUS, refused) == "I couldn't reach that service."
    assert spoken_result(SHOW_PRODUCT, ToolResult(ok=False, reason="timeout")) == UI_TIMEOUT


async def test_a_missing_argument_is_asked_for_then_used() -> None:
    executor = FakeExecutor()
    brain = brain_with(executor)
    assert await say(brain, "Where is my order?") == "I can do that. What's the order id?"
    assert executor.calls == []
    answer = await say(brain, "It's A-5521.")
    assert answer == "Let me check. Here's what I found. Done: order_status."
    assert executor.calls == [("order_status", {"order_id": "A-5521"})]


async def test_an_unrelated_answer_drops_the_question() -> None:
    executor = FakeExecutor()
    brain = brain_with(executor)
    await say(brain, "Where is my order?")
    answer = await say(brain, "When are you open?")
    assert "9 am to 6 pm" in answer
    assert executor.calls == []
    # and the question is forgotten: a later short answer is not taken for the order id
    await say(brain, "ABC-123")
    assert executor.calls == []


async def test_chit_chat_runs_no_tool() -> None:
    executor = FakeExecutor()
    brain = brain_with(executor)
    for text in ("Hello!", "How are you?", "What can you do?", "Thanks, bye"):
        assert await say(brain, text)
    assert executor.calls == []
    # Without an executor the tools are not used at all.
    plain = load_brain("builtin", persona=PERSONA, tools=TOOLS)
    assert isinstance(plain, BuiltinBrain) and plain.tool_use is None
    assert "trail runner" not in (await say(plain, "Show me the trail runner")).lower()


async def test_arguments_the_schema_refuses_are_not_run() -> None:
    executor = FakeExecutor()
    brain = brain_with(executor)
    # order_id needs at least 3 characters
    assert "didn't quite get" in await say(brain, "Has my order 7 shipped?")
    assert executor.calls == []
    assert executor.rejected == [("order_status", "arguments")]


async def test_guardrails_stand_in_front_of_the_tools() -> None:
    executor = FakeExecutor()
    policy = GuardrailPolicy(blocked_words=("boots",), refusal="Let's talk about something else.")
    guarded = GuardedBrain(brain_with(executor), policy)
    assert await say(guarded, "Show me a picture of the hiking boots") == (
        "Let's talk about something else."
    )
    assert executor.calls == []
    assert await say(guarded, "Show me the trail runner") == UI_DONE
    assert executor.calls == [("show_product", {"product": "trail runner"})]
