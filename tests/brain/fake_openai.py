"""A scripted fake OpenAI-compatible chat server for tests.

A real uvicorn server (FastAPI app) on ``127.0.0.1`` and a free port, in a background thread, so
the code under test talks real HTTP and SSE. Each ``POST /v1/chat/completions`` pops the next
scripted behaviour:

- ``Stream(deltas, delay_s=..., first_delay_s=..., headers_delay_s=..., hang_after=...,
  fail_after=..., done=True, tool_calls=[...])``: stream these content deltas as SSE chunks,
  then (optionally) tool calls as ``tool_calls`` deltas (``ToolCallScript``: id, name and the
  arguments, streamed in fragments), ending with ``finish_reason: "tool_calls"``;
- ``HttpError(status, body)``: answer with an HTTP error;
- ``JsonReply(text)``: a non-streamed JSON answer (a server that ignores ``stream: true``).

Every request is recorded (``server.requests``: body, headers, arrival time), so a test can
read the follow-up request's ``messages`` (the ``tool`` results), and every stream's end
(``server.outcomes``: ``"completed"`` or ``"disconnected"``, with the number of deltas sent), so a
test can assert the system prompt, the history, the auth header, and that a cancelled client
really closed its connection.

Use::

    def test_x(fake_openai):                      # the pytest fixture
        fake_openai.script(Stream(["Hello", " there."], delay_s=0.05))
        options = LLMOptions(base_url=fake_openai.base_url, model="fake")

    with FakeOpenAIServer(default=Stream(["OK."])) as server:   # or as a context manager
        ...

From another test directory, make this module importable first (e.g. in that directory's
``conftest.py``: ``sys.path.insert(0, str(Path(__file__).parents[1] / "brain"))``), then
``from fake_openai import FakeOpenAIServer, Stream, fake_openai``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

__all__ = [
    "FakeOpenAIServer",
    "HttpError",
    "JsonReply",
    "RecordedRequest",
    "Stream",
    "StreamOutcome",
    "ToolCallScript",
    "fake_openai",
    "free_port",
]


@dataclass(frozen=True)
class ToolCallScript:
    """One tool call the scripted model makes. ``arguments``: JSON text (sent as is, even if
    invalid) or a dict (serialised). Streamed as a first fragment with ``index``, ``id`` and the
    name, then the arguments in pieces of ``chunk`` characters; ``indexed=False`` sends the
    whole call in one fragment without ``index`` (as Ollama does)."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str = ""
    chunk: int = 7
    indexed: bool = True

    def text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Stream:
    """Stream ``deltas`` as chat-completion chunks.

    ``headers_delay_s``: wait before sending the response headers (a busy server);
    ``first_delay_s``: wait after the headers before the first delta (prompt processing);
    ``delay_s``: wait between deltas; ``hang_after``: after that many deltas send nothing more,
    keeping the connection open until the client leaves; ``fail_after``: after that many deltas
    break the connection (the stream ends without its final chunk); ``done``: send ``[DONE]``.
    """

    deltas: Sequence[str]
    delay_s: float = 0.0
    first_delay_s: float = 0.0
    headers_delay_s: float = 0.0
    hang_after: int | None = None
    fail_after: int | None = None
    done: bool = True
    role_chunk: bool = True
    raw_lines: Sequence[str] = ()  # extra SSE lines sent before the deltas (comments, errors)
    tool_calls: Sequence[ToolCallScript] = ()  # streamed after the deltas


@dataclass(frozen=True)
class HttpError:
    """Answer with ``status`` and a JSON (dict) or text (str) body."""

    status: int = 500
    body: dict[str, Any] | str = field(
        default_factory=lambda: {"error": {"message": "scripted failure", "type": "server_error"}}
    )


@dataclass(frozen=True)
class JsonReply:
    """A complete, non-streamed chat completion."""

    text: str


Behaviour = Stream | HttpError | JsonReply


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (headers with lower-case names)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = 0.0  # time.monotonic() when it arrived

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    def tool_messages(self) -> list[dict[str, Any]]:
        """The ``tool`` messages (results of earlier calls) this request carries."""
        return [m for m in self.messages if isinstance(m, dict) and m.get("role") == "tool"]


@dataclass(frozen=True)
class StreamOutcome:
    """How a stream ended: ``"completed"``, ``"disconnected"`` (the client left), ``"failed"``
    (scripted ``fail_after``) or ``"stopped"`` (server shut down during a hang), after
    ``deltas_sent`` deltas, at ``time.monotonic()`` ``at``."""

    status: str
    deltas_sent: int
    at: float


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for connection-refused tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n"


class _ScriptedFailure(Exception):
    """Raised inside a stream to make uvicorn drop the connection."""


class FakeOpenAIServer:
    """The fake server; see the module docstring. Thread-safe: the server runs in its own thread
    and event loop, tests read ``requests``/``outcomes`` from theirs."""

    def __init__(self, *, default: Behaviour | None = None) -> None:
        self._default = default
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._outcomes: list[StreamOutcome] = []
        self._closing = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.app = self._make_app()

    # -- public API ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root to give to a client (``.../v1``)."""
        return f"http://127.0.0.1:{self._port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each request takes the next one (then ``default``, else HTTP 500)."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def outcomes(self) -> list[StreamOutcome]:
        with self._lock:
            return list(self._outcomes)

    async def wait_for_outcome(self, count: int = 1, timeout: float = 2.0) -> list[StreamOutcome]:
        """Wait (without blocking the caller's event loop) until ``count`` streams have ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            outcomes = self.outcomes
            if len(outcomes) >= count:
                return outcomes
            await asyncio.sleep(0.01)
        return self.outcomes

    def start(self) -> FakeOpenAIServer:
        """Start serving (returns once the server accepts connections)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving; open streams end (hangs and delays are cut short)."""
        self._closing = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the app ---------------------------------------------------------------------------

    def _next(self) -> Behaviour:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self._default is not None:
            return self._default
        return HttpError(500, {"error": {"message": "fake server: no scripted behaviour left"}})

    def _record_outcome(self, status: str, sent: int) -> None:
        with self._lock:
            self._outcomes.append(StreamOutcome(status, sent, time.monotonic()))

    async def _pause(self, seconds: float) -> None:
        # In slices, so that stop() is never held up by a long scripted delay.
        end = time.monotonic() + seconds
        while not self._closing and (remaining := end - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, 0.05))

    def _make_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", errors="replace")}
            with self._lock:
                self._requests.append(
                    RecordedRequest(
                        path=request.url.path,
                        headers={k.lower(): v for k, v in request.headers.items()},
                        body=body,
                        at=time.monotonic(),
                    )
                )
            behaviour = self._next()
            model = str(body.get("model", "fake")) if isinstance(body, dict) else "fake"
            if isinstance(behaviour, HttpError):
                if isinstance(behaviour.body, str):
                    return Response(behaviour.body, status_code=behaviour.status)
                return JSONResponse(behaviour.body, status_code=behaviour.status)
            if isinstance(behaviour, JsonReply):
                return JSONResponse(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": behaviour.text},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                )
            await self._pause(behaviour.headers_delay_s)
            return StreamingResponse(self._stream(behaviour, model), media_type="text/event-stream")

        return app

    async def _stream(self, behaviour: Stream, model: str) -> AsyncIterator[str]:
        sent = 0
        status = "completed"
        try:
            if behaviour.role_chunk:
                yield _chunk(model, {"role": "assistant", "content": ""})
            for line in behaviour.raw_lines:
                yield line if line.endswith("\n") else line + "\n\n"
            await self._pause(behaviour.first_delay_s)
            for index, delta in enumerate(behaviour.deltas):
                if behaviour.hang_after is not None and index >= behaviour.hang_after:
                    while not self._closing:
                        await asyncio.sleep(0.02)
                    status = "stopped"  # the server shut down under a hanging stream
                    return
                if behaviour.fail_after is not None and index >= behaviour.fail_after:
                    status = "failed"
                    raise _ScriptedFailure("scripted connection failure")
                if index:
                    await self._pause(behaviour.delay_s)
                yield _chunk(model, {"content": delta})
                sent += 1
            for index, call in enumerate(behaviour.tool_calls):
                for fragment in _call_fragments(call, index):
                    yield _chunk(model, {"tool_calls": [fragment]})
            yield _chunk(model, {}, finish="tool_calls" if behaviour.tool_calls else "stop")
            if behaviour.done:
                yield "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            # Starlette cancels the stream when uvicorn reports the client's disconnect.
            status = "disconnected"
            raise
        finally:
            self._record_outcome(status, sent)


def _call_fragments(call: ToolCallScript, index: int) -> list[dict[str, Any]]:
    call_id = call.id or f"call_fake_{index}"
    arguments = call.text()
    if not call.indexed:
        return [{"id": call_id, "type": "function",
                 "function": {"name": call.name, "arguments": arguments}}]  # fmt: skip
    first = {"index": index, "id": call_id, "type": "function",
             "function": {"name": call.name, "arguments": ""}}  # fmt: skip
    pieces = [arguments[i : i + call.chunk] for i in range(0, len(arguments), call.chunk)]
    return [first, *({"index": index, "function": {"arguments": p}} for p in pieces)]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A running ``FakeOpenAIServer`` (fresh for each test)."""
    with FakeOpenAIServer() as server:
        yield server
