"""Guardrails around the built-in brain and an LLM (scripted fake server): blocked questions get
the refusal without reaching the brain, blocked reply clauses are never spoken, moderation
endpoints are asked and their failures handled."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_openai import FakeOpenAIServer, Stream

from talkie.brain import BuiltinBrain, LLMOptions, OpenAICompatibleBrain, Persona, Turn
from talkie.brain.guardrails import GuardedBrain, GuardrailPolicy, HttpModerator
from talkie.errors import InvalidInputError

PERSONA = Persona(
    name="Sam", system_prompt="You are Sam, a shop assistant.", greeting="Hi, I'm Sam!",
    knowledge="The shop opens at nine and closes at six. Returns are free within 30 days.",
)  # fmt: skip
POLICY = GuardrailPolicy(
    blocked_topics=("politics", "election", "vote for"), blocked_words=("weapon", "casino"),
    refusal="I'd rather not talk about that here.",
)  # fmt: skip


async def say(brain: GuardedBrain, text: str) -> str:
    return "".join([d async for d in brain.reply([], text)]).strip()


class ScriptedBrain:
    """An inner brain that streams given deltas and records what it was asked."""

    name = "scripted"

    def __init__(self, deltas: Sequence[str]) -> None:
        self.deltas = list(deltas)
        self.asked: list[str] = []
        self.closed = False

    def greeting(self) -> str:
        return "Hello!"

    async def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]:
        self.asked.append(user_text)
        try:
            for d in self.deltas:
                await asyncio.sleep(0)
                yield d
        finally:
            self.closed = True


def test_matching_is_on_whole_words_with_inflections() -> None:
    assert POLICY.violation("Who should I vote for?") == "vote for"
    assert POLICY.violation("Do you sell WEAPONS?") == "weapon"
    assert POLICY.violation("the elections are coming") == "election"
    assert POLICY.violation("Tell me about the political situation") is None  # a different word
    assert POLICY.violation("I love casinos and gambling") == "casino"
    assert POLICY.violation("a classic weaponless story") is None
    assert GuardrailPolicy(blocked_words=("class",)).violation("classes start soon") == "class"
    with pytest.raises(InvalidInputError):
        GuardrailPolicy(blocked_words=("!!!",))
    with pytest.raises(InvalidInputError):
        GuardrailPolicy(refusal="  ")


def test_blocked_questions_never_reach_the_brain() -> None:
    inner = ScriptedBrain(["Well, ", "I think..."])
    brain = GuardedBrain(inner, POLICY)
    assert asyncio.run(say(brain, "Who will win the election?")) == POLICY.refusal
    assert inner.asked == [] and brain.refusals == 1
    real = GuardedBrain(BuiltinBrain(persona=PERSONA), POLICY)
    answer = asyncio.run(say(real, "When does the shop open?"))
    assert "nine" in answer and POLICY.refusal not in answer


def test_a_blocked_reply_clause_is_replaced_and_the_stream_closed() -> None:
    inner = ScriptedBrain(["Sure, ", "we open at nine. ", "We also sell a ", "weapon or two. ",
                           "Anything else?"])  # fmt: skip
    brain = GuardedBrain(inner, POLICY)
    answer = asyncio.run(say(brain, "What do you sell?"))
    assert "nine" in answer and "weapon" not in answer and answer.endswith(POLICY.refusal)
    assert "Anything else" not in answer and inner.closed


def test_llm_reply_with_a_blocked_word_is_not_spoken(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(Stream(["The best casino ", "in town is ", "around the corner."]))
    options = LLMOptions(base_url=fake_openai.base_url, model="fake")
    brain = GuardedBrain(OpenAICompatibleBrain(options=options, persona=PERSONA), POLICY)
    answer = asyncio.run(say(brain, "Where can I have fun tonight?"))
    assert answer == POLICY.refusal


class _Moderation(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list[dict[str, object]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Moderation.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        if _Moderation.mode == "fail":
            self.send_response(500)
            self.end_headers()
            return
        flagged = "hate" in body["input"]
        reply = json.dumps({"results": [{"flagged": flagged}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def moderation_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Moderation)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/moderations"
    finally:
        server.shutdown()


def test_moderation_endpoint_flags_and_failures(moderation_url: str) -> None:
    moderator = HttpModerator.from_env(
        {"TALKIE_MODERATION_URL": moderation_url, "TALKIE_MODERATION_API_KEY": "mod-key"}
    )
    assert moderator is not None
    policy = GuardrailPolicy(moderation=True, refusal="Let's keep it friendly.")
    inner = ScriptedBrain(["Of course!"])
    brain = GuardedBrain(inner, policy, moderator=moderator)
    _Moderation.mode = "ok"
    assert asyncio.run(say(brain, "I hate you")) == "Let's keep it friendly."
    assert asyncio.run(say(brain, "Can you help me?")) == "Of course!"
    assert _Moderation.seen[-1] == {"body": {"input": "Can you help me?"},
                                    "auth": "Bearer mod-key"}  # fmt: skip
    _Moderation.mode = "fail"
    assert asyncio.run(say(brain, "Can you help me?")) == "Of course!"  # fails open
    strict = GuardedBrain(inner, GuardrailPolicy(moderation=True, fail_closed=True),
                          moderator=moderator)  # fmt: skip
    assert asyncio.run(say(strict, "Can you help me?")) == strict.policy.refusal
    unset = GuardedBrain(inner, GuardrailPolicy(moderation=True, fail_closed=True))
    assert asyncio.run(say(unset, "hello")) == unset.policy.refusal
    assert HttpModerator.from_env({}) is None
