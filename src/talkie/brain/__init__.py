"""Brain: the character's dialogue — persona, the built-in knowledge brain, OpenAI-compatible LLMs,
and the text plumbing between a brain and TTS (markdown stripping, clause chunking).

``load_brain()`` picks a brain:

- ``"builtin"``: small talk and answers from the persona's knowledge text, no LLM needed;
- ``"openai"``: any OpenAI-compatible server, configured by ``TALKIE_LLM_BASE_URL``,
  ``TALKIE_LLM_MODEL`` and ``TALKIE_LLM_API_KEY`` (or an ``LLMOptions``);
- ``None``/``"auto"`` (the default): ``"openai"`` when ``TALKIE_LLM_BASE_URL`` is set, else
  ``"builtin"``.

Either brain can use the character's tools (``talkie.brain.tools``) when it is given a
``ToolExecutor`` that runs them: the built-in brain picks a tool by matching the user's words to
each tool's description and examples, an LLM through the standard tool-call protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from talkie.brain.base import Brain, BrainUnavailable, Turn
from talkie.brain.builtin import BuiltinBrain, BuiltinOptions
from talkie.brain.kb.retrieval import Passage, Retriever, format_passages
from talkie.brain.markdown import MarkdownStripper, strip_markdown
from talkie.brain.openai_compat import LLMOptions, OpenAICompatibleBrain, ReplyStats
from talkie.brain.persona import DEFAULT_PERSONA, Persona, load_persona, persona_from_mapping
from talkie.brain.streaming import ClauseChunker
from talkie.brain.tools import Tool, ToolExecutor, ToolResult
from talkie.errors import InvalidInputError

__all__ = [
    "BRAIN_SPECS",
    "DEFAULT_PERSONA",
    "Brain",
    "BrainUnavailable",
    "BuiltinBrain",
    "BuiltinOptions",
    "ClauseChunker",
    "LLMOptions",
    "MarkdownStripper",
    "OpenAICompatibleBrain",
    "Passage",
    "Persona",
    "ReplyStats",
    "Retriever",
    "Tool",
    "ToolExecutor",
    "ToolResult",
    "Turn",
    "format_passages",
    "load_brain",
    "load_persona",
    "persona_from_mapping",
    "strip_markdown",
]

log = logging.getLogger(__name__)

BRAIN_SPECS = ("auto", "builtin", "openai")


def load_brain(
    spec: str | LLMOptions | None = None,
    *,
    persona: Persona | None = None,
    environ: Mapping[str, str] | None = None,
    retriever: Retriever | None = None,
    tools: Sequence[Tool] = (),
    executor: ToolExecutor | None = None,
) -> Brain:
    """Create a brain from ``spec`` (see the module docstring) for ``persona``.

    ``retriever`` gives the brain the character's knowledge base
    (``KnowledgeBase.retriever(character_id)``). ``tools`` are the character's tools, used when
    an ``executor`` runs them (the live session's). ``environ`` replaces ``os.environ`` (for
    tests). Raises ``InvalidInputError`` for an unknown spec, or for ``"openai"`` without
    ``TALKIE_LLM_BASE_URL``.
    """
    persona = persona or DEFAULT_PERSONA
    env = os.environ if environ is None else environ
    if isinstance(spec, LLMOptions):
        return OpenAICompatibleBrain(
            options=spec, persona=persona, retriever=retriever, tools=tools, executor=executor
        )
    kind = (spec or "auto").strip().lower()
    if kind == "auto":
        kind = "openai" if env.get("TALKIE_LLM_BASE_URL", "").strip() else "builtin"
        log.info("brain: %s (auto)", kind)
    if kind == "builtin":
        return BuiltinBrain(persona=persona, retriever=retriever, tools=tools, executor=executor)
    if kind in ("openai", "llm"):
        return OpenAICompatibleBrain(
            options=LLMOptions.from_env(env), persona=persona, retriever=retriever, tools=tools,
            executor=executor,
        )  # fmt: skip
    raise InvalidInputError(f"unknown brain {spec!r}: use one of {', '.join(BRAIN_SPECS)}")
