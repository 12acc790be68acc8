"""Sessions in the web server's own process: today's behaviour, for tests and tiny installs.

Also the session core every host runs (``build_peer``): the worker process and the Ray actor
build exactly the same conversation and WebRTC peer from a ``SessionSpec``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from talkie.server.hosts.base import HostKind, SessionAnswer, SessionListener, SessionSpec
from talkie.server.ratelimit import MessageLimitedConversation, RateLimiter
from talkie.session.events import SessionEvent
from talkie.transport.webrtc import WebRtcPeer

log = logging.getLogger(__name__)


def build_peer(
    spec: SessionSpec,
    *,
    on_event: Callable[[SessionEvent], None],
    on_closed: Callable[[str], None],
) -> WebRtcPeer:
    """The session's conversation (typed messages rate-limited) and the peer that streams it."""
    conversation = MessageLimitedConversation(
        spec.conversation_factory(spec.character),
        limiter=RateLimiter(per_minute=spec.messages_per_minute, burst=spec.message_burst),
        key=f"session:{spec.session_id}",
    )
    return WebRtcPeer(
        conversation, options=spec.webrtc, session_id=spec.session_id,
        on_closed=lambda peer: on_closed(peer.close_reason or "closed"), on_event=on_event,
    )  # fmt: skip


class InProcessSession:
    """A session whose peer runs on the web server's event loop."""

    def __init__(self, spec: SessionSpec, listener: SessionListener, forget: Callable[[str], None]):
        self.session_id = spec.session_id

        def closed(reason: str) -> None:
            forget(self.session_id)
            listener.closed(reason)

        self.peer = build_peer(spec, on_event=listener.event, on_closed=closed)

    @property
    def closed(self) -> bool:
        return self.peer.closed

    @property
    def conversation(self) -> Any:
        """The live conversation itself (benchmarks and tests look inside it)."""
        return self.peer.conversation

    async def start(self, offer_sdp: str, offer_type: str) -> SessionAnswer:
        answer = await self.peer.answer(offer_sdp, offer_type)
        return SessionAnswer(sdp=answer.sdp, type=answer.type)

    async def close(self, reason: str) -> None:
        await self.peer.close(reason)

    def stats(self) -> dict[str, Any]:
        return self.peer.stats()


class InProcessHost:
    """Every session in this process (a slow render in one can stall the others)."""

    kind: HostKind = "inprocess"

    def __init__(self) -> None:
        self._sessions: dict[str, InProcessSession] = {}

    def open(self, spec: SessionSpec, listener: SessionListener) -> InProcessSession:
        session = InProcessSession(spec, listener, self._forget)
        self._sessions[spec.session_id] = session
        return session

    def _forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def end(self, session_id: str, reason: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            await session.close(reason)

    async def prepare(self) -> None:
        """Nothing to warm up: the conversation is built in this process on demand."""

    async def close(self, reason: str, *, timeout: float) -> None:
        import asyncio

        sessions = list(self._sessions.values())
        if sessions:
            await asyncio.wait([asyncio.ensure_future(s.close(reason)) for s in sessions],
                               timeout=timeout)  # fmt: skip
