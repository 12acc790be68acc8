"""The local-LLM brain: answers with the model on this machine, or with the built-in brain when
the model cannot answer in time.

A voice answer that starts late is worse than a plainer answer on time, so the model gets a
first-token budget per turn (``first_text_budget_s``): when it has not produced its first words
by then, the request is closed and the built-in brain answers (it has nothing to unsay: nothing
was spoken yet). While the model is still loading, or after a turn where it was too slow (the
machine is busy: other sessions rendering, a tool running), the built-in brain answers the next
``cooldown_turns`` turns, then the model is tried again. A reply that stalls after it started
ends where it is (what was said stays said).

A small model also answers questions it was given nothing for (opening hours, services, a phone
number) with confident inventions, whatever the prompt says. So a question that is not small talk
goes to the model only when something known covers it (a knowledge-base passage with most of its
words or nearly its meaning, or a sentence of the persona's knowledge); otherwise the character
says honestly that it does not know. With a model that contradicts the passages it is given
(the 0.5B one: ``LocalModelSpec.facts == "extractive"``), fact questions are answered with the
passage's own sentences by the built-in brain, and the model holds the conversation.

Everything else is the OpenAI-compatible brain talking to the local llama.cpp server
(``talkie.brain.local.engine``): streaming, tools (with Qwen's bare-JSON calls understood),
knowledge-base passages placed just before the question so the persona and the history stay in
the KV cache between turns (``cache_prompt``), and cancellation on barge-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkie.brain.base import BrainUnavailable, ToolExchange, Turn
from talkie.brain.builtin import BuiltinBrain
from talkie.brain.kb.retrieval import Retriever
from talkie.brain.local.catalog import MODELS
from talkie.brain.local.engine import AttachedEngine, EngineEndpoint, EngineOptions, LocalEngine
from talkie.brain.local.install import find_model
from talkie.brain.openai_compat import LLMOptions, OpenAICompatibleBrain
from talkie.brain.openai_tools import DeferredToolCalls
from talkie.brain.persona import DEFAULT_PERSONA, Persona
from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.spec import Tool
from talkie.errors import InvalidInputError

__all__ = [
    "LocalBrain",
    "LocalBrainOptions",
    "attach_engine",
    "engine_kind",
    "node_engine",
    "shared_engine",
]

log = logging.getLogger(__name__)

_ENGINES: dict[tuple[str, EngineOptions], LocalEngine | AttachedEngine] = {}
_SAID_BY_PERSONA = frozenset({"who", "capabilities"})
_QUESTION = re.compile(
    r"\?|^\W*(?:what|when|where|who|whom|whose|why|which|how|do|does|did|can|could|is|are|was|"
    r"were|will|would|should|may|might|have|has|tell me|i (?:want|need|would like) to know)\b",
    re.IGNORECASE,
)
_ENGINES_LOCK = threading.Lock()


def attach_engine(endpoint: EngineEndpoint) -> None:
    """From now on this process's engine for ``endpoint.name`` is the one another process of
    this machine loaded (a session worker uses the web process's model)."""
    with _ENGINES_LOCK:
        _ENGINES[(endpoint.name, EngineOptions())] = AttachedEngine(endpoint)


def node_engine(timeout: float = 0.0) -> EngineEndpoint | None:
    """The endpoint of the model this process loaded (default options), waiting up to
    ``timeout`` s for it to be ready; ``None`` if there is none, or it is not ready."""
    with _ENGINES_LOCK:
        engines = [e for (_, opts), e in _ENGINES.items() if opts == EngineOptions()]
    for engine in engines:
        if isinstance(engine, LocalEngine) and (engine.ready or engine.wait_ready(timeout)):
            return engine.endpoint()
    return None


def engine_kind() -> str | None:
    """Whose local LLM this process's brains use: "attached" (another process's, through its
    endpoint), "own" (loaded here), or None (none yet)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
    if not engines:
        return None
    return "attached" if all(isinstance(e, AttachedEngine) for e in engines) else "own"


def shared_engine(
    name: str | None = None, *, options: EngineOptions | None = None
) -> LocalEngine | AttachedEngine:
    """The process-wide engine for the installed model ``name`` (default:
    ``$TALKIE_LOCAL_MODEL`` or the default model), loading in the background. Raises
    ``InvalidInputError`` when the model is not installed."""
    found = find_model(name)
    if found is None:
        raise InvalidInputError(
            "the local LLM is not installed: run `make setup` (or "
            "`python scripts/fetch_local_llm.py`), or choose the built-in brain"
        )
    spec, path = found
    opts = options or EngineOptions()
    with _ENGINES_LOCK:
        engine = _ENGINES.get((spec.name, opts))
        if engine is None:
            engine = _ENGINES[(spec.name, opts)] = LocalEngine(path, name=spec.name, options=opts)
    engine.start()
    return engine


@dataclass(frozen=True)
class LocalBrainOptions:
    """``first_text_budget_s``: the model must have started its answer by then, or the built-in
    brain answers. ``cooldown_turns``: after a too-slow turn, how many turns the built-in brain
    answers before the model is tried again. ``min_passage_score``: passages below this hybrid
    score are not shown to the model (a small model uses whatever it is given), nor those under
    ``passage_ratio`` of the best one's score. ``grounding_*``: a question that is not small
    talk is given to the model only if a passage covers this share of its words or has this
    cosine (measured on the shop handbook: 33 of 38 answerable questions pass, 13 of 14
    unanswerable ones do not); otherwise the answer is an honest "I don't know"."""

    first_text_budget_s: float = 2.0
    cooldown_turns: int = 2
    max_tokens: int = 120
    temperature: float = 0.3
    knowledge_passages: int = 2
    min_passage_score: float = 0.33
    passage_ratio: float = 0.85
    max_context_chars: int = 900
    grounding_coverage: float = 0.5
    grounding_similarity: float = 0.5
    facts: str | None = None  # None: the model's catalogue entry decides ("model"/"extractive")
    max_history_turns: int = 8


# A spoken answer must start within the live latency goals (0.9 s from the end of speech to
# the first sound at the browser): the request starts at the speculative final (~0.1-0.5 s
# after the user stops), and the model, prepared from the partial transcripts, needs 0.17 s
# median on a quiet machine (bench/brain.py); when it is not that quick, the built-in brain's
# answer on time is better than the model's late one.
LIVE_OPTIONS = LocalBrainOptions(first_text_budget_s=0.5)


class LocalBrain:
    """The default brain when the local model is installed (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        *,
        engine: LocalEngine | AttachedEngine,
        persona: Persona = DEFAULT_PERSONA,
        retriever: Retriever | None = None,
        tools: Sequence[Tool] = (),
        executor: ToolExecutor | None = None,
        options: LocalBrainOptions | None = None,
        tool_choice: Any = "auto",
        continue_after: Sequence[ToolExchange] = (),
    ) -> None:
        self.engine = engine
        self.persona = persona
        self.options = options or LocalBrainOptions()
        self.fallback = BuiltinBrain(
            persona=persona, retriever=retriever, tools=tools, executor=executor,
            tool_choice=tool_choice, continue_after=continue_after,
        )  # fmt: skip
        self._llm_args: dict[str, Any] = dict(
            persona=persona, retriever=retriever, tools=tools, executor=executor,
            tool_choice=tool_choice, continue_after=continue_after,
        )  # fmt: skip
        self._llm: OpenAICompatibleBrain | None = None
        self._cooldown = 0
        self._preparing = threading.Lock()
        self._prepared = ""
        spec = MODELS.get(engine.name)
        self._facts = self.options.facts or (spec.facts if spec else "model")
        #: Which brain produced the last reply ("llm" or "builtin") and why.
        self.last_route = ""

    def greeting(self) -> str:
        return self.persona.greeting

    @property
    def llm(self) -> OpenAICompatibleBrain | None:
        """The model's brain, once the engine is ready (``None`` before)."""
        if self._llm is None and self.engine.ready:
            opts = self.options
            llm_options = LLMOptions(
                base_url=self.engine.base_url, model=self.engine.name,
                api_key=self.engine.api_key, temperature=opts.temperature,
                max_tokens=opts.max_tokens, timeout_first_token_s=opts.first_text_budget_s,
                timeout_stall_s=5.0, timeout_total_s=60.0,
                knowledge_passages=opts.knowledge_passages,
                min_passage_score=opts.min_passage_score,
                max_context_chars=opts.max_context_chars,
                max_history_turns=opts.max_history_turns, context_placement="question",
                cache_prompt=True, compact_passages=True, passage_ratio=opts.passage_ratio,
            )  # fmt: skip
            self._llm = OpenAICompatibleBrain(
                options=llm_options, transport=self.engine.transport(), **self._llm_args
            )
        return self._llm

    async def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]:
        llm = self.llm
        if llm is None:
            self.engine.start()  # after a failure: try loading again for later turns
            async for text in self._builtin(history, user_text, "loading"):
                yield text
            return
        if self._cooldown > 0:
            self._cooldown -= 1
            async for text in self._builtin(history, user_text, "cooldown"):
                yield text
            return
        if self.fallback.sees(history, user_text) is not None:
            # What the screen says, line by line, and who is in view: the small model
            # miscounts lines and paraphrases text that must be read exactly.
            async for text in self._builtin(history, user_text, "sight"):
                yield text
            return
        intents = self.fallback.small_talk(user_text)
        if intents and intents[0] in _SAID_BY_PERSONA:
            # Who it is and what it can do are the persona's words: the small model calls
            # itself human, or lists services it was never told about.
            async for text in self._builtin(history, user_text, "persona"):
                yield text
            return
        # Only questions ask for facts: "I'm just browsing" is the model's to answer.
        small_talk = bool(intents) or not _QUESTION.search(user_text)
        if not small_talk and not await self._grounded(user_text):
            # A small model invents shop hours and services it was never told about: a question
            # for facts that nothing known covers gets the honest answer instead.
            self.last_route = "builtin:ungrounded"
            yield self.fallback.dont_know()
            return
        if not small_talk and self._facts == "extractive":
            async for text in self._builtin(history, user_text, "facts"):
                yield text
            return
        said = False
        try:
            async with contextlib.aclosing(llm.reply(history, user_text)) as deltas:  # type: ignore[type-var]
                async for text in deltas:
                    said = said or bool(text.strip())
                    yield text
            self.last_route = "llm"
        except DeferredToolCalls:
            raise
        except BrainUnavailable as exc:
            if exc.reason == "first_token":
                self._cooldown = self.options.cooldown_turns
            if said or exc.partial:
                log.warning("local LLM: the answer stopped (%s)", exc.reason)
                self.last_route = "llm"
                return
            log.info("local LLM: %s; the built-in brain answers", exc)
            async for text in self._builtin(history, user_text, exc.reason):
                yield text

    async def _grounded(self, user_text: str) -> bool:
        """Small talk, or a question something known answers: a knowledge-base passage that
        contains at least half of the question's (IDF-weighted) words or means nearly the same
        (cosine >= ``grounding_similarity``), or a sentence of the persona's knowledge text."""
        if self.fallback.knows_about(user_text):
            return True
        retriever = self.fallback.retriever
        if retriever is None:
            return True  # nothing to check against: the persona prompt is all the model has
        opts = self.options
        try:
            passages = await asyncio.to_thread(retriever.search, user_text, 3)
        except Exception:  # noqa: BLE001 - the model still answers without the check
            return True
        return any(
            p.coverage >= opts.grounding_coverage
            or (p.similarity or 0.0) >= opts.grounding_similarity
            for p in passages
        )

    async def _builtin(
        self, history: Sequence[Turn], user_text: str, why: str
    ) -> AsyncIterator[str]:
        self.last_route = f"builtin:{why}"
        async with contextlib.aclosing(self.fallback.reply(history, user_text)) as deltas:  # type: ignore[type-var]
            async for text in deltas:
                yield text

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()

    def prepare(self, history: Sequence[Turn], partial_text: str) -> None:
        """The user is still speaking: process the prompt for what they said so far (persona,
        history, the passages it finds, the question's start) into the KV cache, in the
        background, so the answer's own request only processes the last words. At most one at
        a time; a few new words are needed for another."""
        llm = self.llm
        words = partial_text.split()
        if llm is None or len(words) < 3 or self._preparing.locked():
            return
        if len(words) < len(self._prepared.split()) + 3 and partial_text.startswith(self._prepared):
            return
        self._prepared = partial_text
        turns = list(history)

        def run() -> None:
            with self._preparing:
                try:
                    messages = asyncio.run(llm.request_messages(turns, partial_text))
                except Exception as exc:  # noqa: BLE001 - preparing is only an optimisation
                    log.debug("local LLM: preparing failed (%s)", type(exc).__name__)
                    return
                self.engine.prefill(messages)

        threading.Thread(target=run, name="talkie-llm-prepare", daemon=True).start()

    def warm(self) -> None:
        """Process the persona's system prompt now, in the background, so the first answer
        finds it in the KV cache (a long persona costs seconds on a CPU)."""
        llm = self.llm
        if llm is None:
            return
        messages = llm.build_messages([], "Hello")[:1]
        threading.Thread(
            target=self.engine.prefill, args=(messages,), name="talkie-llm-prefill", daemon=True
        ).start()


def local_model_path(name: str | None = None) -> Path | None:
    """The installed model's file, or ``None``."""
    found = find_model(name)
    return found[1] if found else None
