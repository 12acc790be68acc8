"""The OpenAI-compatible brain's tool loop against the scripted fake server: tool_calls deltas,
the follow-up request's messages, parallel calls, bad calls, the round cap and barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from brain_tools_fakes import ORDER_STATUS, SHOW_PRODUCT, TOOLS, FakeExecutor
from fake_openai import FakeOpenAIServer, Stream, ToolCallScript

from talkie.brain import LLMOptions, OpenAICompatibleBrain, Persona, ToolResult, load_brain
from talkie.brain.openai_tools import GIVE_UP, ToolCallCollector

pytestmark = pytest.mark.asyncio

PERSONA = Persona(name="Ada", system_prompt="You are Ada of Acme Outdoor.", greeting="Hi!")


def tool_brain(
    server: FakeOpenAIServer, executor: FakeExecutor | None, **options: Any
) -> OpenAICompatibleBrain:
    values: dict[str, Any] = {"base_url": server.base_url, "model": "fake"}
    values.update(options)
    return OpenAICompatibleBrain(
        options=LLMOptions(**values), persona=PERSONA, tools=TOOLS, executor=executor
    )


async def test_a_tool_call_round_trip(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream(
            ["Let me look ", "that up."],
            tool_calls=[ToolCallScript("order_status", {"order_id": "A-5521"}, id="call_a")],
        ),
        Stream(["It ", "shipped ", "yesterday."]),
    )
    result = ToolResult(ok=True, content={"status": "shipped", "when": "yesterday"}, status=200)
    executor = FakeExecutor({"order_status": result})
    brain = tool_brain(fake_openai, executor)
    heard: list[str] = []
    executor.on_call = lambda: heard.append("<tool>")
    async for delta in brain.reply([], "Where is my order A-5521?"):
        heard.append(delta)
    # The text before the call was streamed before the tool ran; the follow-up after it.
    assert "".join(heard) == "Let me look that up.<tool>It shipped yesterday."
    assert executor.calls == [("order_status", {"order_id": "A-5521"})]

    first, follow_up = fake_openai.requests
    assert first.body["tools"] == [t.to_openai() for t in TOOLS]
    messages = follow_up.messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[:2] == first.messages
    assert messages[2] == {
        "role": "assistant",
        "content": "Let me look that up.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "order_status", "arguments": '{"order_id": "A-5521"}'},
            }
        ],
    }
    assert messages[3]["tool_call_id"] == "call_a"
    assert json.loads(messages[3]["content"]) == {
        "ok": True,
        "result": {"status": "shipped", "when": "yesterday"},
    }
    assert follow_up.body["tools"], "the model may call tools again in its follow-up"
    stats = brain.last_stats
    assert stats is not None and stats.first_token_s is not None
    assert stats.chars == len("Let me look that up.It shipped yesterday.")
    await brain.aclose()


async def test_several_calls_run_concurrently(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream(
            [],
            tool_calls=[
                ToolCallScript("show_product", {"product": "Trail Runner"}, id="call_ui"),
                ToolCallScript("order_status", {"order_id": "B-77"}, id="call_hook"),
            ],
        ),
        Stream(["Here it is, and your order is on its way."]),
    )
    executor = FakeExecutor(delay=0.4)
    brain = tool_brain(fake_openai, executor)
    text = "".join([d async for d in brain.reply([], "Show me the Trail Runner; and order B-77?")])
    assert text == "Here it is, and your order is on its way."
    assert executor.max_active == 2, "independent calls of one response run together"
    first, follow_up = fake_openai.requests
    assert follow_up.at - first.at < 0.4 + 0.3  # not 2 x 0.4 s
    tools = follow_up.tool_messages()
    assert [m["tool_call_id"] for m in tools] == ["call_ui", "call_hook"]
    assert [json.loads(m["content"])["result"] for m in tools] == [
        {"done": "show_product"},
        {"done": "order_status"},
    ]
    assert [c["id"] for c in follow_up.messages[2]["tool_calls"]] == ["call_ui", "call_hook"]
    assert follow_up.messages[2]["content"] == ""
    await brain.aclose()


async def test_bad_calls_go_back_to_the_model_as_errors(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream(
            [],
            tool_calls=[
                ToolCallScript("order_status", {"order_id": 5521}, id="wrong_type"),
                ToolCallScript("order_status", '{"order_id": "A-', id="broken_json"),
                ToolCallScript("launch_rockets", {}, id="unknown"),
                ToolCallScript("show_product", {"product": "Boots"}, id="fine"),
            ],
        ),
        Stream(["Sorry, which order did you mean?"]),
    )
    executor = FakeExecutor()
    brain = tool_brain(fake_openai, executor)
    text = "".join([d async for d in brain.reply([], "Where's my order?")])
    assert text == "Sorry, which order did you mean?"
    assert executor.calls == [("show_product", {"product": "Boots"})]  # only the valid one ran
    assert executor.rejected == [
        ("order_status", "arguments"),
        ("order_status", "arguments"),
        ("launch_rockets", "unknown_tool"),
    ]
    tool_messages = fake_openai.requests[1].tool_messages()
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in tool_messages}
    assert results["wrong_type"]["ok"] is False and "order_id" in results["wrong_type"]["error"]
    assert "must be a string" in results["wrong_type"]["error"]
    assert "not valid JSON" in results["broken_json"]["error"]
    assert "no tool named 'launch_rockets'" in results["unknown"]["error"]
    assert results["fine"] == {"ok": True, "result": {"done": "show_product"}}
    await brain.aclose()


async def test_whole_calls_without_index_as_ollama_sends_them(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.script(
        Stream(
            [],
            tool_calls=[
                ToolCallScript("show_product", {"product": "Jacket"}, indexed=False),
                ToolCallScript("order_status", {"order_id": "C-12"}, indexed=False),
            ],
        ),
        Stream(["Done."]),
    )
    executor = FakeExecutor()
    brain = tool_brain(fake_openai, executor)
    assert "".join([d async for d in brain.reply([], "Jacket and order C-12")]) == "Done."
    assert executor.calls == [
        ("show_product", {"product": "Jacket"}),
        ("order_status", {"order_id": "C-12"}),
    ]
    ids = [m["tool_call_id"] for m in fake_openai.requests[1].tool_messages()]
    assert ids == ["call_fake_0", "call_fake_1"]
    await brain.aclose()


async def test_collector_joins_fragments_and_objects() -> None:
    collector = ToolCallCollector()
    collector.push([{"index": 0, "id": "a", "function": {"name": "show_product", "arguments": ""}}])
    collector.push([{"index": 0, "function": {"arguments": '{"prod'}}])
    collector.push([{"index": 1, "id": "b", "function": {"name": "order_status"}}])
    collector.push([{"index": 0, "function": {"arguments": 'uct": "X"}'}}])
    collector.push([{"index": 1, "function": {"arguments": {"order_id": "Z-1"}}}])
    collector.push(["junk", {"function": {"arguments": ""}}])  # tolerated
    calls = collector.calls()
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("a", "show_product", {"product": "X"}),
        ("b", "order_status", {"order_id": "Z-1"}),
    ]


async def test_tool_rounds_are_capped(fake_openai: FakeOpenAIServer) -> None:
    again = Stream([], tool_calls=[ToolCallScript("order_status", {"order_id": "D-1"})])
    fake_openai.script(again, again, again)
    executor = FakeExecutor()
    brain = tool_brain(fake_openai, executor, max_tool_rounds=2)
    text = "".join([d async for d in brain.reply([], "Where is order D-1?")])
    # Two rounds ran; the third request offered no tools, and its tool calls were ignored.
    assert len(executor.calls) == 2
    assert len(fake_openai.requests) == 3
    assert "tools" in fake_openai.requests[1].body
    assert "tools" not in fake_openai.requests[2].body
    assert len(fake_openai.requests[2].tool_messages()) == 2
    assert text == GIVE_UP  # it never said anything: say something rather than nothing
    await brain.aclose()


async def test_barge_in_during_a_tool_cancels_it(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream(["One moment."], tool_calls=[ToolCallScript("order_status", {"order_id": "E-5"})]),
        Stream(["Too late."]),
    )
    executor = FakeExecutor(delay=5.0)
    brain = tool_brain(fake_openai, executor)

    async def consume() -> None:
        async with contextlib.aclosing(brain.reply([], "Order E-5?")) as deltas:  # type: ignore[type-var]
            async for _ in deltas:
                pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(executor.started.wait(), 5)
    cancelled_at = time.monotonic()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 0.2
    assert executor.cancelled == 1
    await asyncio.sleep(0.2)
    assert len(fake_openai.requests) == 1, "no follow-up after barge-in"
    await brain.aclose()


async def test_barge_in_during_the_follow_up_closes_its_stream(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.script(
        Stream([], tool_calls=[ToolCallScript("show_product", {"product": "Tent"})]),
        Stream(["The ", "tent ", "is ", "great."], delay_s=0.05, hang_after=2),
    )
    brain = tool_brain(fake_openai, FakeExecutor())
    got: list[str] = []
    async with contextlib.aclosing(brain.reply([], "Show me the tent")) as deltas:  # type: ignore[type-var]
        async for delta in deltas:
            got.append(delta)
            if len(got) == 2:
                closed_at = time.monotonic()
                break
    (first, second) = await fake_openai.wait_for_outcome(2, timeout=2.0)
    assert first.status == "completed"
    assert second.status == "disconnected"
    assert second.at - closed_at < 0.5
    await brain.aclose()


async def test_no_executor_means_no_tools_offered(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Hello."]), Stream(["Hi."]))
    brain = tool_brain(fake_openai, None)
    assert "".join([d async for d in brain.reply([], "Hi")]) == "Hello."
    assert "tools" not in fake_openai.requests[0].body
    # load_brain passes tools and the executor through.
    executor = FakeExecutor()
    loaded = load_brain(
        LLMOptions(base_url=fake_openai.base_url), tools=[SHOW_PRODUCT], executor=executor
    )
    assert isinstance(loaded, OpenAICompatibleBrain)
    assert loaded.tools == (SHOW_PRODUCT,) and loaded.executor is executor
    assert "".join([d async for d in loaded.reply([], "Hi")]) == "Hi."
    assert [t["function"]["name"] for t in fake_openai.requests[1].body["tools"]] == [
        "show_product"
    ]
    assert ORDER_STATUS not in loaded.tools
    await brain.aclose()
    await loaded.aclose()


async def test_a_call_written_as_bare_json_text_is_run_not_spoken(
    fake_openai: FakeOpenAIServer,
) -> None:
    # Small local models (Qwen2.5) write calls as JSON content instead of tool_calls.
    fake_openai.script(
        Stream(['{"name": "order_status", ', '"arguments": {"order_id": "A-1"}}']),
        Stream(["It shipped."]),
    )
    executor = FakeExecutor({"order_status": ToolResult(ok=True, content={"status": "shipped"})})
    brain = tool_brain(fake_openai, executor)
    heard = [delta async for delta in brain.reply([], "Where is order A-1?")]
    assert "".join(heard) == "It shipped."
    assert executor.calls == [("order_status", {"order_id": "A-1"})]
    # JSON that is not a call of an offered tool is said after all.
    fake_openai.script(Stream(['{"note": "hi"}']))
    heard = [delta async for delta in brain.reply([], "Say something")]
    assert "".join(heard).strip() == '{"note": "hi"}'
    await brain.aclose()


async def test_tool_choice_is_sent_first_then_auto(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream([], tool_calls=[ToolCallScript("order_status", {"order_id": "B-2"}, id="c")]),
        Stream(["Done."]),
    )
    executor = FakeExecutor({"order_status": ToolResult(ok=True, content={"status": "late"})})
    brain = OpenAICompatibleBrain(
        options=LLMOptions(base_url=fake_openai.base_url, model="fake"), persona=PERSONA,
        tools=TOOLS, executor=executor,
        tool_choice={"type": "function", "function": {"name": "order_status"}},
    )  # fmt: skip
    assert "".join([d async for d in brain.reply([], "B-2?")]) == "Done."
    first, second = fake_openai.requests
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "order_status"}}
    assert [t["function"]["name"] for t in first.body["tools"]] == ["order_status"]
    assert "tool_choice" not in second.body and len(second.body["tools"]) == len(TOOLS)
    await brain.aclose()
