"""Group conversation (a meeting): the character answers what is meant for it, nothing else.

The text rules are checked directly; the turn-taking runs the real conversation core on
virtual time with real ears (Silero, Whisper tiny.en) on espeak-ng speech, so what is judged
is the text the recogniser really produces ("Nova, how far..." with its commas and case).
"""

from __future__ import annotations

import pytest
from speech_set import VOICES, Track
from turn_harness import Outcome, converse, make
from virtual_time import run_virtual

from talkie.session.client_events import GroupModeChanged, SpeakerChanged, parse_client_event
from talkie.session.group import (
    GroupOptions,
    group_options,
    is_addressed,
    names_in,
    without_address,
)
from talkie.session.parts import TurnTakingOptions

NOVA = GroupOptions(("Nova",), follow_up_s=8.0)


@pytest.mark.parametrize(
    "text",
    ["Nova, what is your name?", "What do you think, Nova?", "nova how far is the moon",
     "Is that Nova's favourite planet?", "Hey NOVA."],
)  # fmt: skip
def test_a_turn_that_names_the_character_is_for_it(text: str) -> None:
    assert names_in(text, NOVA.names)
    assert is_addressed(text, NOVA, since_character_spoke=None)


@pytest.mark.parametrize(
    "text", ["I think it will rain today.", "Novak played well.", "What is the time?", ""]
)
def test_other_talk_is_not_for_it_until_it_has_spoken(text: str) -> None:
    assert not is_addressed(text, NOVA, since_character_spoke=None)


def test_a_question_right_after_it_spoke_is_a_follow_up_and_a_statement_is_not() -> None:
    assert is_addressed("And how long does that take?", NOVA, since_character_spoke=3.0)
    assert is_addressed("Tell me more.", NOVA, since_character_spoke=0.0)
    assert not is_addressed("And how long does that take?", NOVA, since_character_spoke=30.0)
    assert not is_addressed("I think it will rain today.", NOVA, since_character_spoke=1.0)


@pytest.mark.parametrize(
    ("said", "asked"),
    [("Nova, how far away is the moon.", "How far away is the moon."),
     ("Hey Nova, what is your name?", "What is your name?"),
     ("What do you think, Nova?", "What do you think?"),
     ("Nova?", "Nova?"),
     ("Is Nova a star?", "Is Nova a star?")],
)  # fmt: skip
def test_the_address_is_not_part_of_the_question(said: str, asked: str) -> None:
    assert without_address(said, NOVA.names) == asked


@pytest.mark.parametrize(
    ("heard", "asked"),
    [("Hey, no, what is your name...?", "What is your name...?"),  # heard in a real meeting
     ("Hi, no va, how far is the moon?", "How far is the moon?"),
     ("Okay, Nava, tell me a joke.", "Tell me a joke.")],
)  # fmt: skip
def test_a_clipped_name_after_a_greeting_calls_the_character_when_a_question_follows(
    heard: str, asked: str
) -> None:
    assert is_addressed(heard, NOVA, since_character_spoke=None)
    assert without_address(heard, NOVA.names) == asked


@pytest.mark.parametrize(
    "heard",
    ["Hey, no, that's wrong.", "Hey, no, what?", "Hey, Noah, what time is it?",
     "Hey, so, what do you think?", "No, what is your name?"],
)  # fmt: skip
def test_a_word_like_the_name_is_not_a_call_without_a_greeting_and_a_question(heard: str) -> None:
    assert not is_addressed(heard, NOVA, since_character_spoke=None)
    assert without_address(heard, NOVA.names) == heard


def test_names_of_several_words_must_come_in_order() -> None:
    captain = GroupOptions(("Captain Nova",))
    assert names_in("Captain Nova, are you there?", captain.names)
    assert not names_in("Nova, captain of the team", captain.names)
    with pytest.raises(ValueError, match="name"):
        GroupOptions(("  ", "!"))


def test_the_page_switches_group_mode_with_checked_events() -> None:
    event = parse_client_event({"type": "group", "on": True, "names": ["Nova", "Nov"]})
    assert event == GroupModeChanged(True, ("Nova", "Nov"), None)
    assert group_options(True, (), None, character_name="Nova") == GroupOptions(("Nova",))
    assert group_options(False, ("Nova",), None, character_name="Nova") is None
    assert parse_client_event({"type": "speaker", "name": " Ada "}) == SpeakerChanged("Ada")
    for bad in (
        {"type": "group"},
        {"type": "group", "on": True, "names": "Nova"},
        {"type": "group", "on": True, "names": ["x" * 61]},
        {"type": "group", "on": True, "follow_up_s": -1},
        {"type": "group", "on": True, "follow_up_s": True},
        {"type": "speaker", "name": 3},
    ):
        with pytest.raises(ValueError):
            parse_client_event(bad)


def run_group(nova, models, track: Track, seconds: float) -> Outcome:  # type: ignore[no-untyped-def]
    conv = make(nova, models, greet=False, turns=TurnTakingOptions(group=NOVA))
    return run_virtual(converse(conv, track.audio, seconds=seconds))


def test_in_a_meeting_only_the_question_by_name_is_answered(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("I think it will rain today.", 1.0, voice=VOICES[0])
    # (en-us+f4's "Nova," comes out of Whisper as "No,": a voice whose name is heard.)
    asked = track.say("Nova, how far away is the Moon?", end + 3.0, voice=VOICES[3])
    out = run_group(nova, models, track, asked + 9.0)
    (turn,) = out.turns()
    # The name is taken off the question (Whisper tiny hears the rest of this Scottish voice
    # as "how far away is the Moon" or "how far are we in the Moon", by its earlier calls).
    asked_text = turn["user_text"].lower()
    assert asked_text.startswith("how far") and "moon" in asked_text, turn["user_text"]
    assert "kilometres" in turn["said"]
    overheard = " ".join(e["text"] for e in out.of_type("overheard")).lower()
    # heard, not answered (Whisper tiny hears "rain" or "remain" depending on its earlier calls)
    assert "think it will" in overheard and "today" in overheard, out.of_type("overheard")
    assert all(e["speaker"] == "meeting" for e in out.of_type("overheard"))
    # Nothing was said before the question: the character stayed quiet through the chatter.
    assert not [a for a, _ in out.sound_spans() if a < end + 3.0]
    finals = [e for e in out.of_type("transcript") if e["final"]]
    assert finals and all(e["speaker"] == "meeting" for e in finals)


def test_a_follow_up_question_is_answered_but_later_chatter_is_not(nova, models) -> None:  # type: ignore[no-untyped-def]
    track = Track(1.0)
    end = track.say("Nova, how far away is the Moon?", 1.0, voice=VOICES[0])
    # The answer takes a few seconds; the follow-up comes right after it, without the name.
    follow = track.say("And how long is a day on Mars?", end + 5.0, voice=VOICES[2])
    chatter = track.say("I think it will rain today.", follow + 9.0, voice=VOICES[6])
    out = run_group(nova, models, track, chatter + 6.0)
    turns = out.turns()
    assert len(turns) == 2, ([t["user_text"] for t in turns], out.of_type("overheard"))
    assert "hours" in turns[1]["said"], turns[1]
    assert not [a for a, _ in out.sound_spans() if a > chatter - 1.0]
