"""A live conversation with a guarded character: the refusal is what the user hears, and the
transcript ("turn" event) records it."""

from __future__ import annotations

import dataclasses

import pytest
from session_harness import running, wait_for

from talkie.brain.guardrails import GuardrailPolicy
from talkie.session import Conversation, SessionOptions

pytestmark = pytest.mark.asyncio


async def test_a_blocked_question_is_refused_out_loud(nova) -> None:  # type: ignore[no-untyped-def]
    policy = GuardrailPolicy(blocked_topics=("election",), refusal="I stay out of politics.")
    character = dataclasses.replace(nova, guardrails=policy)
    conv = Conversation(character=character, options=SessionOptions(greet=False, seed=3))
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Who wins the election?"})
        await wait_for(pulled, lambda p: p.of_type("turn"), timeout=30)
    assert [e["text"] for e in pulled.of_type("reply")] == ["I stay out of politics."]
    turn = pulled.of_type("turn")[0]
    assert turn["said"] == "I stay out of politics." and turn["user_text"].endswith("election?")
    assert pulled.audio_rms(0.0, 30.0) > 0.0  # it was spoken
