"""Brain: the character's dialogue — persona, the built-in knowledge brain, OpenAI-compatible LLMs,
and the text plumbing between a brain and TTS (markdown stripping, clause chunking).

``load_brain()`` picks a brain:

- ``"builtin"``: small talk and answers from the persona's knowledge text, no LLM needed;
- ``"openai"``: any OpenAI-compatible server, configured by ``TALKIE_LLM_BASE_URL``,
  ``TALKIE_LLM_MODEL`` and ``TALKIE_LLM_API_KEY`` (or an ``LLMOptions``);
- ``"local"``: the chat model installed on this machine by setup (``talkie.brain.local``: Qwen2.5
  on llama.cpp in a worker process), with the built-in brain answering whenever the model cannot
  start its answer in time;
- ``None``/``"auto"`` (the default): ``"openai"`` when ``TALKIE_LLM_BASE_URL`` is set, else
  ``"local"`` when the local model is installed (and ``TALKIE_LOCAL_LLM`` is not ``0``), else
  ``"builtin"``.

Either brain can use the character's tools (``talkie.brain.tools``) when it is given a
``ToolExecutor`` that runs them: the built-in brain picks a tool by matching the user's words to
each tool's description and examples, an LLM through the standard tool-call protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from talkie.brain.base import Brain, BrainUnavailable, ToolExchange, Turn
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
    "ToolExchange",
    "ToolResult",
    "Turn",
    "format_passages",
    "load_brain",
    "local_llm_available",
    "load_persona",
    "persona_from_mapping",
    "strip_markdown",
]

log = logging.getLogger(__name__)

BRAIN_SPECS = ("auto", "builtin", "local", "openai")
_OFF = ("0", "false", "no", "off")


def local_llm_available(environ: Mapping[str, str] | None = None) -> bool:
    """Is the local model installed, intact and allowed (``TALKIE_LOCAL_LLM`` not ``0``)?"""
    env = os.environ if environ is None else environ
    if env.get("TALKIE_LOCAL_LLM", "").strip().lower() in _OFF:
        return False
    from talkie.brain.local.install import find_model

    try:
        import xllamacpp  # noqa: F401 - only checking that the runtime is installed
    except ImportError:
        return False
    return find_model(environ=env) is not None


def load_brain(
    spec: str | LLMOptions | None = None,
    *,
    persona: Persona | None = None,
    environ: Mapping[str, str] | None = None,
    retriever: Retriever | None = None,
    tools: Sequence[Tool] = (),
    executor: ToolExecutor | None = None,
    tool_choice: Any = "auto",
    continue_after: Sequence[ToolExchange] = (),
    live: bool = False,
) -> Brain:
    """Create a brain from ``spec`` (see the module docstring) for ``persona``.

    ``retriever`` gives the brain the character's knowledge base
    (``KnowledgeBase.retriever(character_id)``). ``tools`` are the character's tools, used when
    an ``executor`` runs them (the live session's). ``environ`` replaces ``os.environ`` (for
    tests). ``tool_choice`` (OpenAI's values) and ``continue_after`` (results of tool calls the
    caller ran) are for one text-chat request. ``live``: for a spoken conversation (the local
    model gets the live first-token budget; a text chat can wait longer for a better answer).
    Raises ``InvalidInputError`` for an unknown spec, for ``"openai"`` without
    ``TALKIE_LLM_BASE_URL``, and for ``"local"`` without the model.
    """
    extra: dict[str, Any] = dict(
        retriever=retriever, tools=tools, executor=executor, tool_choice=tool_choice,
        continue_after=continue_after,
    )  # fmt: skip
    persona = persona or DEFAULT_PERSONA
    env = os.environ if environ is None else environ
    if isinstance(spec, LLMOptions):
        return OpenAICompatibleBrain(options=spec, persona=persona, **extra)
    kind = (spec or "auto").strip().lower()
    if kind == "auto":
        if env.get("TALKIE_LLM_BASE_URL", "").strip():
            kind = "openai"
        else:
            kind = "local" if local_llm_available(env) else "builtin"
        log.debug("brain: %s (auto)", kind)
    if kind == "builtin":
        return BuiltinBrain(persona=persona, **extra)
    if kind in ("openai", "llm"):
        return OpenAICompatibleBrain(options=LLMOptions.from_env(env), persona=persona, **extra)
    if kind == "local":
        from talkie.brain.local.brain import LIVE_OPTIONS, LocalBrain, shared_engine

        brain = LocalBrain(
            engine=shared_engine(env.get("TALKIE_LOCAL_MODEL", "").strip() or None),
            persona=persona, options=LIVE_OPTIONS if live else None, **extra,
        )  # fmt: skip
        brain.warm()
        return brain
    raise InvalidInputError(f"unknown brain {spec!r}: use one of {', '.join(BRAIN_SPECS)}")
