"""Sessions as Ray actors on a Ray cluster (``talkie serve --host-kind ray``).

The web server stays stateless about media: it creates the session records, then asks Ray for
an actor (``SessionActor``, an async actor needing one CPU, spread over the nodes) that builds
the conversation and the WebRTC peer on whichever node it lands on, and proxies the signalling
(the offer goes in, the answer comes back). Events come back by long-polling the actor
(``poll``), so the web process needs no inbound connection from the nodes; it writes them to
the store as for the other hosts.

Networking: the browser's media flows straight to the node that runs the actor (its ICE host
candidates are the node's addresses), so nodes must be reachable from the browsers' network,
or a TURN server must relay (``--ice-server``). The web server only sees signalling.

Models: with ``models=True`` (``talkie serve`` preloads them) each node gets one ``NodeModels``
actor (no CPU reserved, pinned to its node) that loads the local LLM once and runs the node's
speech service (``talkie.session.voices``: the recognizer and the voices); the node's session
actors use them through Unix sockets on that node (``EngineEndpoint``, ``ServiceEndpoint``), as
the process host's workers use the web process's. Without it every session actor loads its own
copies (~0.7 GB and ~10 CPU-seconds for the LLM, ~0.6 GB and two processes for speech).
``ray`` is an optional extra: ``pip install 'talkie[ray]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.server.hosts.base import (
    HostKind,
    SessionAnswer,
    SessionHostError,
    SessionListener,
    SessionSpec,
    one_session_process_threads,
    portable,
)
from talkie.session.events import SessionEvent

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how long one long-poll waits for events in the actor
ACTOR_START_TIMEOUT = 120.0
LLM_WAIT = 120.0  # a session waits this long for its node's shared models (the first there)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "the Ray session host needs Ray: pip install 'talkie[ray]'"
        ) from exc
    return ray


class SessionActor:
    """One live session inside a Ray actor (async: it runs its own event loop there)."""

    def __init__(self) -> None:
        one_session_process_threads()
        self._queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._peer: Any = None
        self._ended = False

    def node(self) -> dict[str, Any]:
        """Where this actor runs (node id and process id), for placement reports."""
        import os

        ray = import_ray()
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def llm(self) -> str | None:
        """Whose local LLM this actor's brain uses ("attached": its node's; "own"; None)."""
        from talkie.brain.local.brain import engine_kind

        return engine_kind()

    def speech(self) -> str:
        """Where this actor's speech models run ("node": its node's service; "own")."""
        from talkie.session.voices import uses_speech_service

        return "node" if uses_speech_service() else "own"

    async def start(
        self, spec: SessionSpec, offer_sdp: str, offer_type: str, models: Any = None
    ) -> tuple[str, str]:
        """Build the session and answer the offer; ``models``: the node's ``SharedModels``."""
        from talkie.server.hosts.inprocess import build_peer

        if models is not None and models.llm is not None:
            from talkie.brain.local.brain import attach_engine

            attach_engine(models.llm)
        if models is not None and models.speech is not None:
            from talkie.session.voices import use_speech_service

            use_speech_service(models.speech)

        def closed(reason: str) -> None:
            self._ended = True
            self._queue.put_nowait(("closed", reason))

        self._peer = build_peer(
            spec, on_event=lambda e: self._queue.put_nowait(("event", e)), on_closed=closed
        )
        answer = await self._peer.answer(offer_sdp, offer_type)
        return answer.sdp, answer.type

    async def poll(self, timeout: float) -> list[tuple[Any, ...]]:
        """The messages since the last poll (waits up to ``timeout`` for the first one)."""
        out: list[tuple[Any, ...]] = []
        with contextlib.suppress(TimeoutError):
            out.append(await asyncio.wait_for(self._queue.get(), timeout))
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def end(self, reason: str) -> None:
        if self._peer is not None:
            await self._peer.close(reason)
        elif not self._ended:
            self._ended = True
            self._queue.put_nowait(("closed", reason))


@dataclass(frozen=True)
class SharedModels:
    """Where a node's shared models answer (each None when unavailable)."""

    llm: Any = None  # talkie.brain.local.engine.EngineEndpoint
    speech: Any = None  # talkie.worker.ServiceEndpoint


class NodeModels:
    """The models one node's sessions share (an actor pinned to the node): the local LLM, when
    it is the brain, and the speech service load here once and answer on Unix sockets."""

    def __init__(self) -> None:
        from talkie.server.app import start_local_llm

        start_local_llm()  # in the background; nothing when another LLM is configured
        self._speech: Any = None
        self._speech_error = ""
        self._speech_thread = threading.Thread(target=self._start_speech, daemon=True)
        self._speech_thread.start()

    def _start_speech(self) -> None:
        from talkie.errors import TalkieError
        from talkie.session.character import DEFAULT_VOICE
        from talkie.session.voices import start_speech_service

        try:
            self._speech = start_speech_service((DEFAULT_VOICE,))
        except TalkieError as exc:  # the node's sessions load their own speech models
            self._speech_error = str(exc)

    def shared(self, timeout: float) -> SharedModels:
        """The node's models once ready (waits up to ``timeout`` s for each)."""
        from talkie.brain.local.brain import node_engine

        deadline = time.monotonic() + timeout
        llm = node_engine(timeout)
        self._speech_thread.join(max(0.0, deadline - time.monotonic()))
        if self._speech_error:
            log.warning("no speech service on this node: %s", self._speech_error)
        return SharedModels(llm=llm, speech=self._speech)


class RaySession:
    """A session on a Ray actor, seen from the web process."""

    def __init__(self, host: RayHost, spec: SessionSpec, listener: SessionListener) -> None:
        self.session_id = spec.session_id
        self._host = host
        self._spec = spec
        self._listener = listener
        self._actor: Any = None
        self._poller: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._reason = ""
        self.node: dict[str, Any] = {}

    @property
    def closed(self) -> bool:
        return self._ended.is_set()

    def stats(self) -> dict[str, Any]:
        return {"host": "ray", **self.node}

    async def start(self, offer_sdp: str, offer_type: str) -> SessionAnswer:
        ray = self._host.ray
        self._actor = self._host.actor_class.options(
            name=f"talkie-{self.session_id}", num_cpus=self._host.cpus_per_session,
            scheduling_strategy="SPREAD",
        ).remote()  # fmt: skip
        try:
            self.node = await self._actor.node.remote()
            models = await self._host.node_models(self.node["node_id"])
            sdp, kind = await self._actor.start.remote(self._spec, offer_sdp, offer_type, models)
            self.node["llm"] = await self._actor.llm.remote()
            self.node["speech"] = await self._actor.speech.remote()
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            self._finish(f"the session could not start ({type(cause).__name__})")
            if isinstance(cause, InvalidInputError):
                raise InvalidInputError(str(cause)) from None
            raise SessionHostError(f"the session could not start on Ray: {cause}") from None
        except ray.exceptions.RayError as exc:
            self._finish("the session's Ray actor failed")
            raise SessionHostError(f"the session could not start on Ray: {exc}") from None
        self._poller = asyncio.get_running_loop().create_task(self._poll())
        return SessionAnswer(sdp=sdp, type=kind)

    async def _poll(self) -> None:
        ray = self._host.ray
        while not self.closed:
            try:
                messages = await self._actor.poll.remote(POLL_SECONDS)
            except ray.exceptions.RayError as exc:
                log.warning("session %s: its Ray actor died: %s", self.session_id[:8], exc)
                self._finish(self._reason or "the session's Ray actor stopped")
                return
            for message in messages:
                if message[0] == "event" and isinstance(message[1], SessionEvent):
                    self._listener.event(message[1])
                elif message[0] == "closed":
                    self._finish(self._reason or str(message[1]))
                    return

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self._reason = self._reason or reason
        if self._actor is None:
            self._finish(reason)
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._actor.end.remote(reason), 15.0)
        try:
            await asyncio.wait_for(self._ended.wait(), 5.0)
        except TimeoutError:
            self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self._ended.is_set():
            return
        self._ended.set()
        if self._actor is not None:  # the actor's process is released for the next session
            with contextlib.suppress(Exception):
                self._host.ray.kill(self._actor)
        self._host.forget(self.session_id)
        self._listener.closed(reason)


class RayHost:
    """Sessions as Ray actors. ``address``: the cluster (``ray://...`` or ``HOST:PORT`` of a
    running head; None: ``$RAY_ADDRESS``, else a local single-node Ray started here)."""

    kind: HostKind = "ray"

    def __init__(
        self, *, address: str | None = None, knowledge_path: Path | None = None,
        cpus_per_session: float = 1.0, init: bool = True, models: bool = False,
    ) -> None:  # fmt: skip
        self.ray = import_ray()
        self.address = address
        self.cpus_per_session = cpus_per_session
        self.models = models
        self._knowledge_path = knowledge_path
        self._sessions: dict[str, RaySession] = {}
        self._init = init
        self.actor_class: Any = self.ray.remote(SessionActor)
        self._models_class: Any = self.ray.remote(NodeModels)
        self._node_models: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, spec: SessionSpec, listener: SessionListener) -> RaySession:
        session = RaySession(self, portable(spec, self._knowledge_path), listener)
        self._sessions[spec.session_id] = session
        return session

    def session(self, session_id: str) -> RaySession | None:
        return self._sessions.get(session_id)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def end(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            await session.close(reason)

    async def prepare(self) -> None:
        """Connect to the cluster (in a thread: ``ray.init`` blocks); with ``models``, every
        node starts loading its shared models now, ahead of its first session."""
        if self._init and not self.ray.is_initialized():
            started = time.monotonic()
            await asyncio.to_thread(
                self.ray.init, address=self.address, ignore_reinit_error=True,
                logging_level=logging.WARNING, log_to_driver=False,
            )  # fmt: skip
            log.info("connected to Ray in %.1f s: %s", time.monotonic() - started,
                     self.ray.cluster_resources())  # fmt: skip
        if self.models:
            nodes = await asyncio.to_thread(self.ray.nodes)
            for node in nodes:
                if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0:
                    self._models_on(node["NodeID"])

    def _models_on(self, node_id: str) -> Any:
        """The node's ``NodeModels`` actor, started if needed (it lives as long as this web
        process's connection to the cluster)."""
        actor = self._node_models.get(node_id)
        if actor is None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            actor = self._node_models[node_id] = self._models_class.options(
                name=f"talkie-models-{node_id}", get_if_exists=True, num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote()  # fmt: skip
        return actor

    async def node_models(self, node_id: str) -> SharedModels | None:
        """The shared models on ``node_id`` for a session there (None: without ``models``, or
        the node's models actor failed: the session loads its own)."""
        if not self.models:
            return None
        try:
            shared: SharedModels = await self._models_on(node_id).shared.remote(LLM_WAIT)
            return shared
        except self.ray.exceptions.RayError as exc:
            log.warning("the shared models of node %s are unavailable: %s", node_id[:8], exc)
            self._node_models.pop(node_id, None)  # started again for the next session there
            return None

    async def close(self, reason: str, *, timeout: float) -> None:
        sessions = list(self._sessions.values())
        if sessions:
            await asyncio.wait(
                [asyncio.ensure_future(s.close(reason)) for s in sessions], timeout=timeout
            )
        for actor in self._node_models.values():  # their models leave the nodes' memory
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self._node_models.clear()
