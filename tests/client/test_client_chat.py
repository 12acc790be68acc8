"""The Python client's text chat against a real server (built-in brain): one-off answers,
streaming, a thread that keeps its history, tool calls handed to the client."""

from __future__ import annotations

import pytest
from client_harness import ASTRONAUT, ThreadedServer

from talkie.client import TalkieApiError, TalkieClient

KNOWLEDGE = "Tickets\nAdults pay 14 euros. Students pay 9 euros."
SHOW_MAP = {
    "name": "show_map", "description": "Show the museum map on the visitor's screen",
    "kind": "ui", "examples": ["show me the map"],
}  # fmt: skip


@pytest.fixture(scope="module")
def guide(server: ThreadedServer, admin_key: str) -> str:
    with TalkieClient(server.url, api_key=admin_key) as talkie:
        made = talkie.characters.create(
            ASTRONAUT, name="Guide", knowledge=KNOWLEDGE, tools=[SHOW_MAP]
        )
        return made.id


def test_complete_and_stream(client: TalkieClient, guide: str) -> None:
    reply = client.chat.complete(guide, [{"role": "user", "content": "What do students pay?"}])
    assert "9 euros" in reply.text and reply.finish_reason == "stop" and reply.brain
    stream = client.chat.stream(guide, [{"role": "user", "content": "What do adults pay?"}])
    deltas = list(stream)
    assert len(deltas) > 1 and stream.reply is not None
    assert "14 euros" in "".join(deltas) and stream.reply.text == " ".join("".join(deltas).split())


def test_a_thread_keeps_the_conversation_and_tool_calls(client: TalkieClient, guide: str) -> None:
    thread = client.chat.thread(guide)
    assert "Guide" in thread.say("Hi! Who are you?").text
    reply = thread.say("Please show me the map")
    assert reply.finish_reason == "tool_calls" and reply.tool_calls[0]["function"]["name"] == (
        "show_map"
    )
    assert [m["role"] for m in thread.messages] == ["user", "assistant", "user", "assistant"]
    call_id = reply.tool_calls[0]["id"]
    thread.messages.append({"role": "tool", "tool_call_id": call_id, "content": "Map shown."})
    answer = client.chat.complete(guide, thread.messages)
    assert answer.text == "Map shown."


def test_errors_are_api_errors(client: TalkieClient, guide: str) -> None:
    with pytest.raises(TalkieApiError) as info:
        client.chat.complete("nobody-here", [{"role": "user", "content": "Hi"}])
    assert info.value.status == 404
    with pytest.raises(TypeError, match="unknown chat option"):
        client.chat.complete(guide, [{"role": "user", "content": "Hi"}], temperature=0.2)
