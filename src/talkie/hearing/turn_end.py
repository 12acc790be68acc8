"""Is the user done? Text cues and the end-of-turn wait.

People ask one question in two or three breaths ("I was reading about the Moon yesterday. ...
Why does it always show us the same side?"), pause in the middle of a clause ("so I was
wondering, um ..."), and answer "mm-hm" while someone else talks. The voice activity detector
only knows that a pause began; whether the *turn* is over depends on what was said, and a
little on how (the learned end-of-turn model, ``talkie.hearing.turn_model``).

``classify`` reads the transcript of the user's turn so far and names what it looks like:

- ``"incomplete"``: it ends in the middle of a clause (a conjunction, preposition, article,
  filler, a trailing comma) or is a preamble that announces more ("I have a question", "can I
  ask you something"): wait for the rest, up to the hard silence limit;
- ``"question"`` / ``"request"`` / ``"social"``: a question, a request ("tell me ...", "please
  explain"), or a complete social move (hello, thanks, bye, "my name is ... what's yours"):
  answer as soon as the pause is confirmed;
- ``"statement"``: a complete sentence that asks nothing ("I'm planning a trip to Mars."):
  people often go on after one, so wait longer before answering;
- ``"backchannel"``: "mm-hm", "yeah", "okay", "right" ... (said while the character talks,
  these do not take the turn);
- ``"empty"``: no words.

``TurnEndPolicy.wait`` turns that (and the end-of-turn model's probability, when there is
one) into the silence to wait after the end of speech before the answer may be heard. The
answer is prepared during that wait, so a long wait costs nothing when the user goes on.
The model's probability only lengthens waits for statements: on synthetic speech it is
unreliable for questions (measured: "What's your name?" 0.01-0.51 across espeak voices), and
the text is the stronger cue there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["TurnCue", "TurnEndPolicy", "classify", "is_backchannel", "words"]

TurnCue = Literal[
    "incomplete", "question", "request", "social", "statement", "backchannel", "empty"
]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A clause cannot end on these (a trailing "and", "the", "because", "um" ...).
_DANGLING = _set(
    """and or but so because cause since as if when while although though than whereas
    unless until till whether which um uh er erm uhm the a an my your their our its to of at
    for with about from by into onto under between through during without against towards
    toward is are was were am be been being very just also plus"""
)
_QUESTION_START = _set(
    """what what's whats who who's whos whom whose which where where's wheres when when's
    why why's how how's hows is are am was were do does did can could would should will
    shall may might must have has had isn't aren't wasn't weren't don't doesn't didn't can't
    couldn't wouldn't shouldn't won't haven't hasn't any anything"""
)
_REQUEST_START = _set(
    """tell explain describe show give name list say sing repeat teach help remind read
    define compare recommend suggest walk spell translate summarize summarise find let"""
)
_REQUEST_PHRASES = (
    "i want to know", "i would like to know", "i'd like to know", "i need to know",
    "i want to learn", "i'd like to learn", "i would like to learn", "can you", "could you",
    "would you", "will you", "please", "i wonder", "i'm wondering", "i am wondering",
    "i was wondering if", "i was wondering whether", "i was wondering why",
    "i was wondering how", "i was wondering what", "do you know",
)  # fmt: skip
# Preambles that promise more: the question is still to come.
_PREAMBLES = (
    "i have a question", "i've got a question", "i got a question", "quick question",
    "i have another question", "one more question", "another question", "a question",
    "can i ask you something", "can i ask you a question", "may i ask you something",
    "may i ask you a question", "let me ask you", "i want to ask you", "i'd like to ask you",
    "i wanted to ask", "here's the thing", "here is the thing", "the thing is",
    "so here's my question", "my question is", "i was wondering", "i'm wondering",
    "i am wondering", "you know what", "guess what", "listen", "so", "well", "okay so", "ok so",
    "um", "uh", "hmm", "so um", "so uh", "and", "also", "and also", "let me think",
    "let me see", "hold on", "wait", "one second", "one sec", "give me a second", "just a second",
)  # fmt: skip
_SUBJECTS = _set("""i we they he she""")
# ... but these before a subject close the clause ("so do I", "than we", "me too, I").
_CLOSES_SUBJECT = _set(
    """am do did does can will would could should have has was were are so than as me"""
)
_SOCIAL = (
    "hello", "hi", "hey", "good morning", "good afternoon", "good evening", "thanks",
    "thank you", "bye", "goodbye", "see you", "good night", "nice to meet you", "sorry",
    "how are you", "what's up", "my name is", "i'm called", "call me", "that's all",
    "that is all", "never mind", "nevermind", "no thanks", "no thank you", "got it",
    "i'm done", "i am done",
)  # fmt: skip
_BACKCHANNELS = _set(
    """mm mhm mmhmm mmhm hmm hm um uh uhhuh yeah yes yep yup ok okay right sure alright cool
    nice wow oh ah aha really great good totally exactly true indeed gotcha interesting"""
)  # fmt: skip
_BACKCHANNEL_PHRASES = frozenset(
    (
        "i see", "all right", "got it", "makes sense", "of course", "no way", "oh wow", "oh okay",
        "oh right", "yeah yeah", "okay okay", "uh huh", "mm hm", "mm hmm", "oh really",
        "that makes sense", "yeah right", "oh yeah", "ok ok", "right right", "i know",
        "oh i see", "okay yeah", "yeah okay", "sure sure", "oh nice", "oh cool",
    )
)  # fmt: skip


_TOPIC_QUESTION = re.compile(r",\s*(what|how|why|where|when|who|which)\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-case words (apostrophes kept, hyphens split), for matching cues."""
    return _WORD.findall(text.lower().replace("\u2019", "'").replace("-", " "))


def is_backchannel(text: str) -> bool:
    """True for short listener responses ("mm-hm", "yeah", "okay, right", "I see")."""
    ws = words(text)
    if not ws or len(ws) > 4:
        return False
    joined = " ".join(ws)
    if joined in _BACKCHANNEL_PHRASES:
        return True
    # "yeah okay", "mm hmm right": every word (or word pair) is a backchannel.
    i = 0
    while i < len(ws):
        pair = " ".join(ws[i : i + 2])
        if pair in _BACKCHANNEL_PHRASES:
            i += 2
        elif ws[i] in _BACKCHANNELS:
            i += 1
        else:
            return False
    return True


def _last_sentence(text: str) -> str:
    parts = [p for p in re.split(r"(?<=[.?!])\s+", text.strip()) if words(p)]
    return parts[-1] if parts else ""


def _starts_with(ws: list[str], phrases: tuple[str, ...]) -> bool:
    joined = " ".join(ws)
    return any(joined == p or joined.startswith(p + " ") for p in phrases)


def classify(text: str) -> TurnCue:
    """What the user's turn so far looks like (see the module docstring)."""
    stripped = text.strip()
    all_words = words(stripped)
    if not all_words:
        return "empty"
    if is_backchannel(stripped):
        return "backchannel"
    last = _last_sentence(stripped)
    ws = words(last) or all_words
    trimmed = stripped.rstrip()
    asks = ws[0] in _QUESTION_START and len(ws) >= 4
    if trimmed.endswith((",", "...", "\u2026", "-", "\u2014", ":", ";")) and not (
        asks and trimmed.endswith(",")  # "How far away is the Moon," (the recogniser's comma)
    ):
        return "incomplete"
    if not trimmed.endswith("?") and (
        ws[-1] in _DANGLING
        or (ws[-1] in _SUBJECTS and len(ws) > 1 and ws[-2] not in _CLOSES_SUBJECT)
    ):
        return "incomplete"
    joined = " ".join(ws)
    if joined in _PREAMBLES or any(joined == p or joined.endswith(" " + p) for p in _PREAMBLES):
        return "incomplete"
    if trimmed.endswith("?") or ws[0] in _QUESTION_START:
        return "question"
    if ws[0] in _REQUEST_START or _starts_with(ws, _REQUEST_PHRASES) or "please" in ws:
        return "request"
    # "Mars, how long is a day there" (the question word after a topic and a comma)
    if _TOPIC_QUESTION.search(last):
        return "question"
    if _starts_with(ws, _SOCIAL) or (len(ws) <= 3 and _starts_with(ws, _SOCIAL)):
        return "social"
    return "statement"


@dataclass(frozen=True)
class TurnEndPolicy:
    """Seconds of silence (after the end of speech) before an answer may be heard.

    ``complete_s`` applies to questions, requests and social moves: the endpoint's own
    confirmation (its hangover, ~0.3 s) is normally longer, so it is answered at once.
    ``statement_s`` is the wait after a complete statement (raised to ``unsure_statement_s``
    when the end-of-turn model says it is probably not finished); ``incomplete_s`` after a
    dangling clause or a preamble, the hard silence limit. Every wait is capped by
    ``incomplete_s``.
    """

    complete_s: float = 0.0
    statement_s: float = 1.35
    unsure_statement_s: float = 1.8
    incomplete_s: float = 2.2
    model_unsure_below: float = 0.35

    def __post_init__(self) -> None:
        if not 0 <= self.complete_s <= self.statement_s <= self.incomplete_s:
            raise ValueError("need 0 <= complete_s <= statement_s <= incomplete_s")
        if not 0.0 <= self.model_unsure_below <= 1.0:
            raise ValueError("model_unsure_below must be in [0, 1]")

    def wait(self, cue: TurnCue, model_probability: float | None = None) -> float:
        """The silence to wait after speech ended, for a turn that looks like ``cue``."""
        if cue in ("question", "request", "social", "backchannel"):
            return self.complete_s
        if cue == "statement":
            if model_probability is not None and model_probability < self.model_unsure_below:
                return min(self.unsure_statement_s, self.incomplete_s)
            return self.statement_s
        return self.incomplete_s  # incomplete or empty
