"""POST /v1/chat/completions: text chat with a character (OpenAI-compatible), with the built-in
brain and with a scripted OpenAI-compatible LLM (tests/brain/fake_openai.py): knowledge,
guardrails, tools run by the server or handed to the client, tool calls kept in the history,
tool_choice, memory, streaming, and the usual authentication and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "brain"))
from fake_openai import FakeOpenAIServer, Stream, ToolCallScript  # noqa: E402

KNOWLEDGE = (
    "Opening hours\nThe museum is open Tuesday to Sunday from 9:30 to 18:00.\n\n"
    "Tickets\nAdults pay 14 euros. Students pay 9 euros."
)
SHOW_CARD = {
    "name": "show_card", "description": "Show a card with a title on the visitor's screen",
    "kind": "ui", "examples": ["show me the ticket prices on screen"],
    "parameters": {"type": "object", "properties": {"title": {"type": "string"}}},
}  # fmt: skip
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def character(admin: TestClient, face_png: bytes) -> str:
    data = {
        "name": "Nova", "system_prompt": "You are Nova, the guide of the Lumen museum.",
        "knowledge": KNOWLEDGE, "tools": json.dumps([SHOW_CARD]),
        "guardrails": json.dumps({"blocked_topics": ["politics"], "refusal": "I'd rather not."}),
    }  # fmt: skip
    r = admin.post("/v1/characters", files={"image": ("n.png", face_png, "image/png")}, data=data)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default=Stream(["OK."])) as server:
        monkeypatch.setenv("TALKIE_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("TALKIE_LLM_MODEL", "fake")
        yield server


def chat(client: TestClient, model: str, messages: list[dict[str, Any]], **extra: Any) -> Any:
    r = client.post("/v1/chat/completions", json={"model": model, "messages": messages, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def sse(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def test_the_builtin_brain_answers_from_the_knowledge(admin: TestClient, character: str) -> None:
    body = chat(admin, character, [{"role": "user", "content": "How much is a student ticket?"}])
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["model"] == character
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert "9 euros" in choice["message"]["content"]
    assert body["usage"]["completion_tokens"] > 0 and body["talkie"]["brain"] == "builtin"


def test_streaming_sends_openai_chunks(admin: TestClient, character: str) -> None:
    chunks = sse(admin, {"model": character, "messages": [{"role": "user", "content": "Hi!"}]})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Nova" in text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_guardrails_apply_to_text_chat(admin: TestClient, character: str) -> None:
    body = chat(
        admin, character, [{"role": "user", "content": "What do you think about politics?"}]
    )
    assert body["choices"][0]["message"]["content"] == "I'd rather not."


def test_a_ui_tool_is_handed_to_the_client_and_its_result_answered(
    admin: TestClient, character: str
) -> None:
    ask = [{"role": "user", "content": "Show me the ticket prices on screen, titled Tickets"}]
    body = chat(
        admin, character, ask, tool_choice={"type": "function", "function": {"name": "show_card"}}
    )
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "show_card" and call["id"]
    follow = ask + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"message": "Card shown."}'},
    ]
    body = chat(admin, character, follow)
    assert body["choices"][0]["message"]["content"] == "Card shown."


def test_authentication_and_bad_requests(
    api: TestClient, admin: TestClient, character: str
) -> None:
    message = [{"role": "user", "content": "Hi"}]
    error_of(api.post("/v1/chat/completions", json={"model": character, "messages": message}), 401)
    error_of(admin.post("/v1/chat/completions", json={"model": "nobody", "messages": message}),
             404)  # fmt: skip
    only_system = [{"role": "system", "content": "Be brief."}]
    assert "user message" in error_of(
        admin.post("/v1/chat/completions", json={"model": character, "messages": only_system}),
        400,
    )
    orphan = [*message, {"role": "tool", "tool_call_id": "x", "content": "{}"}]
    error_of(admin.post("/v1/chat/completions", json={"model": character, "messages": orphan}),
             400)  # fmt: skip
    wrong_choice = {
        "model": character,
        "messages": message,
        "tool_choice": {"type": "function", "function": {"name": "nope"}},
    }
    assert "tool_choice" in error_of(admin.post("/v1/chat/completions", json=wrong_choice), 400)
    error_of(
        admin.post(
            "/v1/chat/completions", json={"model": character, "messages": message, "remember": True}
        ),
        400,
    )
    # another tenant's key cannot chat with (or learn of) the admin's character
    r = admin.post("/v1/keys", json={"name": "other tenant", "scopes": ["sessions"]})
    other = {"Authorization": f"Bearer {r.json()['secret']}"}
    error_of(api.post("/v1/chat/completions", json={"model": character, "messages": message},
                      headers=other), 404, "unknown_character")  # fmt: skip
    long_history = [{"role": "user", "content": "x" * 60_000}] * 20  # 1.2 MB
    r = admin.post("/v1/chat/completions", json={"model": character, "messages": long_history})
    assert "1 MiB" in error_of(r, 413, "too_large")


def test_an_llm_gets_persona_passages_and_history_with_tool_calls(
    admin: TestClient, character: str, fake_llm: FakeOpenAIServer
) -> None:
    fake_llm.script(Stream(["Students pay ", "9 euros."]))
    messages = [
        {"role": "system", "content": "The visitor is a student."},
        {"role": "user", "content": "Show me a card about tickets"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "show_card", "arguments": '{"title": "Tickets"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'},
        {"role": "assistant", "content": "Here is the card."},
        {"role": "user", "content": "And how much do I pay?"},
    ]  # fmt: skip
    body = chat(admin, character, messages)
    assert body["choices"][0]["message"]["content"] == "Students pay 9 euros."
    sent = fake_llm.requests[-1].body["messages"]
    assert sent[0]["role"] == "system" and "Nova" in sent[0]["content"]
    assert "The visitor is a student." in sent[0]["content"]
    roles = [m["role"] for m in sent]
    assert roles[1:] == ["user", "assistant", "tool", "assistant", "user"], roles
    assert sent[2]["tool_calls"][0]["function"]["name"] == "show_card"
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'}
    assert sent[-1]["content"] == "And how much do I pay?"
    assert [t["function"]["name"] for t in fake_llm.requests[-1].body["tools"]] == ["show_card"]


def test_an_llm_calls_a_client_tool_then_answers_from_its_result(
    admin: TestClient, character: str, fake_llm: FakeOpenAIServer
) -> None:
    fake_llm.script(Stream([], tool_calls=[ToolCallScript("get_weather", {"city": "Oslo"},
                                                          id="call_w")]))  # fmt: skip
    ask = [{"role": "user", "content": "What's the weather in Oslo?"}]
    chunks = sse(admin, {"model": character, "messages": ask, "tools": [WEATHER],
                         "tool_choice": "required"})  # fmt: skip
    assert fake_llm.requests[-1].body["tool_choice"] == "required"
    offered = {t["function"]["name"] for t in fake_llm.requests[-1].body["tools"]}
    assert offered == {"show_card", "get_weather"}
    calls = [c for ch in chunks for c in ch["choices"][0]["delta"].get("tool_calls", [])]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    fake_llm.script(Stream(["It is sunny in Oslo."]))
    call = {k: v for k, v in calls[0].items() if k != "index"}
    follow = [
        *ask,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_w", "content": '{"sky": "sunny"}'},
    ]
    body = chat(admin, character, follow, tools=[WEATHER])
    assert body["choices"][0]["message"]["content"] == "It is sunny in Oslo."
    sent = fake_llm.requests[-1].body["messages"]
    assert [m["role"] for m in sent[-3:]] == ["user", "assistant", "tool"]
    assert sent[-1]["content"] == '{"sky": "sunny"}'


def test_tool_choice_none_offers_no_tools(
    admin: TestClient, character: str, fake_llm: FakeOpenAIServer
) -> None:
    fake_llm.script(Stream(["Sure."]))
    chat(admin, character, [{"role": "user", "content": "Show a card"}], tools=[WEATHER],
         tool_choice="none")  # fmt: skip
    assert "tools" not in fake_llm.requests[-1].body


def test_remembered_users_are_recalled_in_later_chats(
    admin: TestClient, character: str, fake_llm: FakeOpenAIServer
) -> None:
    fake_llm.script(Stream(["Nice to meet you, Priya."]), Stream(["You're Priya."]))
    chat(admin, character, [{"role": "user", "content": "My name is Priya."}], user="u-42",
         remember=True)  # fmt: skip
    deadline = __import__("time").monotonic() + 5
    while __import__("time").monotonic() < deadline:
        memory = admin.get(f"/v1/characters/{character}/memories/u-42")
        if memory.status_code == 200 and "Priya" in memory.text:
            break
    chat(admin, character, [{"role": "user", "content": "Who am I?"}], user="u-42", remember=True)
    system = fake_llm.requests[-1].body["messages"][0]["content"]
    assert "From earlier conversations with this person" in system and "Priya" in system
