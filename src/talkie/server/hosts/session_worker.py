"""The inside of a session worker process (``ProcessHost``): one live session on its own event
loop, talking to the web process over a pipe.

The process is a ``talkie.worker.WorkerProcess`` whose object (``SessionWorker``) is built when
the process starts, before any session exists: that is the warm-up (imports of the conversation,
the WebRTC stack and the renderer, optionally the speech models), so a pooled worker answers an
offer in a fraction of a second. The web process then hands it over (``serve_connection``) with
the session's spec and the browser's offer.

Messages on the pipe (tuples; events are the typed ``SessionEvent`` objects, pickled):

- web -> worker: ``("end", reason)``
- worker -> web: ``("answer", sdp, type)`` | ``("failed", error_type, message)`` |
  ``("event", SessionEvent)`` | ``("stats", dict)`` (the peer's counters, every
  ``STATS_EVERY`` s, for metrics and admission) | ``("closed", reason)``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from talkie.heap import trim_heap_forever
from talkie.server.hosts.base import SessionSpec, one_session_process_threads

log = logging.getLogger(__name__)

PARENT_GONE = "the server went away"
STATS_EVERY = 2.0  # seconds between counter reports (the metrics sampler's own period)


@dataclass(frozen=True)
class WarmUp:
    """What a worker prepares before its session: ``models`` also loads the speech recognizer,
    the default voice and the local LLM (when it is the brain), so the session does not wait
    for them (measured: offer -> answer 13 s without, 3.4 s with; bench/session_hosts.py)."""

    models: bool = False
    # the rigs of the characters most recently talked to: their framed images are built ahead
    # (~0.6 s each, talkie.render.meshwarp.prepare_stage), as most sessions are of the same few
    rigs: tuple[Any, ...] = ()
    # the web process's local LLM (talkie.brain.local.engine.EngineEndpoint): sessions use it
    # instead of loading the model in every worker (~1 GB and ~10 CPU-seconds each)
    llm: Any = None
    # the machine's speech service (talkie.worker.ServiceEndpoint, talkie.session.voices):
    # sessions call its recognizer and voices instead of starting model processes of their own
    speech: Any = None

    def __call__(self) -> SessionWorker:
        return SessionWorker(self)


class _ModelWarmUp:
    """Loads and warms the session's models in a thread (``WarmUp.models``)."""

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="talkie-warm-up", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from talkie.server.app import start_local_llm
            from talkie.session.character import DEFAULT_VOICE
            from talkie.session.parts import warm_up_models

            # The speech models (the machine's service, else this worker's own model processes,
            # talkie.session.voices) and the turn models: loading and warming them here keeps
            # them off the session's start (0.8 -> 0.3 s offer to answer,
            # bench/session_hosts.py) and its first answer.
            start_local_llm()  # loads in the background when the local LLM is the brain
            warm_up_models(DEFAULT_VOICE)
        except BaseException as exc:  # reported by wait(), in the worker's start
            self._error = exc

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


class SessionWorker:
    """Built in the worker process at its start (the warm-up), then serves one session."""

    def __init__(self, warm_up: WarmUp) -> None:
        # Ctrl-C in a terminal reaches the whole process group: the web process drains its
        # sessions (graceful shutdown); a worker killed by the same signal would cut them off.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        one_session_process_threads()
        if warm_up.llm is not None:  # before the warm-up, which would load an LLM of its own
            from talkie.brain.local.brain import attach_engine

            attach_engine(warm_up.llm)
        if warm_up.speech is not None:
            from talkie.session.voices import use_speech_service

            use_speech_service(warm_up.speech)
        # The models load in their own processes: start them first, and import the WebRTC
        # stack meanwhile (the warm-up took 7.4 s instead of 8.9 s, medians of six; noisy:
        # bench/session_hosts.py --hosts warm-up).
        models = _ModelWarmUp() if warm_up.models else None
        import aiortc  # noqa: F401 - the WebRTC stack, imported ahead of the offer

        import talkie.transport.webrtc  # noqa: F401

        try:  # the real conversation and its engines (absent only in stripped-down installs)
            import talkie.session.conversation  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a partial install
            log.warning("the real conversation is not importable here: %s", exc)
        if models is not None:
            models.wait()
        if warm_up.rigs:
            from talkie.render.meshwarp import RenderOptions, prepare_stage

            for rig in warm_up.rigs:
                prepare_stage(rig, RenderOptions().size)

    def ping(self) -> str:
        return "ready"

    def warm_state(self) -> dict[str, Any]:
        """What this worker has ready: characters' images (``WarmUp.rigs``), whose local
        LLM its sessions use ("attached": the web process's; "own"; None: not loaded) and the
        size of OpenCV's thread pool (``one_session_process_threads``)."""
        import cv2

        from talkie.brain.local.brain import engine_kind
        from talkie.render.meshwarp import prepared_stages

        return {
            "prepared_stages": prepared_stages(),
            "llm": engine_kind(),
            "opencv_threads": cv2.getNumThreads(),
        }

    def serve_connection(self, conn: Connection, spec: SessionSpec, sdp: str, kind: str) -> None:
        """Run the session until it closes (called by ``talkie.worker`` on hand-over)."""
        try:
            asyncio.run(run_session(conn, spec, sdp, kind))
        finally:
            conn.close()


async def run_session(conn: Connection, spec: SessionSpec, offer_sdp: str, offer_type: str) -> None:
    from talkie.server.hosts.inprocess import build_peer

    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def send(message: tuple[Any, ...]) -> None:
        try:
            conn.send(message)
        except (BrokenPipeError, EOFError, OSError):  # the web process is gone: end the session
            close_soon(PARENT_GONE)

    def closed(reason: str) -> None:
        if not ended.done():
            ended.set_result(reason)

    peer = build_peer(spec, on_event=lambda e: send(("event", e)), on_closed=closed)
    closing: list[asyncio.Task[None]] = []

    def close_soon(reason: str) -> None:
        if not closing:
            closing.append(loop.create_task(peer.close(reason)))

    def from_parent() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "end":
                    close_soon(str(message[1]))
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            close_soon(PARENT_GONE)

    loop.add_reader(conn.fileno(), from_parent)
    try:
        answer = await peer.answer(offer_sdp, offer_type)
    except Exception as exc:
        send(("failed", type(exc).__name__, str(exc)))
        await peer.close("the offer could not be answered")
        return
    send(("answer", answer.sdp, answer.type))

    async def report_stats() -> None:
        while True:
            # the worker's own CPU (every thread): the session's cost, which the web
            # process cannot see in its own CPU time (talkie.server.ops.monitor)
            send(("stats", {**peer.stats(), "cpu_seconds": time.process_time()}))
            await asyncio.sleep(STATS_EVERY)

    reporter = loop.create_task(report_stats())
    trimmer = loop.create_task(trim_heap_forever())
    reason = await ended
    reporter.cancel()
    trimmer.cancel()
    with contextlib.suppress(Exception):  # the pipe may be closed already
        loop.remove_reader(conn.fileno())
    send(("closed", reason))
