"""Where and how to reach an OpenAI-compatible LLM server: ``LLMOptions``, validated at
construction and readable from the environment (``TALKIE_LLM_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from talkie.brain.openai_stream import safe_url
from talkie.errors import InvalidInputError

__all__ = ["LLMOptions"]


@dataclass(frozen=True)
class LLMOptions:
    """Where and how to reach the LLM.

    ``base_url`` is the API root that ``/chat/completions`` is appended to, e.g.
    ``http://localhost:11434/v1`` (Ollama), ``http://localhost:8080/v1`` (llama.cpp server),
    ``https://api.openai.com/v1``. History sent with each request is bounded by
    ``max_history_turns`` and ``max_history_chars``; the persona's knowledge by
    ``max_knowledge_chars`` (a long prompt costs seconds of prompt processing on a CPU server).
    Timeouts count only time spent waiting for the server (see the module docstring).
    With a knowledge-base retriever, up to ``knowledge_passages`` passages scoring at least
    ``min_passage_score`` (see ``Passage``) are sent, within ``max_context_chars``; the bar is
    lower than the built-in brain's because the model itself judges relevance.
    ``max_tool_rounds``: how many times one reply may run tools before the model must answer.
    ``context_placement``, ``cache_prompt``, ``compact_passages`` and ``passage_ratio`` shape
    the prompt for a small local model (see ``talkie.brain.local.brain``).
    """

    base_url: str
    model: str = "default"
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.7
    max_tokens: int = 200
    timeout_first_token_s: float = 4.0
    timeout_total_s: float = 30.0
    timeout_stall_s: float = 5.0
    timeout_connect_s: float = 3.0
    max_history_turns: int = 12
    max_history_chars: int = 6000
    max_knowledge_chars: int = 8000
    knowledge_passages: int = 3
    min_passage_score: float = 0.25
    max_context_chars: int = 3000
    max_tool_rounds: int = 3
    # "system": passages join the system message; "question": a system message just before the
    # user's question, so the persona and the history before it stay a cached prefix (a local
    # llama.cpp server then only processes the passages and the question).
    context_placement: Literal["system", "question"] = "system"
    cache_prompt: bool = False  # llama.cpp: reuse the KV cache of the previous request's prefix
    # Passages without their rules (given once in the system prompt) or file names, and only
    # those scoring at least ``passage_ratio`` of the best one: fewer tokens per question.
    compact_passages: bool = False
    passage_ratio: float = 0.0
    # The model takes pictures (OpenAI-style ``image_url`` content): when the user's words are
    # about what they show, the latest camera or screen frame is sent with the question.
    vision: bool = False

    def __post_init__(self) -> None:
        url = self.base_url.strip().rstrip("/")
        # A full endpoint URL is a common copy-paste; accept it rather than POST to .../x/x.
        if url.endswith("/chat/completions"):
            url = url[: -len("/chat/completions")]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(
                f"LLM base URL {safe_url(url)!r} must be an http(s) URL such as "
                "http://localhost:11434/v1"
            )
        object.__setattr__(self, "base_url", url)
        if not self.model.strip():
            raise InvalidInputError("LLM model name is empty; set TALKIE_LLM_MODEL")
        for name in ("timeout_first_token_s", "timeout_total_s", "timeout_stall_s",
                     "timeout_connect_s"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"LLM option {name} must be > 0")
        if self.max_tokens < 1 or self.max_history_turns < 0 or self.max_history_chars < 0:
            raise InvalidInputError("LLM max_tokens must be >= 1 and history limits >= 0")
        if self.max_tool_rounds < 0:
            raise InvalidInputError("LLM max_tool_rounds must be >= 0")
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidInputError("LLM temperature must be between 0 and 2")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LLMOptions:
        """Options from ``TALKIE_LLM_BASE_URL`` (required), ``TALKIE_LLM_API_KEY``,
        ``TALKIE_LLM_MODEL``, and optionally ``TALKIE_LLM_TEMPERATURE``/``TALKIE_LLM_MAX_TOKENS``.
        Keyword ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        base_url = env.get("TALKIE_LLM_BASE_URL", "").strip()
        if not base_url and "base_url" not in overrides:
            raise InvalidInputError(
                "no LLM configured: set TALKIE_LLM_BASE_URL (e.g. http://localhost:11434/v1 for "
                "Ollama) and TALKIE_LLM_MODEL, or use the built-in brain"
            )
        values: dict[str, Any] = {"base_url": base_url}
        if env.get("TALKIE_LLM_API_KEY", "").strip():
            values["api_key"] = env["TALKIE_LLM_API_KEY"].strip()
        if env.get("TALKIE_LLM_MODEL", "").strip():
            values["model"] = env["TALKIE_LLM_MODEL"].strip()
        if env.get("TALKIE_LLM_VISION", "").strip().lower() in ("1", "true", "yes", "on"):
            values["vision"] = True
        for key, name, kind in (
            ("TALKIE_LLM_TEMPERATURE", "temperature", float),
            ("TALKIE_LLM_MAX_TOKENS", "max_tokens", int),
        ):
            raw = env.get(key, "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError as exc:
                    raise InvalidInputError(f"{key}={raw!r} is not a number") from exc
        values.update(overrides)
        return cls(**values)

    @property
    def endpoint(self) -> str:
        """The chat-completions URL."""
        return f"{self.base_url}/chat/completions"
