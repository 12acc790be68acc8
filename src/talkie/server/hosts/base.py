"""The session host boundary: where a live session (its conversation and WebRTC peer) runs.

The web process creates sessions, checks who may talk to what and keeps the records; a
``SessionHost`` runs the sessions themselves: in the web process (``InProcessHost``), in a
worker process of their own (``ProcessHost``) or as actors on a Ray cluster (``RayHost``). The
routes talk only to the host: ``open(spec, listener)`` gives a ``HostedSession`` that answers
the browser's offer, ``end(session_id, reason)`` hangs up, and the host reports each session's
typed events (``SessionEvent``, e.g. ``TurnFinished`` for transcripts and traces) and its end
(``closed(reason)``) back to the listener, in the web process, which writes them to the store.

A ``SessionSpec`` is everything a session needs, and is picklable (for the process and Ray
hosts): the character (with its memory notes), the WebRTC options, the conversation factory
(a top-level callable) and the typed-message rate limit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from talkie.brain.kb import Passage
from talkie.errors import TalkieError
from talkie.session.character import Character
from talkie.session.contract import LiveConversation
from talkie.session.events import SessionEvent
from talkie.transport.webrtc import WebRtcOptions

log = logging.getLogger(__name__)

HostKind = Literal["inprocess", "process", "ray"]
HOST_KINDS: tuple[HostKind, ...] = ("inprocess", "process", "ray")


class SessionHostError(TalkieError):
    """A session could not be started or reached on its host (HTTP 503)."""


@dataclass(frozen=True)
class SessionSpec:
    """What one live session needs, wherever it runs (picklable for process and Ray hosts)."""

    session_id: str
    character: Character
    conversation_factory: Callable[[Any], LiveConversation]
    webrtc: WebRtcOptions = field(default_factory=WebRtcOptions)
    messages_per_minute: int = 20
    message_burst: int = 5


@dataclass(frozen=True)
class SessionAnswer:
    """The WebRTC answer for the browser's offer."""

    sdp: str
    type: str


class SessionListener(Protocol):
    """The web process's side of one session: its events and its end, as the host reports
    them (always on the web process's event loop)."""

    def event(self, event: SessionEvent) -> None: ...

    def closed(self, reason: str) -> None: ...


class HostedSession(Protocol):
    """One session on a host: answer the offer once, then it lives until ``close``."""

    session_id: str

    @property
    def closed(self) -> bool: ...

    async def start(self, offer_sdp: str, offer_type: str) -> SessionAnswer: ...

    async def close(self, reason: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class SessionHost(Protocol):
    """Runs live sessions. ``prepare`` warms the host up (e.g. a pool of ready workers);
    ``close`` drains it (ends every session with ``reason``, then stops its workers)."""

    kind: HostKind

    def open(self, spec: SessionSpec, listener: SessionListener) -> HostedSession: ...

    async def end(self, session_id: str, reason: str) -> None: ...

    async def prepare(self) -> None: ...

    async def close(self, reason: str, *, timeout: float) -> None: ...


@dataclass(frozen=True)
class DocumentsAt:
    """A character's documents in the knowledge base file at ``path``, as a brain's
    ``Retriever`` that can travel to another process: it opens the (SQLite) knowledge base on
    its first search there. A character without documents costs nothing (no embedding model
    is loaded to search an empty index)."""

    path: Path
    character_id: str

    def search(self, query: str, k: int = 3) -> list[Passage]:
        kb = _open_knowledge(self.path)
        if not kb.list_documents(self.character_id):
            return []
        return kb.search(self.character_id, query, k=k)


_knowledge_bases: dict[Path, Any] = {}


def _open_knowledge(path: Path) -> Any:
    from talkie.brain.kb import KnowledgeBase
    from talkie.brain.kb.embedding import LazyEmbedder

    kb = _knowledge_bases.get(path)
    if kb is None:
        kb = _knowledge_bases[path] = KnowledgeBase(path, embedder=LazyEmbedder())
    return kb


def portable(spec: SessionSpec, knowledge_path: Path | None) -> SessionSpec:
    """The spec with a character that can be pickled: its documents are reached through the
    knowledge base file, not the web process's open one."""
    character = spec.character
    if character.knowledge is not None and not isinstance(character.knowledge, DocumentsAt):
        documents = DocumentsAt(knowledge_path, character.id) if knowledge_path else None
        character = dataclasses.replace(character, knowledge=documents)
    return dataclasses.replace(spec, character=character)


def one_session_process_threads() -> None:
    """Thread pools for a process that runs one session (a process or Ray worker).

    OpenCV's pool (one thread per core) splits each remap, resize and colour conversion; with
    every session in a process of its own the sessions are the parallelism, and the pool's
    hand-offs are pure cost: a talking 720p frame (render + H.264) took 14.4 ms of CPU with
    one thread against 17.2 ms with two (medians of three interleaved rounds; 1.4 ms longer
    in wall time, of a 41.7 ms frame; bench/opencv_threads.py), ~7 % of a core per session.
    ``TALKIE_OPENCV_THREADS`` sets another size (0: OpenCV's own choice).
    """
    import os

    import cv2

    raw = os.environ.get("TALKIE_OPENCV_THREADS", "1").strip() or "1"
    try:
        threads = int(raw)
    except ValueError:
        log.warning("TALKIE_OPENCV_THREADS=%r is not a number: using 1", raw)
        threads = 1
    if threads > 0:
        cv2.setNumThreads(threads)
