"""The local-LLM brain: answers with the model on this machine, or with the built-in brain when
the model cannot answer in time.

A voice answer that starts late is worse than a plainer answer on time, so the model gets a
first-token budget per turn (``first_text_budget_s``): when it has not produced its first words
by then, the request is closed and the built-in brain answers (it has nothing to unsay: nothing
was spoken yet). While the model is still loading, or after a turn where it was too slow (the
machine is busy: other sessions rendering, a tool running), the built-in brain answers the next
``cooldown_turns`` turns, then the model is tried again. A reply that stalls after it started
ends where it is (what was said stays said).

Everything else is the OpenAI-compatible brain talking to the local llama.cpp server
(``talkie.brain.local.engine``): streaming, tools (with Qwen's bare-JSON calls understood),
knowledge-base passages placed just before the question so the persona and the history stay in
the KV cache between turns (``cache_prompt``), and cancellation on barge-in.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkie.brain.base import BrainUnavailable, ToolExchange, Turn
from talkie.brain.builtin import BuiltinBrain
from talkie.brain.kb.retrieval import Retriever
from talkie.brain.local.engine import EngineOptions, LocalEngine
from talkie.brain.local.install import find_model
from talkie.brain.openai_compat import LLMOptions, OpenAICompatibleBrain
from talkie.brain.openai_tools import DeferredToolCalls
from talkie.brain.persona import DEFAULT_PERSONA, Persona
from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.spec import Tool
from talkie.errors import InvalidInputError

__all__ = ["LocalBrain", "LocalBrainOptions", "shared_engine"]

log = logging.getLogger(__name__)

_ENGINES: dict[tuple[str, EngineOptions], LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()


def shared_engine(name: str | None = None, *, options: EngineOptions | None = None) -> LocalEngine:
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
    ``passage_ratio`` of the best one's score."""

    first_text_budget_s: float = 2.0
    cooldown_turns: int = 2
    max_tokens: int = 120
    temperature: float = 0.3
    knowledge_passages: int = 2
    min_passage_score: float = 0.33
    passage_ratio: float = 0.85
    max_context_chars: int = 900
    max_history_turns: int = 8


class LocalBrain:
    """The default brain when the local model is installed (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        *,
        engine: LocalEngine,
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
