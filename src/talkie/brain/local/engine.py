"""The local LLM runtime: llama.cpp (``xllamacpp``, prebuilt CPU wheels, MIT) in a worker process.

Why a process: prompt processing and decoding are seconds of native work per answer; in the server
process they would compete with the frame loop for the GIL and the allocator. The worker runs
niced, so rendering keeps its frames when both want the cores.

How it is reached: ``xllamacpp.Server`` always runs llama.cpp's HTTP server next to its in-process
API. Its default (127.0.0.1, no key, open CORS, a web UI) would let any local process or web page
use the model, so here it listens on a Unix socket inside a private (0700) folder, requires a
random API key, and has the UI, CORS and the ``/props`` endpoint switched off. Talkie itself
talks to it over that socket with the ordinary OpenAI-compatible client, which gives streaming,
prompt caching (the persona and history stay in the KV cache between turns) and cancellation
on barge-in (closing the stream makes llama.cpp stop generating) for free.

``LocalEngine`` is shared by every session of a server process; it starts loading in the
background on first use, and ``ready`` says when it can answer.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from talkie.errors import MissingDependencyError, TalkieError
from talkie.worker import WorkerProcess

__all__ = ["AttachedEngine", "EngineEndpoint", "EngineOptions", "LocalEngine", "LlamaServerHost"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    """``threads``: CPU threads for decoding and prompt processing (2 on a 2-core machine; idle
    threads spin only briefly before sleeping, so they leave the renderer its core).
    ``context``: KV-cache size in tokens (persona, passages, history and answer must fit).
    ``niceness``: the worker's nice level (frames first when both want the cores)."""

    threads: int = 2
    batch_threads: int = 2
    context: int = 4096
    niceness: int = 5
    start_timeout: float = 180.0


@dataclass(frozen=True)
class EngineEndpoint:
    """Where a loaded engine answers: another process of this machine (a session worker) can
    use it instead of loading the model again (its socket's folder is private to this user)."""

    name: str
    socket_path: str
    api_key: str = field(repr=False)


class LlamaServerHost:
    """Lives in the worker process: the llama.cpp server on a private Unix socket."""

    def __init__(self, model_path: str, socket_path: str, options: EngineOptions) -> None:
        # OpenMP reads these when the runtime loads. Its threads meet several times per token;
        # waiting passively there (sleeping at once) cut a 0.5B model from 19 to 12 tokens/s,
        # spinning without end burns a core the renderer needs. A short spin (~30k rounds,
        # tens of microseconds) keeps the speed and lets idle threads sleep.
        os.environ.setdefault("GOMP_SPINCOUNT", "30000")
        try:
            import xllamacpp
        except ImportError as exc:
            raise MissingDependencyError(
                "the local LLM needs xllamacpp: run `make setup` (or pip install xllamacpp)"
            ) from exc
        params = xllamacpp.CommonParams()
        params.model.path = model_path
        params.n_ctx = options.context
        params.n_parallel = 1
        params.cpuparams.n_threads = options.threads
        params.cpuparams_batch.n_threads = options.batch_threads
        params.hostnames = [socket_path]
        self.api_key = secrets.token_urlsafe(32)
        params.api_keys = [self.api_key]
        params.ui = False
        params.cors_origins = ""
        params.endpoint_props = False
        params.endpoint_slots = False
        params.endpoint_metrics = False
        params.n_threads_http = 2
        params.cache_prompt = True
        params.use_jinja = True  # the model's own chat template, with tool calling
        params.verbosity = -1
        started = time.perf_counter()
        self._server = xllamacpp.Server(params)
        self.load_seconds = time.perf_counter() - started
        self.socket_path = socket_path

    def endpoint(self) -> tuple[str, str, float]:
        """(socket path, API key, load seconds)."""
        return self.socket_path, self.api_key, self.load_seconds


def _build_host(model_path: str, socket_path: str, options: EngineOptions) -> LlamaServerHost:
    return LlamaServerHost(model_path, socket_path, options)


class LocalEngine:
    """One local model in one worker process, loaded in the background (see the module
    docstring). ``start()`` returns at once; ``wait_ready(timeout)`` blocks until it can answer
    or failed; ``transport()`` gives an httpx transport to its socket."""

    def __init__(self, model_path: Path, *, name: str, options: EngineOptions | None = None):
        self.model_path = Path(model_path)
        self.name = name
        self.options = options or EngineOptions()
        self._folder = tempfile.mkdtemp(prefix="talkie-llm-")  # mode 0700
        self._socket = os.path.join(self._folder, "llm.sock")
        build = functools.partial(_build_host, str(self.model_path), self._socket, self.options)
        self._worker = WorkerProcess(
            factory=build,
            name=f"llm-{name}", start_timeout=self.options.start_timeout,
            niceness=self.options.niceness,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._api_key = ""
        self.error: str | None = None
        self.load_seconds: float | None = None
        atexit.register(self.close)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    @property
    def api_key(self) -> str:
        return self._api_key

    def start(self) -> None:
        """Start loading the model in the background (idempotent; restarts after a failure)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if self._ready.is_set() and self.error is None:
                return
            self._ready.clear()
            self.error = None
            self._thread = threading.Thread(
                target=self._load, name=f"talkie-llm-{self.name}-start", daemon=True
            )
            self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        self.start()
        self._ready.wait(timeout)
        return self.ready

    #: The API root requests go to (the host name is a placeholder: the transport goes to the
    #: socket whatever the URL says).
    base_url = "http://talkie-local-llm/v1"

    def transport(self) -> httpx.AsyncHTTPTransport | None:
        """A transport to the model's socket (one per event loop / client)."""
        return httpx.AsyncHTTPTransport(uds=self._socket)

    def prefill(self, messages: list[dict[str, Any]]) -> None:
        """Process ``messages`` into the KV cache now (blocking; no answer is generated), so a
        request starting with them only processes what follows. Errors are logged only."""
        if self.ready:
            _prefill(self._socket, self._api_key, messages)

    def endpoint(self) -> EngineEndpoint | None:
        """Where this engine answers, once it is ready."""
        return EngineEndpoint(self.name, self._socket, self._api_key) if self.ready else None

    def close(self) -> None:
        self._worker.close()
        self._ready.clear()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._worker.start()
            _, key, load_seconds = self._worker.call_one("endpoint")
        except TalkieError as exc:
            self.error = str(exc)
            log.error("local LLM %s failed to start: %s", self.name, exc)
        else:
            self._api_key = key
            self.load_seconds = load_seconds
            log.info("local LLM %s ready in %.1f s (model load %.1f s)", self.name,
                     time.perf_counter() - started, load_seconds)  # fmt: skip
        finally:
            self._ready.set()


class AttachedEngine:
    """An engine another process of this machine loaded (``EngineEndpoint``): the same
    interface as ``LocalEngine``, without a model of its own. Session workers use the web
    process's engine this way: one model in memory per machine, not one per session."""

    base_url = LocalEngine.base_url

    def __init__(self, endpoint: EngineEndpoint, options: EngineOptions | None = None) -> None:
        self.name = endpoint.name
        self.options = options or EngineOptions()
        self._endpoint = endpoint
        self.error: str | None = None
        self.load_seconds: float | None = 0.0
        self.ready = True  # if the owner's model went away, requests fail: the brain falls back

    @property
    def api_key(self) -> str:
        return self._endpoint.api_key

    def start(self) -> None:
        """Nothing to load here (the owner process restarts its engine)."""

    def wait_ready(self, timeout: float | None = None) -> bool:
        return True

    def transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(uds=self._endpoint.socket_path)

    def prefill(self, messages: list[dict[str, Any]]) -> None:
        _prefill(self._endpoint.socket_path, self._endpoint.api_key, messages)

    def endpoint(self) -> EngineEndpoint:
        return self._endpoint

    def close(self) -> None:
        """The model belongs to the process that loaded it."""


def _prefill(socket_path: str, api_key: str, messages: list[dict[str, Any]]) -> None:
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), timeout=120) as client:
            client.post(
                f"{LocalEngine.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {api_key}"},
                json={"messages": messages, "max_tokens": 1, "cache_prompt": True},
            ).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("local LLM: prefill failed (%s: %s)", type(exc).__name__, exc)
