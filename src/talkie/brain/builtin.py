"""The built-in brain: small talk and answers from the persona's knowledge text, without an LLM.

Talkie must talk out of the box on a plain CPU, and no chat-capable LLM ships as a package, so this
brain does the honest minimum well:

- small talk (hello, how are you, who are you, what can you do, thanks, bye, "say that again",
  "okay"), recognised from normalised words with fuzzy matching, so ASR slips ("helo", "thnks")
  and phrasing variants still work;
- questions answered with the one or two best sentences of the knowledge text
  (``talkie.brain.knowledge``) or of the best passage of the character's knowledge base (a
  ``Retriever``, see ``talkie.brain.kb``), naming the document it comes from ("According to the
  leave policy, ..."), never anything else: when nothing matches well enough it says it does not
  know;
- a request to repeat when the input is empty or only "uh"/"hm";
- with ``tools`` and a ``ToolExecutor``: requests that match a tool's description or examples
  run that tool (asking for missing arguments first), and the outcome is said in a short
  sentence (``talkie.brain.builtin_tools``).

Replies are deterministic (the same history and input give the same words) and streamed in word
chunks, the first one at once.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from talkie.brain.base import ToolExchange, Turn, latest_sight
from talkie.brain.builtin_tools import BuiltinToolUse, spoken_outcome
from talkie.brain.kb.retrieval import Passage, Retriever, spoken_source
from talkie.brain.knowledge import STOP_WORDS, KnowledgeHit, KnowledgeIndex, normalize, tokenize
from talkie.brain.persona import DEFAULT_PERSONA, Persona
from talkie.brain.rapport import (
    asks_own_name,
    question_parts,
    self_description,
    user_name,
    without_intro,
)
from talkie.brain.sight import sight_answer
from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.spec import Tool

__all__ = ["BuiltinBrain", "BuiltinOptions"]


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


log = logging.getLogger(__name__)

# Phrases per intent, as they sound after ``normalize`` (contractions expanded).
_INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "greeting": (
        "hello", "hi", "hey", "hiya", "heya", "howdy", "greetings", "hallo", "yo",
        "good morning", "good afternoon", "good evening", "morning", "hi there", "hello there",
    ),
    "how_are_you": (
        "how are you", "how are you doing", "how is it going", "how are things", "how do you do",
        "how have you been", "what is up", "whats up", "sup", "are you ok", "are you okay",
        "are you well", "how you doing", "how is your day", "how are you feeling", "you alright",
    ),
    "who": (
        "who are you", "what are you", "what is your name", "your name", "introduce yourself",
        "tell me about yourself", "are you a robot", "are you human", "are you real",
        "are you an ai", "are you a person", "who am i talking to", "who is this",
        "what should i call you", "what do i call you", "about yourself", "about you",
        "yourself", "what is yours", "and yours", "and you", "your story", "who made you",
        "where are you from", "what is your job", "where do you work", "who do you work for",
    ),
    "capabilities": (
        "what can you do", "what do you do", "how can you help", "can you help", "help me",
        "help", "what can i ask", "what do you know", "what can you tell me",
        "what are you good at", "what can you help with", "what should i ask",
    ),
    "thanks": (
        "thanks", "thank you", "thank", "cheers", "appreciate it", "thx", "ty",
        "much appreciated", "many thanks",
    ),
    "bye": (
        "bye", "goodbye", "good bye", "see you", "see ya", "farewell", "good night",
        "talk later", "talk to you later", "have to go", "got to go", "gotta go", "that is all",
        "that is it", "i am done", "catch you later", "take care", "bye bye",
    ),
    "repeat": (
        "say that again", "repeat", "repeat that", "pardon", "come again", "what did you say",
        "sorry what", "one more time", "i did not catch that", "i did not hear you",
        "say it again", "again please",
    ),
    "ack": (
        "ok", "okay", "cool", "great", "nice", "alright", "all right", "got it", "i see", "good",
        "perfect", "awesome", "yes", "yeah", "yep", "fine", "sure", "sounds good", "wow",
        "interesting", "understood",
    ),
    "decline": (
        "no", "nope", "no thanks", "no thank you", "not really", "nothing else", "not now",
        "nah", "i am good", "i am fine",
    ),
}  # fmt: skip
# When several intents are present the reply follows this order ("thanks, bye" -> goodbye).
_PRIORITY = (
    "bye", "decline", "thanks", "repeat", "who", "capabilities", "how_are_you", "greeting", "ack",
)  # fmt: skip
# Words that add nothing beyond an intent ("hello there, Talkie, how are you today?").
_FILLER = _wordset(
    """please so well um uh er erm ah oh hm hmm mm and the a an very much lot again there today
    then just really too for everything all your you me my it that this is are i am be there
    now tonight anyway again right wait sorry hold on excuse actually little"""
)
_NOISE = _wordset("um uh er erm ah oh hm hmm mm mhm uhm huh eh")
# Words that point back at something said before ("how far away is IT?").
_REFERRING = _wordset("it its that this there they them those these he she him her one")
_WORD = re.compile(r"[a-z0-9]+")
_CHUNK = re.compile(r"\S+\s*")
# Scoring a long knowledge text takes milliseconds: then it runs off the event loop.
_THREAD_ABOVE_PASSAGES = 2_000


@dataclass(frozen=True)
class BuiltinOptions:
    """Tuning of the built-in brain.

    ``min_coverage``: a knowledge sentence is used as an answer only if it contains more than
    this share of the question's important words (IDF-weighted); lower answers more and
    guesses more.
    ``second_ratio``: a second sentence is added when it scores at least this share of the first.
    ``max_answer_chars``: spoken answers stay short.
    ``min_passage_score``: a knowledge-base passage found with embeddings is used only if its
    hybrid score (cosine + keyword bonus) reaches this. Calibrated for all-MiniLM-L6-v2 on the
    handbook test set (tests/kb): its on-topic questions scored 0.34-0.77, unrelated ones
    0.10-0.25, near misses that share a word with a passage ("best programming *language*" vs
    language classes) about 0.30-0.36; another model needs its own value. Without embeddings,
    passages need ``min_coverage`` like sentences of the persona's knowledge.
    ``passages``: how many passages to ask the retriever for (the best one is spoken).
    ``lead_chars``: when no sentence of the passage matches the question's words (a paraphrase
    found by meaning), the answer is the passage's opening, up to about this many characters.
    """

    min_coverage: float = 0.5
    second_ratio: float = 0.6
    max_answer_chars: int = 400
    fuzzy_ratio: float = 0.8
    min_passage_score: float = 0.33
    passages: int = 3
    lead_chars: int = 300

    def __post_init__(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0 or not 0.0 < self.second_ratio <= 1.0:
            raise ValueError("min_coverage and second_ratio must be in (0, 1]")
        if not 0.5 <= self.fuzzy_ratio <= 1.0:
            raise ValueError("fuzzy_ratio must be in [0.5, 1]")


@functools.lru_cache(maxsize=4096)
def _similar(a: str, b: str, threshold: float) -> bool:
    if a == b:
        return True
    # Short words must match exactly: "hi" ~ "he" would be noise, not robustness.
    shorter, longer = sorted((len(a), len(b)))
    if shorter < 4 or 2 * shorter < threshold * (shorter + longer):
        return False  # the length difference alone rules it out (cheap, and most pairs)
    matcher = difflib.SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold


class BuiltinBrain:
    """Zero-configuration brain: greeting, small talk and answers from ``persona.knowledge`` and,
    when given, a ``retriever`` over the character's knowledge base. ``tools`` are used when an
    ``executor`` runs them."""

    name = "builtin"

    def __init__(
        self,
        *,
        persona: Persona = DEFAULT_PERSONA,
        options: BuiltinOptions | None = None,
        retriever: Retriever | None = None,
        tools: Sequence[Tool] = (),
        executor: ToolExecutor | None = None,
        tool_choice: str | dict[str, Any] = "auto",
        continue_after: Sequence[ToolExchange] = (),
    ) -> None:
        self.persona = persona
        self.options = options or BuiltinOptions()
        self.retriever = retriever
        self.continue_after = tuple(continue_after)
        self.tool_use = (
            BuiltinToolUse(tools, executor, tool_choice=tool_choice)
            if tools and executor is not None and tool_choice != "none"
            else None
        )
        # Built once: indexing is the expensive part, questions are cheap.
        self._index = KnowledgeIndex(persona.knowledge)
        self._phrases = {
            intent: tuple(tuple(phrase.split()) for phrase in phrases)
            for intent, phrases in _INTENT_PHRASES.items()
        }
        self._name_words = frozenset(_WORD.findall(normalize(persona.name)))

    def greeting(self) -> str:
        """What the character says first."""
        return self.persona.greeting

    async def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]:
        """Stream the reply to ``user_text`` in word chunks; the first chunk comes at once."""
        plan = self.tool_use.plan(user_text) if self.tool_use is not None else None
        if self.continue_after:
            text = " ".join(spoken_outcome(e.result) for e in self.continue_after)
        elif plan is not None and self.tool_use is not None:
            if plan.missing:
                text = self.tool_use.ask(plan)
            else:
                if plan.tool.kind == "webhook":
                    # Said while the service answers (the session speaks it before the call).
                    yield "Let me check. "
                text = await self.tool_use.run(plan)
        elif self.retriever is not None or len(self._index) > _THREAD_ABOVE_PASSAGES:
            # A knowledge-base search blocks (SQLite, the embedding model): off the event loop.
            text = await asyncio.to_thread(self.answer, history, user_text)
        else:
            text = self.answer(history, user_text)
        for chunk in _CHUNK.findall(text):
            yield chunk
            # Let the session (and a barge-in) run between chunks; cancellation lands here.
            await asyncio.sleep(0)

    def small_talk(self, user_text: str) -> list[str]:
        """The small-talk intents of ``user_text`` ("greeting", "who", "capabilities", ...,
        most important first) when that is all it is; ``[]`` when it has content words to
        look up."""
        intents, content = self._intents(_WORD.findall(normalize(user_text)))
        return [] if content else intents

    def knows_about(self, user_text: str) -> bool:
        """Does the persona's own knowledge text have a sentence that answers ``user_text``?
        A question said in several breaths is looked up as ``answer`` does: each part with the
        rest as its context ("I was reading about the Moon. How far away is it?")."""
        return any(self._search(query, context) for query, context in self._lookups(user_text))

    def _lookups(self, text: str) -> list[tuple[str, str]]:
        """(query, context) to look ``text`` up by, in order: said in several breaths, each part
        but greetings with the whole as its context, then the whole; else just the whole."""
        parts = question_parts(text)
        if len(parts) < 2:
            return [(text, "")]
        return [(p, text) for p in parts if not self._greets_only(p)] + [(text, "")]

    def sees(self, history: Sequence[Turn], user_text: str) -> str | None:
        """The answer when ``user_text`` asks what the character sees (its camera, the shared
        screen; ``talkie.brain.sight``), else None."""
        return sight_answer(latest_sight(history), user_text)

    def dont_know(self) -> str:
        """The honest "I don't know" (naming what it can answer about)."""
        return self._dont_know()

    def answer(self, history: Sequence[Turn], user_text: str) -> str:
        """The whole reply as one string (``reply`` streams this)."""
        seen = self.sees(history, user_text)
        if seen is not None:
            return seen
        name = user_name((), user_text)
        text = without_intro(user_text) if name else user_text
        greet = f"Nice to meet you, {name}! " if name else ""
        if asks_own_name(text):
            theirs = user_name(history)
            return greet + (
                f"You're {theirs}." if theirs else "You haven't told me your name yet. What is it?"
            )
        if name and not _WORD.findall(normalize(text)):
            return f"{greet}I'm {self.persona.name}. How can I help you?"
        parts = question_parts(text)
        if len(parts) > 1:
            # Said in several breaths: look up the question with the rest as its context ("I was
            # reading about the Moon. How far away is it?"); if the question itself names
            # nothing ("can you explain it?"), what the other parts name; then all of it.
            if not greet and any(self._greets_only(p) for p in parts):
                greet = "Hi! "
            first = ""
            for query, context in self._lookups(text):
                reply, known = self._respond(history, query, context=context)
                if known:
                    return greet + reply.removeprefix("Hi! ")
                first = first or reply
            return greet + first.removeprefix("Hi! ")
        reply, _ = self._respond(history, text)
        return greet + reply

    def _respond(
        self, history: Sequence[Turn], user_text: str, context: str = ""
    ) -> tuple[str, bool]:
        """The reply to ``user_text``, and whether it says something (not "I don't know")."""
        words = _WORD.findall(normalize(user_text))
        if not words or all(word in _NOISE for word in words):
            return self._clarify(history), False
        intents, content = self._intents(words)
        turn = sum(1 for t in history if t.role == "assistant")
        if intents and not content:
            return self._small_talk(intents, history), True
        hits = self._search(user_text, context)
        prefix = "Hi! " if "greeting" in intents else ""
        # Only a question with content words goes to the knowledge base: "what about that?" would
        # otherwise match some passage by sheer similarity of phrasing.
        query = f"{context} {user_text}".strip() if context else user_text
        passage = self._best_passage(query) if content else None
        if passage is not None and (not hits or passage.coverage > hits[0].coverage):
            # The knowledge base wins unless the persona's own text matches the question's words
            # better (its sentences passed the stricter word-coverage test).
            log.debug("knowledge-base answer: score %.2f, coverage %.2f",
                      passage.score, passage.coverage)  # fmt: skip
            return prefix + self._passage_answer(passage, user_text), True
        if hits:
            log.debug("knowledge answer: %d sentence(s), coverage %.2f",
                      len(hits), hits[0].coverage)  # fmt: skip
            return prefix + self._phrase_answer(hits, turn), True
        if intents and len(content) <= 1 and set(intents) - {"greeting", "ack", "decline"}:
            # "what can you do for me mate": one unexplained word does not make a question.
            return self._small_talk(intents, history), True
        if len(words) == 1 and len(words[0]) <= 2:
            return self._clarify(history), False
        if not intents and not content:
            # Only function words ("what about that?"): nothing to look up, so ask.
            return "Could you tell me a little more about what you'd like to know?", False
        return prefix + self._dont_know(), False

    # -- understanding ---------------------------------------------------------------------

    def _greets_only(self, text: str) -> bool:
        intents, content = self._intents(_WORD.findall(normalize(text)))
        return intents == ["greeting"] and not content

    def _intents(self, words: list[str]) -> tuple[list[str], list[str]]:
        """Intents found in ``words`` (by priority) and the content words no intent explains."""
        covered = [False] * len(words)
        found: list[str] = []
        for intent, phrases in self._phrases.items():
            for phrase in phrases:
                span = self._find(words, phrase)
                if span is None:
                    continue
                if intent not in found:
                    found.append(intent)
                for index in range(*span):
                    covered[index] = True
        content = [
            word
            for word, is_covered in zip(words, covered, strict=True)
            if not is_covered
            and word not in _FILLER
            and word not in STOP_WORDS
            and not any(_similar(word, name, 0.8) for name in self._name_words)
        ]
        found.sort(key=_PRIORITY.index)
        return found, content

    def _find(self, words: list[str], phrase: tuple[str, ...]) -> tuple[int, int] | None:
        ratio = self.options.fuzzy_ratio
        size = len(phrase)
        for start in range(len(words) - size + 1):
            if all(_similar(words[start + k], phrase[k], ratio) for k in range(size)):
                return start, start + size
        return None

    def _search(self, question: str, context: str = "") -> list[KnowledgeHit]:
        asked = set(_WORD.findall(normalize(question)))
        if context and asked & _REFERRING:
            # "How far away is it?" after "I was reading about the Moon": "it" is what was said
            # around the question, so those words (the ones the knowledge knows) join it, and
            # only the best sentence is said.
            around = [
                w for w in dict.fromkeys(_WORD.findall(normalize(context)))
                if w not in asked and any(self._index.knows(t) for t in tokenize(w))
            ]  # fmt: skip
            hits = self._index.search(" ".join([question, *around]), limit=1)
        else:
            hits = self._index.search(question, limit=2)
        if not hits or hits[0].coverage <= self.options.min_coverage:
            return []
        best = hits[0]
        chosen = [best]
        asked = set(_WORD.findall(normalize(question)))
        about = _names(best.text) & asked  # the named thing the question is about, if any
        for hit in hits[1:]:
            if (
                hit.score >= self.options.second_ratio * best.score
                and hit.coverage > self.options.min_coverage
                and len(best.text) + len(hit.text) <= self.options.max_answer_chars
                # A second sentence adds to the first; it must not be about something else
                # ("How far away is the Moon?" -> not the Sun's distance).
                and not (about and not _names(hit.text) & about)
            ):
                chosen.append(hit)
        return sorted(chosen, key=lambda hit: hit.position)  # in the text's own order

    def _best_passage(self, question: str) -> Passage | None:
        if self.retriever is None:
            return None
        try:
            passages = self.retriever.search(question, self.options.passages)
        except Exception as exc:  # noqa: BLE001 - a broken index must not silence the character
            # Only the type is logged: messages (an FTS syntax error) can quote the question.
            log.warning("knowledge-base search failed (%s): answering without it",
                        type(exc).__name__)  # fmt: skip
            return None
        if not passages:
            return None
        best = passages[0]
        if best.similarity is not None:
            confident = best.score >= self.options.min_passage_score
        else:
            confident = best.coverage > self.options.min_coverage
        return best if confident else None

    # -- speaking --------------------------------------------------------------------------

    def _phrase_answer(self, hits: list[KnowledgeHit], turn: int) -> str:
        body = " ".join(hit.text for hit in hits)
        if len(body) > self.options.max_answer_chars:
            body = body[: self.options.max_answer_chars].rsplit(" ", 1)[0] + "..."
        # A fixed lead-in every time sounds robotic; rotating by turn keeps it deterministic.
        lead = ("Here is what I know: ", "", "Sure. ", "")[turn % 4]
        return lead + body

    def _passage_answer(self, passage: Passage, question: str) -> str:
        """The passage's best sentences, introduced by its source ("According to X, ...")."""
        index = KnowledgeIndex(passage.text)
        hits = [hit for hit in index.search(question, limit=2)
                if hit.coverage > self.options.min_coverage]  # fmt: skip
        if hits:
            best = hits[0]
            chosen = [best] + [
                hit for hit in hits[1:]
                if hit.score >= self.options.second_ratio * best.score
                and len(best.text) + len(hit.text) <= self.options.max_answer_chars
            ]  # fmt: skip
            body = " ".join(hit.text for hit in sorted(chosen, key=lambda hit: hit.position))
        else:
            # Found by meaning, not by words: the opening of a section states its main rule.
            body = ""
            for sentence in index.sentences():
                if body and len(body) + 1 + len(sentence) > self.options.lead_chars:
                    break
                body = f"{body} {sentence}".strip()
        if not body:
            body = " ".join(passage.text.split())
        limit = self.options.max_answer_chars
        if len(body) > limit:
            body = body[:limit].rsplit(" ", 1)[0] + "..."
        return f"According to {spoken_source(passage.source, passage.title)}, {_continue(body)}"

    def _topics(self) -> str:
        topics = []
        for topic in self._index.topics[:4]:
            # "Opening hours" -> "opening hours", but keep names and acronyms ("Acme", "FAQ").
            if len(topic) > 1 and topic[0].isupper() and topic[1:2].islower():
                topic = topic[0].lower() + topic[1:]
            topics.append(topic)
        if not topics:
            return ""
        if len(topics) == 1:
            return topics[0]
        return ", ".join(topics[:-1]) + " or " + topics[-1]

    def _dont_know(self) -> str:
        topics = self._topics()
        if topics:
            return f"I'm sorry, I don't know that yet. You can ask me about {topics}."
        return "I'm sorry, I don't know that yet."

    def _clarify(self, history: Sequence[Turn]) -> str:
        first = "Sorry, I didn't catch that. Could you say it again?"
        last = _last_assistant(history)
        if last == first:
            return "I still didn't get that. Could you say it in a few more words?"
        return first

    def _small_talk(self, intents: list[str], history: Sequence[Turn]) -> str:
        main = intents[0]
        name = self.persona.name
        topics = self._topics()
        if main == "bye":
            return "Goodbye! It was nice talking to you."
        if main == "thanks":
            return "You're welcome! Is there anything else I can help with?"
        if main == "repeat":
            last = _last_assistant(history)
            return f"Sure. {last}" if last else self.persona.greeting
        if main == "who":
            about = f" I can answer questions about {topics}." if topics else " I'm happy to chat."
            return f"{self_description(self.persona)}{about}"
        if main == "capabilities":
            if topics:
                return f"I can chat with you and answer questions about {topics}."
            if len(self._index) or self.retriever is not None:
                return "I can chat with you and answer questions about what I've been told."
            return "I can say hello and chat a little, but I don't know many facts yet."
        prefix = "Hi! " if "greeting" in intents and main != "greeting" else ""
        if main == "how_are_you":
            return prefix + "I'm doing great, thanks for asking! How can I help you?"
        if main == "greeting":
            greeted_before = any(t.role == "assistant" for t in history)
            if greeted_before:
                return "Hi again! What would you like to know?"
            return f"Hello! I'm {name}. How can I help you today?"
        if main == "decline":
            return "Alright. I'm here if you need anything."
        return "Okay! What else would you like to know?"


_NAME = re.compile(r"(?<=[\w,;:] )[A-Z][a-z]+")


def _names(sentence: str) -> set[str]:
    """The capitalised words inside ``sentence`` (names of things), lower-cased."""
    return {n.lower() for n in _NAME.findall(sentence)}


def _continue(sentence: str) -> str:
    """``sentence`` continued after "According to X, ": a capitalised function word is lowered
    ("The primary..." -> "the primary..."); names and acronyms keep their capitals."""
    first, _, rest = sentence.partition(" ")
    if first[:1].isupper() and first[1:].islower() and first.lower() in STOP_WORDS:
        return f"{first.lower()} {rest}".rstrip()
    return sentence


def _last_assistant(history: Sequence[Turn]) -> str:
    for turn in reversed(history):
        if turn.role == "assistant" and turn.text.strip():
            return turn.text.strip()
    return ""
