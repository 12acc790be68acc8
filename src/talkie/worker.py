"""Run a model in its own process and call it like a local object.

Why: the live server renders video in a thread; a TTS or ASR model running in another thread of
the same process holds the GIL in long stretches (their Python-level pre/post-processing) and
made 8 ms renders take 100-400 ms exactly when the character starts or stops speaking. In their
own process they cannot stall the renderer, and one process can serve every session.

The child builds its object once (``factory``, a picklable top-level callable), then answers
``(method, args, kwargs)`` requests in order; a method that returns an iterator streams its items
back as they come. One request at a time (a lock); the process is restarted on next use if it
dies. User-fixable errors raised in the child are raised again in the parent with the same type.
Processes are spawned (not forked), so a script that starts one needs the usual
``if __name__ == "__main__":`` guard. Workers started often (one per session) can come from a
*fork server* instead (``start_method="forkserver"``, ``preload_fork_server``): a clean process
that imported their modules once and forks one worker per request, so a worker skips ~2 s of
imports.

A worker can also be *handed over* (``hand_over``): its object, built and warm, takes the pipe
for a protocol of its own (``serve_connection(conn, *args)``) and the process ends when that
returns. The session host uses this for one-session worker processes prepared ahead of time,
and for a model service: ``serve_endpoint`` answers several processes of this machine at once
on a Unix socket (``ServiceEndpoint``), which they call through ``RemoteWorker``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from talkie.errors import EngineError, InvalidInputError, MissingDependencyError, TalkieError
from talkie.heap import trim_heap_if_due

log = logging.getLogger(__name__)

_ERRORS: dict[str, type[TalkieError]] = {
    "InvalidInputError": InvalidInputError,
    "MissingDependencyError": MissingDependencyError,
    "EngineError": EngineError,
}


HAND_OVER = "serve_connection"
START_METHODS = ("spawn", "forkserver")  # never "fork": see WorkerProcess._ensure


# Models warmed up in this process (the shared ones live as long as it does).
_warmed: weakref.WeakSet[Any] = weakref.WeakSet()


def warm_once(model: Any, warm_up: Callable[[Any], object]) -> None:
    """Call ``warm_up(model)`` the first time ``model`` is warmed in this process: a model's
    first call allocates and is several times slower than the next, and every session would
    otherwise pay it again at its start. A model that cannot be remembered (unhashable) is
    warmed every time."""
    with contextlib.suppress(TypeError):
        if model in _warmed:
            return
    warm_up(model)
    with contextlib.suppress(TypeError):
        _warmed.add(model)


def preload_fork_server(modules: tuple[str, ...]) -> None:
    """Start this process's fork server now, with ``modules`` imported in it (in the
    background), for ``WorkerProcess(start_method="forkserver")``.

    The server is a fresh interpreter (not a fork of this process, whose ONNX Runtime and
    OpenCV pools must not be forked): it only imports, so what it forks has no thread pool
    in use. Only the first call's ``modules`` count (one server per process); a module that
    fails to import there is imported again, with its error, in the worker."""
    from multiprocessing import forkserver

    global _fork_server_started
    with _fork_server_lock:
        if not _fork_server_started:
            mp.get_context("forkserver").set_forkserver_preload(list(modules))
            forkserver.ensure_running()
            _fork_server_started = True


_fork_server_lock = threading.Lock()
_fork_server_started = False


def renice_threads(pid: int, niceness: int) -> None:
    """Set ``niceness`` on every thread of process ``pid`` (Linux nice levels are per thread:
    ``os.nice`` leaves the threads that already exist, e.g. BLAS pools started by imports)."""
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(task), niceness)


def _serve(
    factory: Callable[[], Any], conn: Connection, niceness: int,
    context: tuple[dict[str, str], str] | None = None,
) -> None:  # fmt: skip
    if context is not None:
        # Forked from the fork server, which has the environment and directory of when it
        # started: take the parent's current ones, as a spawned process would.
        environment, directory = context
        os.environ.clear()
        os.environ.update(environment)
        with contextlib.suppress(OSError):
            os.chdir(directory)
    if niceness:
        # A positive level: model work yields to the latency-critical frame loop when the cores
        # are contended, and still runs at full speed when they are not. A negative one (the
        # speech models, whose short bursts are the wait the user feels) needs root or
        # CAP_SYS_NICE; without it the process stays at normal priority.
        try:
            os.nice(niceness)
        except PermissionError:
            log.info("nice %d needs CAP_SYS_NICE: this model process runs at normal priority",
                     niceness)  # fmt: skip
        renice_threads(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0))
    try:
        target = factory()
        conn.send(("ready",))
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    serve_requests(target, conn, hand_over=True)


def serve_requests(
    target: Any, conn: Connection, *, hand_over: bool = False, public_only: bool = False
) -> None:
    """Answer ``(method, args, kwargs)`` requests on ``conn`` until it closes (``public_only``:
    no method whose name starts with "_", for callers other than the process's parent)."""
    while True:
        try:
            method, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        if hand_over and method == HAND_OVER:
            # The object owns the pipe from now on; this process lives as long as it serves.
            target.serve_connection(conn, *args, **kwargs)
            return
        if public_only and method.startswith("_"):
            with contextlib.suppress(OSError):
                conn.send(("error", "InvalidInputError", f"{method} is not a public method"))
            continue
        try:
            try:
                result = getattr(target, method)(*args, **kwargs)
                if isinstance(result, Iterator):
                    for item in result:
                        conn.send(("item", item))
                else:
                    conn.send(("item", result))
                conn.send(("done",))
            except (BrokenPipeError, EOFError):
                raise
            except Exception as exc:
                conn.send(("error", type(exc).__name__, str(exc)))
        except (BrokenPipeError, EOFError, OSError):
            return  # the caller went away (closed or stopped this worker): stop quietly
        trim_heap_if_due()  # what the answer freed goes back to the system (talkie.heap)


def _exchange(conn: Connection, method: str, args: Any, kwargs: Any) -> Iterator[Any]:
    """One request on ``conn``: yields the result (or each item streamed back)."""
    conn.send((method, args, kwargs))
    while True:
        message = conn.recv()
        if message[0] == "done":
            return
        if message[0] == "error":
            raise _ERRORS.get(message[1], EngineError)(message[2])
        yield message[1]


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where a model service answers (``serve_endpoint``): a Unix socket in a folder only this
    user can open, and the key a caller must prove it knows (multiprocessing's HMAC handshake)."""

    address: str
    authkey: bytes = field(repr=False)


def serve_endpoint(target: Any, parent: Connection, endpoint: ServiceEndpoint) -> None:
    """Serve ``target``'s methods to every process that connects to ``endpoint`` (a thread per
    connection), until ``parent`` (the pipe of the process that started this one) closes."""
    # Many callers connect at once when a pool of session workers warms up: a backlog of one
    # (the default) reset their connections.
    listener = Listener(endpoint.address, family="AF_UNIX", backlog=64, authkey=endpoint.authkey)

    def accept() -> None:
        while True:
            try:
                conn = listener.accept()
            except OSError:
                return  # closed below
            except Exception:  # a caller without the key (AuthenticationError): refused
                log.warning("refused a connection to the %s service", type(target).__name__)
                continue
            threading.Thread(
                target=serve_requests, args=(target, conn), kwargs={"public_only": True},
                daemon=True,
            ).start()  # fmt: skip

    threading.Thread(target=accept, name="service-accept", daemon=True).start()
    parent.send(("serving",))
    with contextlib.suppress(EOFError, OSError):
        while True:
            parent.recv()  # nothing is expected; EOF: the starting process went away
    listener.close()


class _Caller:
    """What ``WorkerProcess`` and ``RemoteWorker`` share: ``call_one`` on top of ``call``."""

    name: str

    def call(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        raise NotImplementedError

    def call_one(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method that returns one value (reading the reply through to its end)."""
        items = list(self.call(method, *args, **kwargs))
        if len(items) != 1:
            raise EngineError(f"the {self.name} answered {len(items)} values, not 1")
        return items[0]


class WorkerProcess(_Caller):
    def __init__(
        self,
        *,
        factory: Callable[[], Any],
        name: str,
        start_timeout: float = 60.0,
        niceness: int = 5,
        daemon: bool = True,
        start_method: str = "spawn",
    ) -> None:
        if start_method not in START_METHODS:
            raise InvalidInputError(f"start_method must be spawn or forkserver, not {start_method}")
        self.name = name
        self._start_method = start_method
        # A daemonic process cannot start processes of its own; a session worker must (its
        # conversation's speech models run in model processes), and ends on its own when its
        # parent goes away (its pipe closes).
        self._daemon = daemon
        self._niceness = niceness
        self._factory = factory
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: Any = None
        self._spawned_pid: int | None = None  # the process being started (its warm-up runs)

    def start(self) -> None:
        """Start the process now (and wait until its object is built)."""
        with self._lock:
            self._ensure()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Call ``method`` in the child; yields the result (or each item it streams)."""
        with self._lock:
            conn = self._ensure()
            try:
                yield from _exchange(conn, method, args, kwargs)
            except (EOFError, OSError) as exc:
                self._stop()
                raise EngineError(f"the {self.name} process stopped unexpectedly ({exc})") from exc
            except GeneratorExit:
                # The caller stopped reading mid-answer: the child is out of step, replace it.
                self._stop()
                raise

    def close(self) -> None:
        with self._lock:
            self._stop()

    def hand_over(self, *args: Any, **kwargs: Any) -> tuple[Connection, Any]:
        """Give the started worker to its object's ``serve_connection(conn, *args, **kwargs)``:
        returns the pipe and the ``multiprocessing.Process``, which the caller owns from now on
        (this ``WorkerProcess`` forgets them and would start a fresh process on next use)."""
        with self._lock:
            conn = self._ensure()
            proc = self._proc
            conn.send((HAND_OVER, args, kwargs))
            self._conn, self._proc, self._spawned_pid = None, None, None
            return conn, proc

    @property
    def pid(self) -> int | None:
        """The process's id, also while it is starting (so it can be reniced then)."""
        return int(self._proc.pid) if self._proc is not None else self._spawned_pid

    def _ensure(self) -> Connection:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return self._conn
        self._stop()
        # spawn or the fork server, never fork: this process has ONNX/OpenCV thread pools that
        # must not be forked.
        ctx: Any = mp.get_context(self._start_method)  # a SpawnContext or a ForkServerContext
        context = (dict(os.environ), os.getcwd()) if self._start_method == "forkserver" else None
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_serve,
            args=(self._factory, child, self._niceness, context),
            name=f"talkie-{self.name}",
            daemon=self._daemon,
        )
        proc.start()
        self._spawned_pid = proc.pid
        child.close()
        if not parent.poll(self._start_timeout):
            proc.kill()
            self._spawned_pid = None
            raise EngineError(
                f"the {self.name} process did not start within {self._start_timeout:.0f} s"
            )
        message = parent.recv()
        if message[0] == "error":
            proc.join(timeout=5)
            self._spawned_pid = None
            raise _ERRORS.get(message[1], EngineError)(message[2])
        self._conn, self._proc = parent, proc
        log.info("started the %s process (pid %s)", self.name, proc.pid)
        return parent

    def _stop(self) -> None:
        self._spawned_pid = None
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
        self._conn, self._proc = None, None


class RemoteWorker(_Caller):
    """Calls a model service (``serve_endpoint``) like ``WorkerProcess`` calls its own process:
    one connection, one request at a time, opened on first use and again after a failure."""

    def __init__(
        self, endpoint: ServiceEndpoint, *, name: str, reconnect_wait: float = 30.0
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        self.reconnect_wait = reconnect_wait
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def start(self) -> None:
        with self._lock:
            self._connect()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Like ``WorkerProcess.call``. A connection that broke before the first answer (the
        service was restarted since the last call) is opened again and the request resent."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connect()
                answered = False
                try:
                    for item in _exchange(conn, method, args, kwargs):
                        answered = True
                        yield item
                    return
                except (EOFError, OSError) as exc:
                    self._drop()
                    if attempt == 1 and not answered:
                        continue
                    raise EngineError(
                        f"the {self.name} service stopped unexpectedly ({exc})"
                    ) from exc
                except GeneratorExit:
                    self._drop()  # out of step with the service: a fresh connection next time
                    raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> Connection:
        # A service that stopped is restarted by the process that runs it (a few seconds to
        # load its models): wait for it rather than fail the session's next turn.
        deadline = time.monotonic() + self.reconnect_wait
        while self._conn is None:
            try:
                self._conn = Client(
                    self.endpoint.address, family="AF_UNIX", authkey=self.endpoint.authkey
                )
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError) as exc:
                if time.monotonic() > deadline:
                    raise EngineError(f"the {self.name} service is not running ({exc})") from exc
                time.sleep(0.1)
            except (OSError, EOFError, mp.AuthenticationError) as exc:
                raise EngineError(f"could not reach the {self.name} service ({exc})") from exc
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
