"""/v1/chat/completions: text chat with a character, OpenAI-compatible.

``model`` is a character id. The reply comes from the same brain a live session uses (the local
LLM, a configured OpenAI-compatible server, or the built-in brain), with the character's persona,
knowledge base, guardrails and tools, so text-only apps, chat UIs and tests talk to the same
character a browser session does. ``stream: true`` answers with server-sent events
(``chat.completion.chunk`` objects, then ``data: [DONE]``).

Tools: the character's webhook tools run on the server (SSRF guard and all). Its ``"ui"`` tools
and the request's own ``tools`` are the client's to run: the answer then ends with
``finish_reason: "tool_calls"`` and the calls, and the client sends their results back as
``tool`` messages in the next request (the standard protocol). ``tool_choice`` is honoured.
Server-run calls come back in ``talkie.tool_exchanges`` so a client can keep them in its history.

Memory: the request's messages are the conversation; long ones are folded into a summary as in a
live session. With ``user`` (your id for the person) and ``remember: true`` the character also
recalls, and adds to, what it remembers of that person across chats and sessions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from talkie.brain import load_brain
from talkie.brain.base import Brain, Turn
from talkie.brain.chat_messages import parse_chat_messages
from talkie.brain.guardrails import GuardedBrain, HttpModerator
from talkie.brain.memory import ConversationMemory, estimate_tokens, fold_turn
from talkie.brain.openai_tools import DeferredToolCalls, ToolCall, check_tool_choice
from talkie.brain.tools import Tool, ToolResult, WebhookCaller
from talkie.brain.tools.journal import tool_journal
from talkie.errors import InvalidInputError, TalkieError
from talkie.server.context import Caller, Services, Svc, character_for
from talkie.server.errors import ApiError, errors
from talkie.server.routes_sessions import _remember

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["chat"])

MAX_MESSAGES = 200
MAX_CLIENT_TOOLS = 32


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = Field(default=None, max_length=16)
    tool_call_id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=64)


class ClientFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=1000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ClientTool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"] = "function"
    function: ClientFunction


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; fields Talkie does not use (``temperature``, ``n``, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=64, description="the character id")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    tools: list[ClientTool] | None = Field(default=None, max_length=MAX_CLIENT_TOOLS)
    tool_choice: str | dict[str, Any] | None = None
    user: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="your id for the person chatting (for remember)",
    )  # fmt: skip
    remember: bool = Field(
        default=False,
        description="Talkie extension: the character remembers this user (needs user) across "
        "chats and live sessions",
    )

    @model_validator(mode="after")
    def _remember_needs_a_person(self) -> ChatCompletionRequest:
        if self.remember and not self.user:
            raise ValueError("user is required when remember is true")
        return self


class ChatTools:
    """The chat's ``ToolExecutor``: webhook tools run here, the client's tools are deferred."""

    def __init__(self, tools: tuple[Tool, ...], client: set[str], webhooks: WebhookCaller):
        self.tools = tools
        self.client = client
        self.webhooks = webhooks

    def defers(self, tool: Tool) -> bool:
        return tool.kind == "ui" or tool.name in self.client

    async def run(self, tool: Tool, arguments: dict[str, Any]) -> ToolResult:
        if self.defers(tool):  # the built-in brain runs tools one at a time through here
            call = ToolCall("call_" + secrets.token_hex(8), tool.name, json.dumps(arguments))
            raise DeferredToolCalls([call], "")
        return await self.webhooks.call(tool, arguments)

    def record_rejected(self, name: str, result: ToolResult) -> None:
        log.info("chat tool %r not run: %s", name[:64], result.reason)


@router.post(
    "/chat/completions",
    responses=errors(400, 401, 403, 404, 409, 429),
    summary="Chat with a character in text (OpenAI-compatible; model = character id)",
)
async def chat_completions(
    body: ChatCompletionRequest, who: Caller, svc: Svc
) -> Any:
    who.require("sessions:create")
    record = await character_for(svc, who, body.model)  # 404: unknown or not theirs
    if record.disabled:
        raise ApiError(
            409, "character_disabled", f"{record.id} is switched off by an administrator"
        )
    try:
        chat = parse_chat_messages([m.model_dump(exclude_none=True) for m in body.messages])
        client_tools = [
            Tool.from_dict({
                "name": t.function.name, "description": t.function.description or t.function.name,
                "kind": "ui", "parameters": t.function.parameters,
            })
            for t in body.tools or []
        ]  # fmt: skip
    except InvalidInputError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    character = await svc.characters.load_async(body.model)
    names = [t.name for t in (*character.tools, *client_tools)]
    if len(names) != len(set(names)):
        raise ApiError(400, "invalid_request", "a request tool has the name of a character tool")
    tools = (*character.tools, *client_tools)
    try:
        tool_choice = check_tool_choice(body.tool_choice, tools)
    except InvalidInputError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    notes = ""
    if body.remember and body.user:
        memory_record = await svc.run(svc.store.get_memory, record.id, body.user)
        notes = memory_record.notes if memory_record else ""
    memory = ConversationMemory(recall=notes)
    for turn in chat.history:
        memory.add(turn)
    executor = ChatTools(
        tools, {t.name for t in client_tools}, WebhookCaller(options=svc.options.webhook)
    )
    try:
        brain: Brain = load_brain(
            None, persona=character.persona, retriever=character.knowledge, tools=tools,
            executor=executor, tool_choice=tool_choice, continue_after=chat.continue_after,
        )  # fmt: skip
    except InvalidInputError as exc:
        raise ApiError(503, "brain_unavailable", str(exc)) from None
    if character.guardrails is not None and character.guardrails.active:
        brain = GuardedBrain(
            brain, character.guardrails, moderator=HttpModerator.from_env(), label=character.id
        )
    reply = _Reply(svc, body, brain, memory.context(), chat.user_text)
    if body.stream:
        return StreamingResponse(
            reply.sse(), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )  # fmt: skip
    return await reply.whole()


class _Reply:
    """One answer, streamed as chunks or collected whole."""

    def __init__(
        self, svc: Services, body: ChatCompletionRequest, brain: Brain, history: list[Turn],
        user_text: str,
    ) -> None:  # fmt: skip
        self.svc, self.body, self.brain = svc, body, brain
        self.history, self.user_text = history, user_text
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.text: list[str] = []
        self.calls: list[ToolCall] = []
        self.exchanges: list[dict[str, str]] = []

    async def deltas(self) -> AsyncIterator[str]:
        with tool_journal() as journal:
            try:
                replies = self.brain.reply(self.history, self.user_text)
                async with contextlib.aclosing(replies) as it:  # type: ignore[type-var]
                    async for delta in it:
                        self.text.append(delta)
                        yield delta
            except DeferredToolCalls as deferred:
                self.calls = deferred.calls
                if deferred.text and not "".join(self.text).strip():
                    self.text.append(deferred.text)
                    yield deferred.text
            finally:
                self.exchanges = [dataclasses.asdict(e) for e in journal]
        self._remember()

    async def whole(self) -> dict[str, Any]:
        try:
            async for _ in self.deltas():
                pass
        except TalkieError as exc:
            raise ApiError(503, "brain_unavailable", str(exc)) from None
        message: dict[str, Any] = {"role": "assistant", "content": self._content() or None}
        if self.calls:
            message["tool_calls"] = [_call_json(c) for c in self.calls]
        completion = estimate_tokens("".join(self.text))
        prompt = sum(estimate_tokens(t.text) for t in self.history) + estimate_tokens(
            self.user_text
        )
        return {
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.body.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish()}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
            "talkie": self._extension(),
        }  # fmt: skip

    async def sse(self) -> AsyncIterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            async for delta in self.deltas():
                if delta:
                    yield self._chunk({"content": delta})
            if self.calls:
                calls = [{"index": n, **_call_json(c)} for n, c in enumerate(self.calls)]
                yield self._chunk({"tool_calls": calls})
            yield self._chunk({}, finish=self._finish(), extra={"talkie": self._extension()})
        except TalkieError as exc:
            error = {"error": {"code": "brain_unavailable", "message": str(exc)}}
            yield f"data: {json.dumps(error)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    # -- internals --

    def _content(self) -> str:
        return " ".join("".join(self.text).split())

    def _finish(self) -> str:
        return "tool_calls" if self.calls else "stop"

    def _extension(self) -> dict[str, Any]:
        route = getattr(getattr(self.brain, "inner", self.brain), "last_route", "")
        return {"brain": self.brain.name + (f" ({route})" if route else ""),
                "tool_exchanges": self.exchanges}  # fmt: skip

    def _chunk(
        self,
        delta: dict[str, Any],
        *,
        finish: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> bytes:
        chunk = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **(extra or {}),
        }  # fmt: skip
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    def _remember(self) -> None:
        body = self.body
        said = self._content()
        if not (body.remember and body.user and said):
            return
        lines = [fold_turn(Turn("user", self.user_text)), fold_turn(Turn("assistant", said))]
        self.svc.write_later(_remember, self.svc, body.model, body.user, lines)


def _call_json(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}  # fmt: skip

