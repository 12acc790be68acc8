"""The built-in brain talks about itself and about the user, and answers questions said in
several breaths (the session merges them into one turn)."""

from __future__ import annotations

import pytest

from talkie.brain import BuiltinBrain, Persona, Turn
from talkie.brain.rapport import question_parts, self_description, user_name, without_intro

KNOWLEDGE = (
    "The Moon is about three hundred eighty four thousand kilometres from the Earth.\n"
    "The Sun is a star, about one hundred fifty million kilometres away from the Earth.\n"
    "Mars is the fourth planet from the Sun.\n"
    "The shop opens at nine on weekdays."
)


@pytest.fixture
def guide() -> BuiltinBrain:
    persona = Persona(
        name="Orla",
        system_prompt="You are Orla, a friendly guide at the city observatory. Keep it short.",
        greeting="Hello, I'm Orla.",
        knowledge=KNOWLEDGE,
    )
    return BuiltinBrain(persona=persona)


@pytest.mark.parametrize(
    "question",
    ["Tell me about yourself.", "Could you tell me a little bit about yourself?",
     "Who are you?", "What's your name?"],
)  # fmt: skip
def test_it_says_who_it_is_from_its_persona(guide: BuiltinBrain, question: str) -> None:
    answer = guide.answer([], question)
    assert "I'm Orla, a friendly guide at the city observatory" in answer
    assert "don't know" not in answer


def test_self_description_prefers_its_own_first_person_lines() -> None:
    persona = Persona(name="Nova", system_prompt="You are Nova.", greeting="Hi.",
                      knowledge="I am Nova, made from a photo. Mars is red.")  # fmt: skip
    assert self_description(persona) == "I am Nova, made from a photo."
    plain = Persona(name="Kit", system_prompt="Answer briefly.", greeting="Hi.")
    assert self_description(plain) == "I'm Kit."


def test_it_learns_the_users_name_and_remembers_it(guide: BuiltinBrain) -> None:
    answer = guide.answer([], "My name is Daniel. What's yours?")
    assert answer.startswith("Nice to meet you, Daniel!") and "Orla" in answer
    history = [Turn("user", "My name is Daniel. What's yours?"), Turn("assistant", answer)]
    assert guide.answer(history, "What's my name?") == "You're Daniel."
    assert "haven't told me" in guide.answer([], "Do you remember my name?")
    assert user_name([], "Hi, I'm Priya") == "Priya"
    assert without_intro("My name is Daniel, what's yours?") == "what's yours?"


@pytest.mark.parametrize(
    ("turn", "expected"),
    [
        ("I was reading about the Moon yesterday. How far away is it?", "three hundred"),
        ("Um, the Sun, how far away is it from the Earth?", "one hundred fifty million"),
        ("I have two questions. Which planet is Mars?", "fourth planet"),
        ("Mars is red, right? Which planet is it from the Sun?", "fourth planet"),
    ],
)
def test_a_question_in_several_breaths_is_answered_with_its_context(
    guide: BuiltinBrain, turn: str, expected: str
) -> None:
    answer = guide.answer([], turn)
    assert expected in answer, answer
    assert "Sun is a star" not in answer or "Sun" in turn.split(".")[-1]


def test_question_parts_put_the_question_first() -> None:
    assert question_parts("I was reading about the Moon. How far away is it?") == [
        "How far away is it?", "I was reading about the Moon.",
    ]  # fmt: skip
    assert question_parts("Because I'm building a kiosk, I need to know, does it need a GPU?") == [
        "does it need a GPU?", "Because I'm building a kiosk, I need to know",
    ]  # fmt: skip
    assert question_parts("Hi Ada, how's it going?") == ["Hi Ada, how's it going?"]
