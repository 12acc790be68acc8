"""One worker process per session on this machine (the default of ``talkie serve``).

Why: every session renders 24 fps video in Python; in one process they share one GIL and one
event loop, so a GIL-heavy render or a bug in one session stalls or kills all of them (and the
API). In its own process a session can only hurt itself: if its worker dies, that session ends
("the session's worker process stopped") and the others keep streaming.

Workers are ``talkie.worker.WorkerProcess``es (forked from a fork server that imported their
modules once, never from this process) built around
``session_worker.SessionWorker``; a **warm pool** keeps ``warm`` of them started (imports done,
optionally models loaded) so a new session takes one and answers at once, and a replacement is
started in the background. Signalling and events go over the worker's pipe (see
``session_worker``). ``close`` drains: every session is ended with the reason, then the pool's
workers are stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from talkie.brain.local.brain import node_engine
from talkie.errors import EngineError, InvalidInputError, TalkieError
from talkie.server.hosts.base import (
    HostKind,
    SessionAnswer,
    SessionHostError,
    SessionListener,
    SessionSpec,
    portable,
)
from talkie.server.hosts.session_worker import WarmUp
from talkie.session.character import DEFAULT_VOICE
from talkie.session.events import SessionEvent
from talkie.session.voices import start_speech_service
from talkie.worker import (
    START_METHODS,
    ServiceEndpoint,
    WorkerProcess,
    preload_fork_server,
    renice_threads,
)

log = logging.getLogger(__name__)

WORKER_START_TIMEOUT = 120.0  # a cold worker on a loaded 2-core box imports for a while
CLOSE_GRACE = 10.0  # a worker asked to end has this long before it is killed
POOL_NICENESS = 10  # a pooled worker loads at this nice level, so it never slows live sessions
LLM_WAIT = 120.0  # a pooled worker waits this long for the web process's local LLM
RIGS_PREPARED = 2  # pooled workers prepare the images of the last characters talked to
# What the fork server imports once for every worker it forks (~2 s of a spawned worker's start;
# bench/session_hosts.py --hosts process-cold): the worker's own module, the WebRTC stack and
# the conversation with its engines.
WORKER_IMPORTS = (
    "talkie.server.hosts.session_worker",
    "aiortc",
    "talkie.transport.webrtc",
    "talkie.session.conversation",
)


class ProcessSession:
    """A session in its own worker process, seen from the web process."""

    def __init__(self, host: ProcessHost, spec: SessionSpec, listener: SessionListener) -> None:
        self.session_id = spec.session_id
        self._host = host
        self._spec = spec
        self._listener = listener
        self._conn: Any = None
        self._proc: Any = None
        self._answer: asyncio.Future[SessionAnswer] | None = None
        self._ended: asyncio.Event = asyncio.Event()
        self._end_reason = ""
        self._closing = False
        self.warm = False  # whether it got a pooled (already started) worker
        self.worker_name = ""  # the worker process it runs in (pooled workers are numbered)
        self._counters: dict[str, Any] = {}  # the worker's latest ("stats", ...) report
        self.started_at = time.monotonic()
        self.answered_in: float | None = None  # seconds from start() to the answer

    @property
    def closed(self) -> bool:
        return self._ended.is_set()

    @property
    def pid(self) -> int | None:
        """The worker process's id (None before it has one)."""
        return None if self._proc is None else int(self._proc.pid)

    def stats(self) -> dict[str, Any]:
        return {**self._counters, "host": "process", "pid": self.pid, "warm": self.warm,
                "worker": self.worker_name, "answered_in": self.answered_in}  # fmt: skip

    async def start(self, offer_sdp: str, offer_type: str) -> SessionAnswer:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        worker, self.warm = await self._host.take_worker()
        self.worker_name = worker.name
        if self._closing:  # closed while the worker was starting
            await asyncio.to_thread(worker.close)
            raise SessionHostError(f"the session ended before it started ({self._end_reason})")
        try:
            self._conn, self._proc = await asyncio.to_thread(
                worker.hand_over, self._spec, offer_sdp, offer_type
            )
        except (EngineError, OSError) as exc:
            await asyncio.to_thread(worker.close)
            self._finish(f"the session's worker process failed to start ({exc})")
            raise SessionHostError(f"the session's worker could not start: {exc}") from exc
        self._answer = loop.create_future()
        loop.add_reader(self._conn.fileno(), self._readable)
        answer = await asyncio.shield(self._answer)  # a timeout cancels the wait, not the future
        self.answered_in = time.monotonic() - started
        log.info(
            "session %s: worker pid %s answered in %.2f s (%s)", self.session_id[:8], self.pid,
            self.answered_in, "warm" if self.warm else "cold",
        )  # fmt: skip
        return answer

    async def close(self, reason: str) -> None:
        """Ask the worker to hang up; kill it if it does not within ``CLOSE_GRACE``."""
        if self.closed:
            return
        if not self._closing:
            self._closing = True
            self._end_reason = reason
            if self._conn is None:  # no worker yet
                self._finish(reason)
                return
            try:
                self._conn.send(("end", reason))
            except (BrokenPipeError, EOFError, OSError):
                self._finish(reason)
                return
        try:
            await asyncio.wait_for(self._ended.wait(), CLOSE_GRACE)
        except TimeoutError:
            log.warning("session %s: the worker did not end; killing it", self.session_id[:8])
            self._kill()
            self._finish(reason)

    def _readable(self) -> None:
        """Messages from the worker (on the event loop; each is small and already complete)."""
        try:
            while not self.closed and self._conn.poll():
                self._handle(self._conn.recv())
        except (EOFError, OSError):
            if self.closed:
                return
            code = self._proc.exitcode if self._proc is not None else None
            if code is None and self._proc is not None:
                self._proc.join(0.5)
                code = self._proc.exitcode
            reason = self._end_reason or (
                f"the session's worker process stopped (exit code {code})"
            )
            log.warning("session %s: %s", self.session_id[:8], reason)
            self._finish(reason)

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "event" and isinstance(message[1], SessionEvent):
            self._listener.event(message[1])
        elif kind == "stats" and isinstance(message[1], dict):
            self._counters = message[1]
        elif kind == "answer":
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(SessionAnswer(sdp=message[1], type=message[2]))
        elif kind == "failed":
            error: Exception = (
                InvalidInputError(message[2]) if message[1] == "InvalidInputError"
                else SessionHostError(f"the session could not start: {message[2]}")
            )  # fmt: skip
            if self._answer is not None and not self._answer.done():
                self._answer.set_exception(error)
        elif kind == "closed":
            self._finish(self._end_reason or str(message[1]))

    def _finish(self, reason: str) -> None:
        """The session is over (once): release the pipe and the process, tell the listener."""
        if self._ended.is_set():
            return
        self._ended.set()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(SessionHostError(f"the session ended: {reason}"))
            self._answer.exception()  # retrieved: nobody may be waiting any more
        if self._conn is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._conn.fileno())
            self._conn.close()
        proc = self._proc
        if proc is not None:  # reap it without blocking the loop (it exits on its own)
            self._host.reap(proc)
        self._host.forget(self.session_id)
        self._listener.closed(reason)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()


@functools.cache
def can_raise_priority() -> bool:
    """Whether this process may give a niced process its normal priority back (a child tries)."""
    probe = "import os; os.nice(1); os.setpriority(os.PRIO_PROCESS, 0, 0)"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def renice_tree(pid: int | None, niceness: int) -> None:
    """Set ``niceness`` on every thread of process ``pid`` and of its descendants."""
    todo, seen = ([] if pid is None else [pid]), set()
    while todo:
        current = todo.pop()
        seen.add(current)
        renice_threads(current, niceness)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError, ValueError):
                    children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                    todo.extend(int(c) for c in children if int(c) not in seen)


class ProcessHost:
    """Sessions in worker processes on this machine, with a warm pool of ``warm`` workers."""

    kind: HostKind = "process"

    def __init__(
        self, *, warm: int = 1, knowledge_path: Path | None = None,
        warm_up: WarmUp | None = None, start_timeout: float = WORKER_START_TIMEOUT,
        start_method: str = "forkserver",
    ) -> None:  # fmt: skip
        if warm < 0:
            raise InvalidInputError("the warm pool size cannot be negative")
        self.warm = warm
        # "forkserver": workers are forked from a process that imported WORKER_IMPORTS once
        # (a pool's replacement or a burst's extra worker starts without them); "spawn":
        # each worker imports everything itself.
        if start_method not in START_METHODS:
            raise InvalidInputError(f"start_method must be spawn or forkserver, not {start_method}")
        self.start_method = start_method
        if start_method == "forkserver":
            preload_fork_server(WORKER_IMPORTS)
        self._knowledge_path = knowledge_path
        self._warm_up = warm_up or WarmUp()
        self._start_timeout = start_timeout
        self._sessions: dict[str, ProcessSession] = {}
        self._pool: list[WorkerProcess] = []  # started, waiting for a session
        self._starting = 0  # pool workers being started
        # pooled workers loading now (each with its start): a session arriving before any is
        # ready takes one of these, further along than a new worker would be
        self._loading: dict[WorkerProcess, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._count = 0
        self._recent_rigs: dict[str, Any] = {}  # character id -> rig, most recent last
        self._speech: ServiceEndpoint | None = None  # the machine's speech service, once started
        # Pooled workers start niced only where their priority can be raised again when taken
        # (root or CAP_SYS_NICE); elsewhere a niced session would lose to every other one.
        self._pool_niceness = POOL_NICENESS if can_raise_priority() else 0

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def ready_workers(self) -> int:
        """Started workers waiting in the pool."""
        return len(self._pool)

    def open(self, spec: SessionSpec, listener: SessionListener) -> ProcessSession:
        rig = getattr(spec.character, "rig", None)
        if rig is not None:  # the next pooled workers prepare this character's images
            self._recent_rigs.pop(spec.character.id, None)
            self._recent_rigs[spec.character.id] = rig
            while len(self._recent_rigs) > RIGS_PREPARED:
                self._recent_rigs.pop(next(iter(self._recent_rigs)))
        session = ProcessSession(self, portable(spec, self._knowledge_path), listener)
        self._sessions[spec.session_id] = session
        return session

    async def end(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            await session.close(reason)

    def session(self, session_id: str) -> ProcessSession | None:
        return self._sessions.get(session_id)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def prepare(self) -> None:
        """Fill the warm pool in the background (returns at once)."""
        self._refill()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the pool holds ``warm`` started workers (benchmarks and tests)."""
        deadline = time.monotonic() + timeout
        while len(self._pool) < self.warm:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def take_worker(self) -> tuple[WorkerProcess, bool]:
        """A started worker: from the pool when one is ready (warm); else one the pool is
        loading (it finishes at normal priority); else a new one (cold)."""
        if self._closed:
            raise SessionHostError("the server is shutting down")
        warm = bool(self._pool)
        starting: asyncio.Future[None] | None = None
        if warm:
            worker = self._pool.pop()
        elif self._loading:  # the pool's next worker: further along than a new one
            worker, starting = self._loading.popitem()
            self._starting -= 1  # taken: the pool starts a replacement
        else:
            await asyncio.to_thread(self._ensure_speech_service)
            worker = self._new_worker()
        adopted = starting is not None
        if (warm or adopted) and self._pool_niceness:
            # Its session runs at normal priority (the worker, its model processes, their threads).
            await asyncio.to_thread(renice_tree, worker.pid, 0)
        self._refill()
        if not warm:
            if starting is None:
                starting = asyncio.ensure_future(asyncio.to_thread(worker.start))
            try:
                await asyncio.shield(starting)
            except EngineError as exc:
                raise SessionHostError(f"the session's worker could not start: {exc}") from exc
            except asyncio.CancelledError:
                # The offer gave up (answer timeout): stop the worker once it has started.
                starting.add_done_callback(lambda _: self._close_later(worker))
                raise
            if adopted and self._pool_niceness:  # again: what it started since it was taken
                await asyncio.to_thread(renice_tree, worker.pid, 0)
        return worker, warm

    def _close_later(self, worker: WorkerProcess) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(worker.close))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_worker(self, niceness: int = 0) -> WorkerProcess:
        self._count += 1
        warm_up = dataclasses.replace(
            self._warm_up, rigs=tuple(self._recent_rigs.values()), llm=node_engine(),
            speech=self._speech,
        )  # fmt: skip
        return WorkerProcess(
            factory=warm_up, name=f"session-worker-{self._count}",
            start_timeout=self._start_timeout, niceness=niceness, daemon=False,
            start_method=self.start_method,
        )  # fmt: skip

    def _ensure_speech_service(self) -> None:
        """With models preloaded, the workers share the machine's speech service: started (or
        restarted after a crash) here, before the worker that will use it."""
        if not self._warm_up.models:
            return
        try:
            self._speech = start_speech_service((DEFAULT_VOICE,))
        except TalkieError as exc:  # the workers load their own models instead
            log.warning("no shared speech service (%s): each worker loads its own models", exc)
            self._speech = None

    def _refill(self) -> None:
        while not self._closed and len(self._pool) + self._starting < self.warm:
            self._starting += 1
            task = asyncio.get_running_loop().create_task(self._start_pooled())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_pooled(self) -> None:
        # A worker started while this process's model is still loading would load its own.
        await asyncio.to_thread(node_engine, LLM_WAIT)
        await asyncio.to_thread(self._ensure_speech_service)
        worker = self._new_worker(self._pool_niceness)
        starting = self._loading[worker] = asyncio.ensure_future(asyncio.to_thread(worker.start))
        try:
            await asyncio.shield(starting)
        except Exception:
            log.exception("a warm session worker failed to start")
            return
        finally:
            taken = self._loading.pop(worker, None) is None
            if not taken:
                self._starting -= 1
        if taken:
            return  # a session took it while it loaded
        if self._closed:
            await asyncio.to_thread(worker.close)
        else:
            self._pool.append(worker)

    def reap(self, proc: Any) -> None:
        """Wait for a finished worker process in a thread (no zombies, no blocked loop)."""

        def join() -> None:
            proc.join(CLOSE_GRACE)
            if proc.is_alive():
                proc.kill()
                proc.join(2)

        task = asyncio.get_running_loop().create_task(asyncio.to_thread(join))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str, *, timeout: float) -> None:
        """Drain: end every session (``reason``), then stop the pool's workers."""
        self._closed = True
        sessions = list(self._sessions.values())
        if sessions:
            log.info("draining %d worker sessions (%s)", len(sessions), reason)
            tasks = [asyncio.ensure_future(s.close(reason)) for s in sessions]
            await asyncio.wait(tasks, timeout=timeout)
            for session in sessions:  # past the deadline: stop them the hard way
                if not session.closed:
                    session._kill()
        pool, self._pool = self._pool, []
        await asyncio.gather(*(asyncio.to_thread(w.close) for w in pool))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
