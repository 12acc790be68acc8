"""Is the user done? Text cues, the end-of-turn model, and the words to listen for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from talkie.hearing.turn_end import TurnEndPolicy, classify, is_backchannel
from talkie.hearing.turn_model import SmartTurnModel, whisper_log_mel
from talkie.hearing.vocabulary import hotword_prompt, introduced_names, salient_terms
from talkie.voice import PiperTTS

CUES = [
    ("How far away is the Moon?", "question"),
    ("What's your name", "question"),
    ("Mars, how long is a day there.", "question"),
    ("Tell me about yourself.", "request"),
    ("Could you tell me a little bit about yourself?", "question"),
    ("Please explain how it works.", "request"),
    ("My name is Daniel.", "social"),
    ("Thank you, that was helpful.", "social"),
    ("I was reading about the Moon yesterday.", "statement"),
    ("I never understood how your face moves.", "statement"),
    ("So I have a question about Mars and", "incomplete"),
    ("Can you help me with", "incomplete"),
    ("I was wondering, um", "incomplete"),
    ("Okay, so,", "incomplete"),
    ("How far away is the Moon,", "question"),
    ("What is,", "incomplete"),
    ("I have a question.", "incomplete"),
    ("You know what?", "incomplete"),
    ("So the thing is, I", "incomplete"),
    ("The problem is", "incomplete"),
    ("Mm-hmm.", "backchannel"),
    ("Yeah, okay.", "backchannel"),
    ("uh-huh", "backchannel"),
    ("  ", "empty"),
]


@pytest.mark.parametrize(("text", "cue"), CUES)
def test_what_a_turn_looks_like(text: str, cue: str) -> None:
    assert classify(text) == cue


def test_backchannels_are_short_listener_responses() -> None:
    assert is_backchannel("Mm-hmm.") and is_backchannel("Oh, I see.") and is_backchannel("Right")
    assert not is_backchannel("No, that's wrong.")
    assert not is_backchannel("Yeah, but how far is it?")
    assert not is_backchannel("")


def test_the_wait_follows_the_cue_and_the_model() -> None:
    policy = TurnEndPolicy()
    assert policy.wait("question") == 0.0
    assert policy.wait("statement", 0.9) == policy.statement_s
    assert policy.wait("statement", 0.1) == policy.unsure_statement_s
    assert policy.wait("incomplete", 0.99) == policy.incomplete_s  # words beat the model
    with pytest.raises(ValueError):
        TurnEndPolicy(statement_s=3.0, incomplete_s=2.0)


def test_features_are_whisper_log_mel_of_the_last_8_seconds() -> None:
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    features = whisper_log_mel(short)
    assert features.shape == (80, 800) and features.dtype == np.float32
    assert features.max() - features.min() <= 2.0 + 1e-6  # clamped to 8 decades, scaled by 4
    # Short audio is padded at the front: the end of the window holds the sound.
    assert features[:, -50:].std() > features[:, :50].std()
    long = np.concatenate([np.zeros(16_000 * 4, np.float32), short, short])
    np.testing.assert_array_equal(whisper_log_mel(long), whisper_log_mel(long[-128_000:]))


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurnModel:
    model = SmartTurnModel()
    model.load()
    return model


def _say(tts: PiperTTS, text: str) -> np.ndarray:
    audio = np.concatenate([c.audio for c in tts.synthesize(text)])
    audio = resample_poly(audio, 16_000, tts.sample_rate).astype(np.float32)
    return np.concatenate([audio, np.zeros(1600, np.float32)])  # 100 ms into the pause


def test_the_model_tells_a_finished_question_from_a_hanging_clause(smart_turn, piper) -> None:  # type: ignore[no-untyped-def]
    done = [
        smart_turn.probability(_say(piper, t))
        for t in ("How far away is the Moon?", "What's your name?")
    ]
    hanging = [
        smart_turn.probability(_say(piper, t))
        for t in ("So I was thinking that maybe", "Tell me about Mars, and")
    ]
    assert min(done) > 0.8 and max(hanging) < 0.3, (done, hanging)


def test_hotwords_come_from_the_character_and_the_user() -> None:
    persona = (
        "You are Nova, the host of Talkie. Mars is the fourth planet. The Moon is far away. "
        "Astronomy is fun; astronomy is hard."
    )
    terms = salient_terms([persona])
    assert {"Nova", "Talkie", "Mars", "Moon"} <= set(terms)
    assert "You" not in terms and "Astronomy" not in terms  # used in lower case too
    assert introduced_names("Hi, my name is Priya Sharma.") == ["Priya Sharma"]
    assert introduced_names("I'm going home, I'm Daniel.") == ["Daniel"]
    assert introduced_names("i am tired") == []
    prompt = hotword_prompt(["Daniel", "Nova", "Nova"], "I was reading about")
    assert prompt == "Daniel, Nova. I was reading about"
    assert hotword_prompt(["Nova"]) == "Nova."
