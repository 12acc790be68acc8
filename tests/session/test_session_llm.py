"""The live conversation with an OpenAI-compatible LLM (a scripted fake server): streamed
clauses become speech, faults become a short spoken apology, barge-in closes the stream."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from fake_openai import FakeOpenAIServer, Stream, free_port
from session_harness import running, wait_for

from talkie.brain import LLMOptions, OpenAICompatibleBrain
from talkie.session import Conversation, SessionOptions
from talkie.session.conversation import APOLOGY
from talkie.session.parts import build_parts

pytestmark = pytest.mark.asyncio


def llm_conversation(character, base_url: str, **llm: float) -> Conversation:  # type: ignore[no-untyped-def]
    options = LLMOptions(base_url=base_url, model="fake", api_key="sk-test", **llm)
    brain = OpenAICompatibleBrain(options=options, persona=character.persona)
    session = SessionOptions(greet=False, seed=2)
    parts = dataclasses.replace(build_parts(character, session), brain=brain)
    return Conversation(character=character, options=session, parts=parts)


async def test_streamed_answer_is_spoken_clause_by_clause(
    nova, fake_openai: FakeOpenAIServer
) -> None:  # type: ignore[no-untyped-def]
    fake_openai.script(
        Stream(
            ["Sure! ", "The Moon ", "is far away, ", "about four hundred thousand kilometres."],
            delay_s=0.15,
        )
    )
    conv = llm_conversation(nova, fake_openai.base_url)
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "How far is the Moon?"})
        await wait_for(pulled, lambda p: p.of_type("trace"), timeout=20)
    replies = [e["text"] for e in pulled.of_type("reply")]
    assert len(replies) >= 2, replies  # the first clause was spoken before the stream ended
    trace = pulled.of_type("trace")[0]["marks"]
    assert trace["answer_start"] < trace["brain_first_token"] + 0.45 + 0.5
    body = fake_openai.requests[0].body
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system" and "Nova" in body["messages"][0]["content"]
    assert body["messages"][-1] == {"role": "user", "content": "How far is the Moon?"}
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-test"
    assert [t.role for t in conv.history] == ["user", "assistant"]


async def test_llm_down_gives_a_spoken_apology_and_stays_live(nova) -> None:  # type: ignore[no-untyped-def]
    conv = llm_conversation(nova, f"http://127.0.0.1:{free_port()}/v1")
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Hello?"})
        await wait_for(pulled, lambda p: p.of_type("reply"), timeout=10)
        reply = pulled.of_type("reply")[0]
        await asyncio.sleep(1.0)
        frames_before = len(pulled.video_pts)
        await asyncio.sleep(1.0)
    assert reply["text"] == APOLOGY.split(".")[0] + "." or reply["text"] in APOLOGY
    assert pulled.of_type("error"), "the page is told what went wrong"
    assert pulled.audio_rms(reply["start"], reply["start"] + 1.0) > 0.02, "the apology is heard"
    assert len(pulled.video_pts) - frames_before >= 20, "the video keeps going"


async def test_slow_llm_times_out_into_an_apology(nova, fake_openai: FakeOpenAIServer) -> None:  # type: ignore[no-untyped-def]
    fake_openai.script(Stream(["Too late."], first_delay_s=5.0))
    conv = llm_conversation(nova, fake_openai.base_url, timeout_first_token_s=1.0)
    async with running(conv) as pulled:
        asked = conv.clock.now()
        conv.handle_client_event({"type": "text", "text": "Are you there?"})
        await wait_for(pulled, lambda p: p.of_type("reply"), timeout=10)
    reply = pulled.of_type("reply")[0]
    assert reply["text"] in APOLOGY
    # It waited out the first-token budget, and did not wait for the LLM's own (5 s) answer.
    assert 1.0 <= reply["start"] - asked < 5.0


async def test_barge_in_closes_the_llm_stream(nova, fake_openai: FakeOpenAIServer) -> None:  # type: ignore[no-untyped-def]
    words = [f"word{i} " for i in range(40)] + ["end."]
    fake_openai.script(Stream(["Let me tell you a long story. "] + words, delay_s=0.1))
    conv = llm_conversation(nova, fake_openai.base_url)
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Tell me a story."})
        await wait_for(pulled, lambda p: p.of_type("reply"), timeout=10)
        conv.handle_client_event({"type": "interrupt"})
        outcomes = await fake_openai.wait_for_outcome(1, timeout=2.0)
        cut = conv.clock.now()
        await asyncio.sleep(0.5)
    assert outcomes[0].status == "disconnected"
    assert outcomes[0].deltas_sent < len(words)
    assert pulled.audio_rms(cut + 0.05, cut + 0.5) < 0.002
    assert np.isfinite(pulled.audio_rms(0, cut))


async def test_a_long_answer_is_voiced_as_it_plays_without_gaps(
    nova, fake_openai: FakeOpenAIServer
) -> None:  # type: ignore[no-untyped-def]
    """The LLM sends a long answer at once; the voice makes each clause only when the speech
    before it runs short (not the whole answer at its start, which took a core for seconds
    and made every session's frames late), and the clauses still play back to back."""
    sentences = [
        "The Moon is about three hundred eighty four thousand kilometres away.",
        "Light from it takes a little more than one second to reach us.",
        "The Apollo astronauts needed about three days to get there.",
        "Its gravity is about one sixth of what you feel on the Earth.",
    ]
    fake_openai.script(Stream([s + " " for s in sentences]))
    conv = llm_conversation(nova, fake_openai.base_url)
    assert conv.options.speech_ahead_s is not None
    lead = conv.options.speech_ahead_s
    synthesized_at: list[float] = []
    real_synthesize = conv.synthesize

    async def synthesize(text: str):  # type: ignore[no-untyped-def]
        synthesized_at.append(conv.clock.now())
        return await real_synthesize(text)

    conv.synthesize = synthesize  # type: ignore[method-assign]
    async with running(conv) as pulled:
        conv.handle_client_event({"type": "text", "text": "Tell me about the Moon."})
        await wait_for(pulled, lambda p: p.of_type("trace"), timeout=60)
    clips = pulled.of_type("reply")
    assert len(clips) == len(synthesized_at) >= 5, [c["text"] for c in clips]
    ends = [c["start"] + c["duration"] for c in clips]
    for clip, previous_end in zip(clips[1:], ends, strict=False):
        assert clip["start"] == pytest.approx(previous_end, abs=0.02), "a gap in the voice"
    for k in range(2, len(clips)):
        # Clause k was made when at most ``lead`` of the speech before it was left to play
        # (a poll step late at most), never long before it was needed.
        left = ends[k - 1] - synthesized_at[k]
        assert left <= lead + 0.05, (k, left)
    assert synthesized_at[-1] - synthesized_at[0] > 0.5 * (ends[-2] - clips[0]["start"])
