"""Guardrails: a per-character policy applied around any brain (built-in or LLM).

- **Input:** a question touching a blocked topic or word, or flagged by the moderation endpoint,
  is not sent to the brain at all; the character says its refusal instead.
- **Output:** the reply is checked clause by clause *before* it is spoken (the session speaks
  clause by clause anyway, so this costs no latency): a clause with a blocked word or topic ends
  the reply there, and the refusal is said instead of it (or after what was already fine).
- **Moderation:** a pluggable HTTP endpoint configured on the server (``TALKIE_MODERATION_URL``,
  OpenAI ``/v1/moderations`` format or any JSON answer with ``"flagged"``), never per character:
  a URL from an API user would let them make the server call anything. Failures fail open (the
  conversation goes on, with a warning in the log) unless ``fail_closed`` is set.

Matching is on words, not substrings ("class" does not block "classic"), with plural and simple
inflection folded, so "weapons" matches a blocked "weapon". Topics are phrases; list the words
and phrases a topic is made of ("politics", "election", "vote for").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from talkie.brain.base import Brain, Turn
from talkie.brain.streaming import ClauseChunker
from talkie.errors import InvalidInputError

log = logging.getLogger(__name__)

DEFAULT_REFUSAL = "Sorry, I can't help with that. Is there something else I can do for you?"
MODERATION_URL_ENV = "TALKIE_MODERATION_URL"
MODERATION_KEY_ENV = "TALKIE_MODERATION_API_KEY"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class GuardrailPolicy:
    """What a character must not discuss or say. Empty lists block nothing."""

    blocked_topics: tuple[str, ...] = ()
    blocked_words: tuple[str, ...] = ()
    refusal: str = DEFAULT_REFUSAL
    moderation: bool = False  # also ask the server's moderation endpoint about each question
    fail_closed: bool = False  # if the moderation endpoint fails: refuse (True) or go on

    def __post_init__(self) -> None:
        if not self.refusal.strip():
            raise InvalidInputError("guardrails.refusal is empty; give the sentence to say")
        for phrase in (*self.blocked_topics, *self.blocked_words):
            if not _words(phrase):
                raise InvalidInputError(f"guardrails: {phrase[:40]!r} has no words to match")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> GuardrailPolicy:
        return cls(
            blocked_topics=tuple(str(t) for t in data.get("blocked_topics") or ()),
            blocked_words=tuple(str(w) for w in data.get("blocked_words") or ()),
            refusal=str(data.get("refusal") or DEFAULT_REFUSAL),
            moderation=bool(data.get("moderation", False)),
            fail_closed=bool(data.get("fail_closed", False)),
        )

    @property
    def active(self) -> bool:
        return bool(self.blocked_topics or self.blocked_words or self.moderation)

    def violation(self, text: str) -> str | None:
        """The blocked phrase ``text`` contains (as whole words), or ``None``."""
        words = _words(text)
        for phrase in (*self.blocked_words, *self.blocked_topics):
            wanted = _words(phrase)
            n = len(wanted)
            if any(words[i : i + n] == wanted for i in range(len(words) - n + 1)):
                return phrase
        return None


class Moderator(Protocol):
    async def flagged(self, text: str) -> bool:
        """True when the text must not be answered. Raises on failure."""
        ...


class HttpModerator:
    """A moderation endpoint: POST ``{"input": text}``; flagged if the JSON answer says so
    (``results[0].flagged`` as in OpenAI's API, or a top-level ``flagged``)."""

    def __init__(self, url: str, *, api_key: str = "", timeout: float = 1.5) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpModerator | None:
        env = os.environ if environ is None else environ
        url = env.get(MODERATION_URL_ENV, "").strip()
        return cls(url, api_key=env.get(MODERATION_KEY_ENV, "")) if url else None

    async def flagged(self, text: str) -> bool:
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
            r = await client.post(self.url, json={"input": text}, headers=self._headers)
            r.raise_for_status()
            body = r.json()
        if isinstance(body, dict) and isinstance(body.get("results"), list) and body["results"]:
            return bool(body["results"][0].get("flagged"))
        if isinstance(body, dict) and "flagged" in body:
            return bool(body["flagged"])
        raise ValueError("the moderation answer has no 'flagged' field")


class GuardedBrain:
    """Wraps a ``Brain`` with a ``GuardrailPolicy`` (same protocol, so it drops in anywhere)."""

    def __init__(
        self, inner: Brain, policy: GuardrailPolicy, *, moderator: Moderator | None = None,
        label: str = "",
    ) -> None:  # fmt: skip
        self.inner = inner
        self.policy = policy
        self.moderator = moderator
        self.name = inner.name
        self.label = label  # who this is in the log (a character id; never user text)
        self.refusals = 0

    def greeting(self) -> str:
        return self.inner.greeting()

    def prepare(self, history: Sequence[Turn], partial_text: str) -> None:
        """Forwarded to the wrapped brain when it prepares answers early (a local LLM)."""
        prepare = getattr(self.inner, "prepare", None)
        if callable(prepare) and not self.policy.violation(partial_text):
            prepare(history, partial_text)

    async def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]:
        reason = self.policy.violation(user_text) or await self._moderation_says_no(user_text)
        if reason:
            self._refused("question", reason)
            yield self.policy.refusal
            return
        chunker = ClauseChunker()
        deltas = self.inner.reply(history, user_text)
        try:
            async for delta in deltas:
                for clause in chunker.push(delta):
                    if self._blocked_output(clause):
                        yield " " + self.policy.refusal
                        return
                    yield clause + " "
            for clause in chunker.flush():
                if self._blocked_output(clause):
                    yield " " + self.policy.refusal
                    return
                yield clause + " "
        finally:
            close = getattr(deltas, "aclose", None)
            if close is not None:  # stop the brain's stream (an LLM request) at once
                await close()

    def _blocked_output(self, clause: str) -> bool:
        found = self.policy.violation(clause)
        if found:
            self._refused("reply", found)
        return found is not None

    async def _moderation_says_no(self, text: str) -> str | None:
        if not self.policy.moderation:
            return None
        if self.moderator is None:
            log.warning("guardrails: %s asks for moderation but none is configured (%s)",
                        self.label or "a character", MODERATION_URL_ENV)  # fmt: skip
            return "moderation unavailable" if self.policy.fail_closed else None
        try:
            return "moderation" if await self.moderator.flagged(text) else None
        except Exception as exc:  # network, HTTP status, malformed answer
            log.warning("guardrails: moderation failed for %s: %s", self.label or "a character",
                        type(exc).__name__)  # fmt: skip
            return "moderation unavailable" if self.policy.fail_closed else None

    def _refused(self, where: str, reason: str) -> None:
        self.refusals += 1
        # the blocked phrase is the policy's own words; the user's text is never logged
        log.info("guardrails: %s refused a %s (%s)", self.label or "a character", where, reason)


def _words(text: str) -> list[str]:
    return [_fold(w) for w in _WORD.findall(text.lower())]


def _fold(word: str) -> str:
    """Light inflection folding so "weapons"/"weapon", "gambling"/"gamble" match."""
    word = word.replace("'", "")
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if suffix == "s" and word.endswith("ss"):  # "class" is not a plural
            break
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            stem = word[: -len(suffix)] + keep
            return stem[:-1] if suffix == "ing" and stem.endswith("e") else stem
    return word.rstrip("e") if len(word) > 3 else word
