"""OpenAICompatibleBrain against the scripted fake server: streaming, request content, faults,
cancellation and text cleaning."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAIServer, HttpError, JsonReply, Stream, free_port

from talkie.brain import (
    BrainUnavailable,
    BuiltinBrain,
    LLMOptions,
    OpenAICompatibleBrain,
    Persona,
    Turn,
    load_brain,
)
from talkie.errors import InvalidInputError

SECRET = "sk-test-secret-1234567890"


def make_brain(server: FakeOpenAIServer, **options: Any) -> OpenAICompatibleBrain:
    persona = Persona(
        name="Ada",
        system_prompt="You are Ada, the assistant of Acme Bikes.",
        greeting="Hi, I'm Ada.",
        knowledge="We are open Monday to Friday from 9 am to 6 pm.",
    )
    values: dict[str, Any] = {"base_url": server.base_url, "model": "fake-model"}
    values.update(options)
    return OpenAICompatibleBrain(options=LLMOptions(**values), persona=persona)


async def collect(
    brain: OpenAICompatibleBrain, text: str = "Hello?", history: Sequence[Turn] = ()
) -> list[str]:
    return [delta async for delta in brain.reply(list(history), text)]


@pytest.mark.asyncio
async def test_deltas_arrive_incrementally(fake_openai: FakeOpenAIServer) -> None:
    deltas = ["Hello", " there", "!", " How", " can", " I", " help", "?"]
    fake_openai.script(Stream(deltas, delay_s=0.15))
    brain = make_brain(fake_openai)
    start = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    async for delta in brain.reply([], "Hi"):
        arrivals.append((time.monotonic() - start, delta))
    total = time.monotonic() - start
    assert "".join(d for _, d in arrivals) == "Hello there! How can I help?"
    assert len(arrivals) >= 6  # not buffered into one blob
    # The first delta is there long before the stream ends (7 gaps of 0.15 s).
    assert arrivals[0][0] < 0.5
    assert total > 0.9
    assert total - arrivals[0][0] > 0.8
    stats = brain.last_stats
    assert stats is not None and stats.first_token_s is not None and stats.first_token_s < 0.5
    await brain.aclose()


@pytest.mark.asyncio
async def test_request_carries_persona_history_and_auth(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Sure."]))
    brain = make_brain(fake_openai, api_key=SECRET, max_tokens=77, temperature=0.3)
    history = [
        Turn("assistant", "Hi, I'm Ada."),  # a leading assistant turn is dropped
        Turn("user", "Do you repair bikes?"),
        Turn("assistant", "Yes, we do."),
        Turn("user", ""),  # empty turns are skipped
    ]
    assert await collect(brain, "When are you open?", history) == ["Sure."]
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    body = request.body
    assert body["model"] == "fake-model"
    assert body["stream"] is True
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.3
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert "You are Ada, the assistant of Acme Bikes." in system
    assert "Monday to Friday from 9 am to 6 pm" in system  # the knowledge text
    assert "no markdown" in system and "short sentences" in system
    assert messages[1]["content"] == "Do you repair bikes?"
    assert messages[2]["content"] == "Yes, we do."
    assert messages[3]["content"] == "When are you open?"
    await brain.aclose()


@pytest.mark.asyncio
async def test_history_is_bounded(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Ok."]), Stream(["Ok."]))
    brain = make_brain(fake_openai, max_history_turns=4, max_history_chars=10_000)
    history = [Turn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(40)]
    await collect(brain, "latest", history)
    messages = fake_openai.requests[0].body["messages"]
    assert [m["content"] for m in messages[1:]] == [
        "turn 36",
        "turn 37",
        "turn 38",
        "turn 39",
        "latest",
    ]
    # A character budget cuts long turns off too.
    brain = make_brain(fake_openai, max_history_chars=250)
    long_history = [Turn("user", "x" * 100), Turn("assistant", "y" * 100)] * 5
    await collect(brain, "now", long_history)
    sent = fake_openai.requests[1].body["messages"]
    assert sum(len(m["content"]) for m in sent[1:]) <= 250 + len("now") + 1


@pytest.mark.asyncio
async def test_roles_alternate_for_strict_chat_templates(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Ok."]), Stream(["Ok."]))
    brain = make_brain(fake_openai)
    # The last reply was interrupted before anything was heard: two user turns in a row.
    history = [
        Turn("user", "Tell me a story."),
        Turn("assistant", "Once upon"),
        Turn("user", "Stop"),
    ]
    await collect(brain, "Tell me about bikes instead.", history)
    messages = fake_openai.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "Stop\nTell me about bikes instead."
    # A caller that already appended the current utterance does not send it twice.
    await collect(brain, "Stop", history)
    assert fake_openai.requests[1].body["messages"][-1]["content"] == "Stop"


@pytest.mark.asyncio
async def test_first_token_timeout(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Too late."], first_delay_s=5.0))
    brain = make_brain(fake_openai, timeout_first_token_s=1.0)
    start = time.monotonic()
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    elapsed = time.monotonic() - start
    assert info.value.reason == "first_token" and not info.value.partial
    assert 0.9 <= elapsed < 1.5
    # The connection was closed: the server saw the client leave.
    outcomes = await fake_openai.wait_for_outcome(1)
    assert outcomes[0].status == "disconnected"


@pytest.mark.asyncio
async def test_first_token_timeout_before_headers(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Too late."], headers_delay_s=5.0))
    brain = make_brain(fake_openai, timeout_first_token_s=0.8)
    start = time.monotonic()
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    assert info.value.reason == "first_token"
    assert time.monotonic() - start < 0.8 + 0.5


@pytest.mark.asyncio
async def test_connection_refused_is_fast() -> None:
    options = LLMOptions(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    brain = OpenAICompatibleBrain(options=options)
    start = time.monotonic()
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    assert info.value.reason == "connect"
    assert "is the server running" in str(info.value)
    assert time.monotonic() - start < 0.5


@pytest.mark.asyncio
async def test_http_error(fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script(
        HttpError(500, {"error": {"message": "model crashed"}}), HttpError(401, "bad key")
    )
    brain = make_brain(fake_openai, api_key=SECRET)
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    assert info.value.reason == "http"
    assert "500" in str(info.value) and "model crashed" in str(info.value)
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    assert "401" in str(info.value) and "TALKIE_LLM_API_KEY" in str(info.value)
    # The key is in no message, log record or repr.
    assert SECRET not in str(info.value)
    assert SECRET not in repr(brain.options)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_stream_stall_raises_after_partial_text(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["Let me", " think", " about that."], hang_after=2))
    brain = make_brain(fake_openai, timeout_stall_s=0.6)
    received: list[str] = []
    start = time.monotonic()
    with pytest.raises(BrainUnavailable) as info:
        async for delta in brain.reply([], "Question?"):
            received.append(delta)
    assert "".join(received) == "Let me think"
    assert info.value.reason == "stall" and info.value.partial
    assert time.monotonic() - start < 0.6 + 0.5
    outcomes = await fake_openai.wait_for_outcome(1)
    assert outcomes[0].status == "disconnected"


@pytest.mark.asyncio
async def test_total_timeout(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["word "] * 50, delay_s=0.1))
    brain = make_brain(fake_openai, timeout_total_s=0.7)
    received: list[str] = []
    with pytest.raises(BrainUnavailable) as info:
        async for delta in brain.reply([], "Talk a lot"):
            received.append(delta)
    assert info.value.reason == "total" and info.value.partial
    assert 3 <= len(received) < 50


@pytest.mark.asyncio
async def test_slow_consumer_is_not_a_stall(fake_openai: FakeOpenAIServer) -> None:
    # The session synthesises speech between deltas: that time is not the LLM's.
    fake_openai.script(Stream(["One.", " Two.", " Three.", " Four.", " Five."], delay_s=0.02))
    brain = make_brain(fake_openai, timeout_stall_s=0.2, timeout_total_s=0.8)
    received = []
    start = time.monotonic()
    async for delta in brain.reply([], "Count slowly"):
        received.append(delta)
        await asyncio.sleep(0.25)
    assert time.monotonic() - start > 1.2
    assert "".join(received) == "One. Two. Three. Four. Five."


@pytest.mark.asyncio
async def test_broken_connection_mid_stream(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["One.", " Two.", " Three."], fail_after=1))
    brain = make_brain(fake_openai)
    received: list[str] = []
    with pytest.raises(BrainUnavailable) as info:
        async for delta in brain.reply([], "Count"):
            received.append(delta)
    assert received == ["One."]
    assert info.value.reason == "network" and info.value.partial


@pytest.mark.asyncio
async def test_breaking_out_closes_the_connection(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream([f" word{i}" for i in range(100)], delay_s=0.05))
    brain = make_brain(fake_openai)
    received = []
    reply = brain.reply([], "Go")
    assert isinstance(reply, AsyncGenerator)  # so it can be closed explicitly
    async with contextlib.aclosing(reply) as stream:
        async for delta in stream:
            received.append(delta)
            if len(received) == 3:
                break
    left_at = time.monotonic()
    (outcome,) = await fake_openai.wait_for_outcome(1)
    assert outcome.status == "disconnected"
    assert outcome.deltas_sent < 20
    assert outcome.at - left_at < 0.5


@pytest.mark.asyncio
async def test_task_cancel_closes_the_connection(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream([f" word{i}" for i in range(100)], delay_s=0.05))
    brain = make_brain(fake_openai)
    received: list[str] = []

    async def consume() -> None:
        async for delta in brain.reply([], "Go"):
            received.append(delta)

    task = asyncio.create_task(consume())
    while len(received) < 3:
        await asyncio.sleep(0.01)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 0.2
    (outcome,) = await fake_openai.wait_for_outcome(1)
    assert outcome.status == "disconnected"
    assert outcome.at - cancelled_at < 0.5


@pytest.mark.asyncio
async def test_markdown_is_stripped_from_the_stream(fake_openai: FakeOpenAIServer) -> None:
    deltas = [
        "**Sure", "!** Here", " are the ", "`hours`:\n", "- Mon", "day: 9", "\n- Tue", "sday: 10",
        "\n\n### More\nSee [our site](https://www.acme", ".example/hours) or https://acme.example/x.",
    ]  # fmt: skip
    fake_openai.script(Stream(deltas))
    brain = make_brain(fake_openai)
    text = "".join(await collect(brain))
    assert text == (
        "Sure! Here are the hours: Monday: 9. Tuesday: 10. More. See our site or acme.example."
    )


@pytest.mark.asyncio
async def test_think_blocks_and_keepalives_are_ignored(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(
        Stream(
            ["<thi", "nk>The user wants", " a greeting.</th", "ink>\n\nHello", " friend."],
            raw_lines=[": keep-alive", "event: message"],
        )
    )
    brain = make_brain(fake_openai)
    assert "".join(await collect(brain)) == "Hello friend."


@pytest.mark.asyncio
async def test_error_event_in_stream(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream([], raw_lines=['data: {"error": {"message": "out of memory"}}']))
    brain = make_brain(fake_openai)
    with pytest.raises(BrainUnavailable) as info:
        await collect(brain)
    assert info.value.reason == "protocol" and "out of memory" in str(info.value)


@pytest.mark.asyncio
async def test_non_streamed_json_answer(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(JsonReply("**Hello** from a server that ignores streaming."))
    brain = make_brain(fake_openai)
    assert "".join(await collect(brain)) == "Hello from a server that ignores streaming."


@pytest.mark.asyncio
async def test_client_reused_and_empty_input(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["One."]), Stream(["Two."]))
    brain = make_brain(fake_openai)
    assert await collect(brain) == ["One."]
    assert await collect(brain) == ["Two."]
    with pytest.raises(InvalidInputError):
        await collect(brain, "   ")
    await brain.aclose()


def test_options_from_env_and_validation() -> None:
    env = {
        "TALKIE_LLM_BASE_URL": "http://localhost:11434/v1/chat/completions",
        "TALKIE_LLM_API_KEY": SECRET,
        "TALKIE_LLM_MODEL": "llama3.2",
        "TALKIE_LLM_MAX_TOKENS": "120",
    }
    options = LLMOptions.from_env(env)
    assert options.base_url == "http://localhost:11434/v1"
    assert options.endpoint == "http://localhost:11434/v1/chat/completions"
    assert options.model == "llama3.2" and options.api_key == SECRET and options.max_tokens == 120
    assert SECRET not in repr(options)
    with pytest.raises(InvalidInputError, match="TALKIE_LLM_BASE_URL"):
        LLMOptions.from_env({})
    with pytest.raises(InvalidInputError, match="http"):
        LLMOptions(base_url="localhost:8080")
    with pytest.raises(InvalidInputError, match="not a number"):
        LLMOptions.from_env({"TALKIE_LLM_BASE_URL": "http://x", "TALKIE_LLM_MAX_TOKENS": "lots"})


def test_load_brain_selection(tmp_path: Path) -> None:
    # Without a local model (none installed in this models folder, or switched off): built-in.
    assert isinstance(load_brain(environ={"TALKIE_MODELS_DIR": str(tmp_path)}), BuiltinBrain)
    assert isinstance(load_brain(environ={"TALKIE_LOCAL_LLM": "0"}), BuiltinBrain)
    assert isinstance(
        load_brain("builtin", environ={"TALKIE_LLM_BASE_URL": "http://x"}), BuiltinBrain
    )
    auto = load_brain(environ={"TALKIE_LLM_BASE_URL": "http://localhost:8080/v1"})
    assert isinstance(auto, OpenAICompatibleBrain)
    explicit = load_brain(LLMOptions(base_url="http://h:1/v1", model="m"))
    assert isinstance(explicit, OpenAICompatibleBrain) and explicit.options.model == "m"
    with pytest.raises(InvalidInputError, match="TALKIE_LLM_BASE_URL"):
        load_brain("openai", environ={})
    with pytest.raises(InvalidInputError, match="unknown brain"):
        load_brain("gpt9000", environ={})


@pytest.mark.asyncio
async def test_first_clause_ready_before_the_stream_ends(fake_openai: FakeOpenAIServer) -> None:
    from talkie.brain import ClauseChunker

    deltas = ["Sure", "!", " We", " open", " at", " 9", " am", " on", " weekdays", "."]
    fake_openai.script(Stream(deltas, delay_s=0.1))
    brain = make_brain(fake_openai)
    chunker = ClauseChunker()
    start = time.monotonic()
    clauses: list[tuple[float, str]] = []
    async for delta in brain.reply([], "When are you open?"):
        clauses += [(time.monotonic() - start, c) for c in chunker.push(delta)]
    clauses += [(time.monotonic() - start, c) for c in chunker.flush()]
    assert [c for _, c in clauses] == ["Sure!", "We open at 9 am on weekdays."]
    assert clauses[0][0] < 0.4 < clauses[1][0]
