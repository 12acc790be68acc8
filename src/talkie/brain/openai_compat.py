"""A brain backed by any OpenAI-compatible chat-completions server (Ollama, llama.cpp server, vLLM,
hosted APIs), streamed over HTTP with server-sent events.

Latency and failure behaviour matter more than features here:

- the reply streams: every content delta is cleaned (markdown, ``<think>`` blocks) and yielded at
  once, so the session can start TTS on the first clause while the LLM still writes;
- deadlines cover only the network waits, never the consumer's time between chunks (the
  session synthesises speech between deltas): no first token within ``timeout_first_token_s``
  (connect + queue + prompt processing), no data for ``timeout_stall_s`` mid-stream, or more
  than ``timeout_total_s`` of waiting in all raise ``BrainUnavailable``, as do refused
  connections and HTTP errors;
- leaving the iteration (barge-in) closes the HTTP response, which closes the connection, so the
  server stops generating;
- with ``tools`` and a ``ToolExecutor``, the model may call the character's tools with the
  standard tool-call protocol (``talkie.brain.openai_tools``): text before a call is still
  streamed, the calls run, their results go back to the model, and its follow-up streams;
- with a ``retriever`` (the character's knowledge base, ``talkie.brain.kb``), the best passages
  for the user's words are looked up before each request and added to that request's system
  message, labelled with their sources, so the model can answer from them and cite them.

Secrets: the API key is only put in the ``Authorization`` header; it is excluded from ``repr``,
logs and error messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from talkie.brain.base import BrainUnavailable, ToolExchange, Turn, latest_sight
from talkie.brain.kb.retrieval import PASSAGE_RULES, Passage, Retriever, format_passages
from talkie.brain.llm_options import LLMOptions
from talkie.brain.markdown import MarkdownStripper
from talkie.brain.openai_stream import (
    ThinkFilter,
    delta_parts,
    error_detail,
    json_events,
    safe_url,
    sse_events,
)
from talkie.brain.openai_tools import (
    BareCallFilter,
    ToolCallCollector,
    ToolChoiceValue,
    exchange_messages,
    reply_with_tools,
)
from talkie.brain.persona import DEFAULT_PERSONA, Persona
from talkie.brain.tools.executor import ToolExecutor
from talkie.brain.tools.spec import Tool
from talkie.errors import InvalidInputError

__all__ = ["LLMOptions", "OpenAICompatibleBrain", "ReplyStats"]

log = logging.getLogger(__name__)

_LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "sv": "Swedish", "da": "Danish",
    "no": "Norwegian", "nb": "Norwegian", "fi": "Finnish", "cs": "Czech", "tr": "Turkish",
    "ru": "Russian", "uk": "Ukrainian", "ja": "Japanese", "zh": "Chinese", "ko": "Korean",
    "ar": "Arabic", "hi": "Hindi", "el": "Greek", "hu": "Hungarian", "ro": "Romanian",
}  # fmt: skip
_ERROR_BODY_BYTES = 2048
# Said next to the question (compact passages): answer from the passages or say so.
GROUNDED = (
    "Answer from these passages only. If they do not answer the question, say that you don't "
    "know; never make up facts, numbers or services."
)
UNGROUNDED = (
    "No knowledge-base passage answers this. If the question asks for a fact about the "
    "business (a service, a price, a place, a time, a contact), say that you don't know it; "
    "never guess."
)


@dataclass(frozen=True)
class ReplyStats:
    """Timings of the last reply, in seconds from the request: first content token (``None``
    if none came), first speakable text, and the end of the stream."""

    first_token_s: float | None
    first_text_s: float | None
    total_s: float
    chars: int


class OpenAICompatibleBrain:
    """Streams replies from an OpenAI-compatible ``/chat/completions`` endpoint.

    ``tools`` are offered to the model when an ``executor`` runs them (see
    ``talkie.brain.openai_tools``). ``transport`` is for tests (an ``httpx.MockTransport``);
    normally omitted. Call ``aclose()`` when done to release pooled connections (optional: they
    are also closed on garbage collection). ``tool_choice`` is OpenAI's (see
    ``talkie.brain.openai_tools``); ``continue_after``: results of calls made by the caller (a
    chat client ran them) that the model answers from, after the user's words.
    """

    name = "openai"

    def __init__(
        self,
        *,
        options: LLMOptions,
        persona: Persona = DEFAULT_PERSONA,
        transport: httpx.AsyncBaseTransport | None = None,
        retriever: Retriever | None = None,
        tools: Sequence[Tool] = (),
        executor: ToolExecutor | None = None,
        tool_choice: ToolChoiceValue = "auto",
        continue_after: Sequence[ToolExchange] = (),
    ) -> None:
        self.options = options
        self.tool_choice = tool_choice
        self.continue_after = tuple(continue_after)
        self.persona = persona
        self.retriever = retriever
        self.tools = tuple(tools)
        self.executor = executor
        if self.tools and executor is None:
            log.warning("%d tool(s) declared but nothing runs them: not offered to the model",
                        len(self.tools))  # fmt: skip
        self.last_stats: ReplyStats | None = None
        self.last_passages: list[Passage] = []
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._where = safe_url(options.base_url)
        self._system_prompt = self._build_system_prompt()
        log.info("LLM brain: model %r at %s", options.model, self._where)

    def greeting(self) -> str:
        """What the character says first (from the persona: no LLM round trip)."""
        return self.persona.greeting

    @property
    def system_prompt(self) -> str:
        """The system message sent with every request."""
        return self._system_prompt

    def build_messages(
        self, history: Sequence[Turn], user_text: str, *, context: str = ""
    ) -> list[dict[str, Any]]:
        """The ``messages`` array: system prompt, the recent history, the user's words.

        ``context`` (knowledge-base passages, see ``format_passages``) is appended to the system
        message of this request only: one system message, because several chat templates
        (Gemma's among them) reject a second one or one after the first user turn.

        History is cut to the newest turns within the budget; empty turns are skipped, leading
        assistant turns dropped and consecutive same-role turns merged, because many local chat
        templates (Gemma, Mistral) reject anything but strict user/assistant alternation.
        """
        user_text = user_text.strip()
        # "context" turns (a rolling summary, notes from earlier sessions) join the system message
        memory = "\n\n".join(t.text.strip() for t in history if t.role == "context")
        turns = [
            turn for turn in history
            if (turn.text.strip() or turn.tools) and turn.role != "context"
        ]  # fmt: skip
        if turns and turns[-1].role == "user" and turns[-1].text.strip() == user_text:
            turns.pop()  # the caller already appended the current utterance
        picked: list[Turn] = []
        budget = self.options.max_history_chars
        for turn in reversed(turns):
            if len(picked) >= self.options.max_history_turns or len(turn.text) > budget:
                break
            picked.append(turn)
            budget -= len(turn.text) + sum(len(e.arguments) + len(e.result) for e in turn.tools)
        picked.reverse()
        while picked and picked[0].role != "user":
            picked.pop(0)
        system = self._system_prompt
        before_question = self.options.context_placement == "question"
        for extra in (memory.strip(), "" if before_question else context.strip()):
            if extra:
                system = f"{system}\n\n{extra}"
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for turn in picked:
            text = turn.text.strip()
            if turn.role == "assistant" and turn.tools:
                messages.extend(exchange_messages(text, turn.tools))
            elif messages[-1]["role"] == turn.role and "tool_calls" not in messages[-1]:
                messages[-1]["content"] += "\n" + text
            else:
                messages.append({"role": turn.role, "content": text})
        if before_question and context.strip():
            messages.append({"role": "system", "content": context.strip()})
        if messages[-1]["role"] == "user":
            messages[-1]["content"] += "\n" + user_text
        else:
            messages.append({"role": "user", "content": user_text})
        sight = latest_sight(history)
        if self.options.vision and sight is not None and sight.jpeg is not None:
            # The picture goes with the question it is about (the last user message), in the
            # standard content-parts form every image-capable OpenAI-compatible server reads.
            picture = base64.b64encode(sight.jpeg).decode("ascii")
            messages[-1]["content"] = [
                {"type": "text", "text": messages[-1]["content"]},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{picture}"}},
            ]
        if self.continue_after:
            messages.extend(exchange_messages("", self.continue_after))
        return messages

    @property
    def accepts_images(self) -> bool:
        """The model takes pictures with the question (``LLMOptions.vision``)."""
        return self.options.vision

    async def request_messages(
        self, history: Sequence[Turn], user_text: str
    ) -> list[dict[str, Any]]:
        """The ``messages`` of the first request for ``user_text``: knowledge-base passages
        looked up (in a worker thread) and placed as the options say."""
        context = await self._knowledge_context(user_text)
        return self.build_messages(history, user_text, context=context)

    async def reply(self, history: Sequence[Turn], user_text: str) -> AsyncIterator[str]:
        """Stream the reply as cleaned text deltas (running the tools the model asks for on the
        way). Raises ``BrainUnavailable`` on failures and ``InvalidInputError`` for empty
        ``user_text``."""
        if not user_text.strip():
            raise InvalidInputError("the user's text is empty: nothing to reply to")
        messages = await self.request_messages(history, user_text)
        loop = asyncio.get_running_loop()
        clock = _ReplyClock(loop.time())

        def stream(
            messages: list[dict[str, Any]],
            offer: Sequence[Tool],
            choice: ToolChoiceValue,
            calls: ToolCallCollector,
        ) -> AsyncGenerator[str, None]:
            return self._stream(messages, offer, choice, calls, clock)

        replies = reply_with_tools(
            messages, tools=self.tools, executor=self.executor, stream=stream,
            max_rounds=self.options.max_tool_rounds, tool_choice=self.tool_choice,
        )  # fmt: skip
        try:
            async with contextlib.aclosing(replies):
                async for text in replies:
                    yield text
        finally:
            self.last_stats = ReplyStats(
                clock.first_token, clock.first_text, loop.time() - clock.start, clock.chars
            )
            log.debug("LLM reply: first token %s s, %d chars", clock.first_token, clock.chars)

    async def _stream(
        self,
        messages: list[dict[str, Any]],
        offer: Sequence[Tool],
        choice: ToolChoiceValue,
        calls: ToolCallCollector,
        clock: _ReplyClock,
    ) -> AsyncGenerator[str, None]:
        """One chat-completions request: yields its cleaned text, feeds tool-call fragments to
        ``calls``. The timeouts apply to each request on its own."""
        options = self.options
        body: dict[str, Any] = {
            "model": options.model,
            "messages": messages,
            "stream": True,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
        }
        if offer:
            body["tools"] = [tool.to_openai() for tool in offer]
            if choice != "auto":
                body["tool_choice"] = choice
        if options.cache_prompt:
            body["cache_prompt"] = True
        headers = {"Accept": "text/event-stream"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        client = self._get_client()
        loop = asyncio.get_running_loop()
        start = loop.time()
        first_token_deadline = start + min(options.timeout_first_token_s, options.timeout_total_s)
        # Time spent waiting for the server. The consumer's time between chunks (TTS, playback
        # backpressure) is not the LLM's fault and does not count against the timeouts.
        waited = 0.0
        first_token: float | None = None
        stripper = MarkdownStripper()
        thoughts = ThinkFilter()
        bare = BareCallFilter(offer)
        request = client.build_request("POST", options.endpoint, json=body, headers=headers)
        events: AsyncGenerator[dict[str, Any], None] | None = None
        try:
            async with asyncio.timeout_at(first_token_deadline):
                response = await client.send(request, stream=True)
        except TimeoutError:
            raise self._timeout_error(None, loop.time() - start, total_spent=False) from None
        except httpx.HTTPError as exc:
            raise self._network_error(exc, partial=clock.chars > 0) from exc
        try:
            if response.status_code >= 400:
                raise await self._http_error(response, first_token_deadline)
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                events = json_events(response)  # the server ignored "stream": true
            else:
                events = sse_events(response.aiter_lines())
            waited = loop.time() - start
            while True:
                wait_start = loop.time()
                if first_token is None:
                    deadline = first_token_deadline
                else:
                    budget = options.timeout_total_s - waited
                    deadline = wait_start + min(options.timeout_stall_s, budget)
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events, None)
                except TimeoutError:
                    waited += loop.time() - wait_start
                    raise self._timeout_error(
                        first_token,
                        loop.time() - start,
                        total_spent=waited >= options.timeout_total_s - 1e-3,
                    ) from None
                received = loop.time()
                waited += received - wait_start
                if event is None:
                    break
                content, reasoning, fragments = delta_parts(event, self._where)
                called = calls.push(fragments) if fragments else False
                if first_token is None and (content or reasoning or called):
                    first_token = received - start
                    clock.token(received)
                text = stripper.push(bare.push(thoughts.push(content))) if content else ""
                if text:
                    if clock.first_text is None and thoughts.seen:
                        log.warning("the model thinks before answering; disable reasoning "
                                    "for voice latency")  # fmt: skip
                    clock.text(loop.time(), len(text))
                    yield text
            tail = stripper.push(bare.push(thoughts.flush()) + bare.finish(calls))
            tail += stripper.flush()
            if tail.strip():
                clock.text(loop.time(), len(tail))
                yield tail
        except httpx.HTTPError as exc:
            raise self._network_error(exc, partial=clock.chars > 0) from exc
        finally:
            if events is not None:
                await events.aclose()
            # Closing an unfinished streamed response closes its connection: the server notices
            # the disconnect and stops generating (the point of barge-in).
            await response.aclose()

    async def aclose(self) -> None:
        """Close pooled HTTP connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- internals -------------------------------------------------------------------------

    async def _knowledge_context(self, user_text: str) -> str:
        """Knowledge-base passages for this turn, formatted for the system message."""
        self.last_passages = []
        if self.retriever is None:
            return ""
        options = self.options
        try:
            # SQLite and the embedding model block: run them off the event loop.
            passages = await asyncio.to_thread(
                self.retriever.search, user_text, options.knowledge_passages
            )
        except Exception as exc:  # noqa: BLE001 - the LLM can still answer without passages
            # Only the type is logged: messages (an FTS syntax error) can quote the question.
            log.warning("knowledge-base search failed (%s): asking the LLM without passages",
                        type(exc).__name__)  # fmt: skip
            return ""
        self.last_passages = [
            p for p in passages
            if (p.score >= options.min_passage_score if p.similarity is not None
                else p.coverage > 0.0)
            and p.score >= options.passage_ratio * passages[0].score
        ]  # fmt: skip
        context = format_passages(
            self.last_passages, max_chars=options.max_context_chars,
            compact=options.compact_passages,
        )  # fmt: skip
        if options.compact_passages:
            # Small models follow the instruction nearest the question: repeat the rule there.
            context = f"{context}\n\n{GROUNDED}" if context else UNGROUNDED
        return context

    def _get_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # Pooled connections belong to one event loop; a new loop needs a new client.
            timeout = httpx.Timeout(
                connect=self.options.timeout_connect_s, read=None, write=10.0, pool=5.0
            )
            self._client = httpx.AsyncClient(
                timeout=timeout, transport=self._transport, trust_env=True
            )
            self._client_loop = loop
        return self._client

    def _build_system_prompt(self) -> str:
        persona = self.persona
        language = _LANGUAGES.get(persona.language.split("-")[0].split("_")[0].lower())
        in_language = f" in {language}" if language else f" in the language {persona.language!r}"
        parts = [
            persona.system_prompt.strip(),
            f"Your name is {persona.name}. You are speaking out loud in a live voice "
            f"conversation{in_language}. Answer in one to three short sentences. Write plain "
            "spoken text only: no markdown, lists, headings, emoji, code or links; write numbers "
            "and symbols the way they are said.",
        ]
        if self.options.compact_passages:
            parts.append(
                f"You are {persona.name}, a talking character on a screen, not a human: if "
                "asked, say so. Never invent facts about the business."
            )
            if self.retriever is not None:
                parts.append(PASSAGE_RULES)
        knowledge = persona.knowledge.strip()
        if knowledge:
            limit = self.options.max_knowledge_chars
            if len(knowledge) > limit:
                log.warning("knowledge text cut to %d of %d characters for the LLM prompt",
                            limit, len(knowledge))  # fmt: skip
                knowledge = knowledge[:limit].rsplit("\n", 1)[0]
            parts.append(
                "Answer questions from the facts below. If they do not contain the answer, say "
                "briefly that you do not know; never make facts up.\n\nFacts:\n" + knowledge
            )
        return "\n\n".join(parts)

    def _timeout_error(
        self, first_token: float | None, elapsed: float, *, total_spent: bool
    ) -> BrainUnavailable:
        if first_token is None:
            return BrainUnavailable(
                f"the LLM at {self._where} sent no answer within "
                f"{self.options.timeout_first_token_s:g} s",
                reason="first_token",
            )
        if total_spent:
            return BrainUnavailable(
                f"the LLM reply took longer than {self.options.timeout_total_s:g} s",
                reason="total",
                partial=True,
            )
        return BrainUnavailable(
            f"the LLM stream stalled for {self.options.timeout_stall_s:g} s after {elapsed:.1f} s",
            reason="stall",
            partial=True,
        )

    def _network_error(self, exc: httpx.HTTPError, *, partial: bool) -> BrainUnavailable:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return BrainUnavailable(
                f"cannot connect to the LLM at {self._where}: is the server running?",
                reason="connect",
            )
        # The exception text names the failure, not the request: no URL or key in it.
        return BrainUnavailable(
            f"the connection to the LLM at {self._where} failed: {type(exc).__name__}",
            reason="network",
            partial=partial,
        )

    async def _http_error(self, response: httpx.Response, deadline: float) -> BrainUnavailable:
        detail = ""
        try:
            async with asyncio.timeout_at(deadline):
                raw = b""
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) >= _ERROR_BODY_BYTES:
                        break
            detail = error_detail(raw[:_ERROR_BODY_BYTES])
        except (TimeoutError, httpx.HTTPError):
            pass  # the status code alone still says what happened
        hint = {
            401: " (check TALKIE_LLM_API_KEY)",
            403: " (check TALKIE_LLM_API_KEY)",
            404: " (check TALKIE_LLM_BASE_URL and TALKIE_LLM_MODEL)",
            429: " (rate limited)",
        }.get(response.status_code, "")
        message = f"the LLM at {self._where} answered HTTP {response.status_code}{hint}"
        if detail:
            message += f": {detail}"
        return BrainUnavailable(message, reason="http")


@dataclass
class _ReplyClock:
    """Timings of one reply across its requests (for ``ReplyStats``), on the loop's clock."""

    start: float
    first_token: float | None = None
    first_text: float | None = None
    chars: int = 0

    def token(self, now: float) -> None:
        if self.first_token is None:
            self.first_token = now - self.start

    def text(self, now: float, chars: int) -> None:
        if self.first_text is None:
            self.first_text = now - self.start
        self.chars += chars
