"""Answers about what the character sees: the built-in brain reads the screen's lines and says
who is in view (and honestly what it cannot tell); an LLM that takes images gets the picture
with the question it is about."""

from __future__ import annotations

import base64

import pytest
from fake_openai import FakeOpenAIServer, Stream

from talkie.brain import BuiltinBrain, LLMOptions, OpenAICompatibleBrain, Turn
from talkie.messages import Presence, ScreenText, Sight

LINES = (
    "Build failed in 3.2 seconds",
    "TypeError: cannot read properties of undefined (reading 'length')",
    "at main (app.js:42:17)",
    "Next step: run npm install again",
)


def seeing(sight: Sight) -> list[Turn]:
    return [Turn("user", "Hi"), Turn("assistant", "Hello!"),
            Turn("context", sight.describe(), sight=sight)]  # fmt: skip


def screen(lines: tuple[str, ...] = LINES) -> Sight:
    return Sight(pts=5.0, screen=True, screen_text=ScreenText(pts=4.0, lines=lines))


def camera(presence: Presence | None) -> Sight:
    return Sight(pts=5.0, camera=True, presence=presence)


async def said(brain: BuiltinBrain, history: list[Turn], text: str) -> str:
    return "".join([d async for d in brain.reply(history, text)])


@pytest.mark.asyncio
async def test_reads_the_screen_and_single_lines() -> None:
    brain = BuiltinBrain()
    history = seeing(screen())
    whole = await said(brain, history, "What does my screen say?")
    assert all(line in whole for line in LINES)
    for question, line in [
        ("Read me the second line", LINES[1]),
        ("what's on line 3?", LINES[2]),
        ("and the last line?", LINES[3]),
        ("Can you read the first line please", LINES[0]),
    ]:
        answer = await said(brain, history, question)
        assert line in answer, (question, answer)
        assert all(other not in answer for other in LINES if other != line), answer
    error = await said(brain, history, "What does this error say?")
    assert LINES[1] in error and LINES[3] not in error
    assert "only read 4 lines" in await said(brain, history, "read the ninth line")


@pytest.mark.asyncio
async def test_says_honestly_what_it_cannot_see() -> None:
    brain = BuiltinBrain()
    nothing: list[Turn] = []
    assert "not sharing" in await said(brain, nothing, "What does my screen say?")
    assert "camera is off" in await said(brain, nothing, "Can you see me?")
    assert "can't make out any text" in await said(brain, seeing(screen(())), "read my screen")
    present = Presence(pts=4.0, faces=1, x=0.5, y=0.4, size=0.3, looking=True)
    assert "can't make out details" in await said(
        brain, seeing(camera(present)), "What colour is my shirt?"
    )


@pytest.mark.asyncio
async def test_says_who_is_in_view() -> None:
    brain = BuiltinBrain()
    me = Presence(pts=4.0, faces=1, x=0.5, y=0.4, size=0.3, looking=True)
    away = Presence(pts=4.0, faces=1, x=0.5, y=0.4, size=0.3, looking=False, hand_raised=True)
    two = Presence(pts=4.0, faces=2, x=0.5, y=0.4, size=0.3)
    assert "I can see you, and you're looking at me" in await said(
        brain, seeing(camera(me)), "can you see me?"
    )
    answer = await said(brain, seeing(camera(away)), "Do you see me")
    assert "looking away" in answer and "hand up" in answer
    assert "2 people" in await said(brain, seeing(camera(two)), "who do you see?")
    assert "can't see anyone" in await said(
        brain, seeing(camera(Presence(pts=4.0))), "can you see me?"
    )


@pytest.mark.asyncio
async def test_other_questions_are_not_about_sight() -> None:
    brain = BuiltinBrain()
    history = seeing(screen())
    answer = await said(brain, history, "How are you today?")
    assert all(line not in answer for line in LINES)


def test_the_description_numbers_the_lines() -> None:
    text = Sight(pts=1.0, camera=True, screen=True, screen_text=ScreenText(1.0, LINES)).describe()
    assert "2. " + LINES[1] in text
    assert "nothing has been seen yet" in text


JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"


@pytest.mark.asyncio
async def test_an_image_llm_gets_the_picture_with_the_question(
    fake_openai: FakeOpenAIServer,
) -> None:
    fake_openai.script(Stream(["It says the build failed."]), Stream(["Sure."]))
    sight = Sight(pts=5.0, screen=True, screen_text=ScreenText(4.0, LINES), jpeg=JPEG,
                  jpeg_source="screen")  # fmt: skip
    brain = OpenAICompatibleBrain(
        options=LLMOptions(base_url=fake_openai.base_url, model="vision-model", vision=True)
    )
    assert brain.accepts_images
    text = "".join([d async for d in brain.reply(seeing(sight), "What does this error say?")])
    assert text == "It says the build failed."
    messages = fake_openai.requests[-1].body["messages"]
    assert LINES[1] in messages[0]["content"]  # the read text is in the system message too
    question = messages[-1]
    assert question["role"] == "user" and isinstance(question["content"], list)
    parts = {part["type"]: part for part in question["content"]}
    assert "What does this error say?" in parts["text"]["text"]
    url = parts["image_url"]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == JPEG

    # A text-only model gets the description, never the picture.
    blind = OpenAICompatibleBrain(
        options=LLMOptions(base_url=fake_openai.base_url, model="text-model")
    )
    assert not blind.accepts_images
    _ = [d async for d in blind.reply(seeing(sight), "What does this error say?")]
    messages = fake_openai.requests[-1].body["messages"]
    assert isinstance(messages[-1]["content"], str)
    assert LINES[1] in messages[0]["content"]
    await brain.aclose()
    await blind.aclose()


def test_vision_is_switched_on_from_the_environment() -> None:
    env = {"TALKIE_LLM_BASE_URL": "http://localhost:1/v1", "TALKIE_LLM_VISION": "1"}
    assert LLMOptions.from_env(env).vision
    assert not LLMOptions.from_env({"TALKIE_LLM_BASE_URL": "http://localhost:1/v1"}).vision


@pytest.mark.asyncio
async def test_questions_about_documents_are_not_taken_for_the_screen() -> None:
    brain = BuiltinBrain()
    for question in ("What does the document say about refunds?", "Can you read this for me?",
                     "Do you see any problem with my plan?"):  # fmt: skip
        assert brain.sees([], question) is None, question
    assert brain.sees(seeing(screen()), "Can you read this for me?") is not None
