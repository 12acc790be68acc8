"""The live sessions of one server: a bounded registry of the sessions its host runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from talkie.server.hosts.base import HostedSession

log = logging.getLogger(__name__)


class SessionLimitError(Exception):
    """Every session slot is taken (HTTP 503)."""


class _Slot:
    used = False


class SessionRegistry:
    """Live sessions by id, with at most ``max_sessions`` live or starting at once.

    A request first ``reserve()``s a slot (so concurrent offers cannot overshoot the limit while
    they are being answered), then ``add()``s its session into that slot. Sessions are removed
    (``discard``) when they close. The entries are the host's ``HostedSession``s (for the
    in-process host, they hold the WebRTC peer itself).
    """

    def __init__(self, *, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._peers: dict[str, HostedSession] = {}
        self._reserved = 0

    def __len__(self) -> int:
        return len(self._peers)

    def peers(self) -> list[HostedSession]:
        return list(self._peers.values())

    def get(self, session_id: str) -> HostedSession | None:
        return self._peers.get(session_id)

    @contextmanager
    def reserve(self) -> Iterator[_Slot]:
        """Hold one slot for a session being created; raises ``SessionLimitError`` if full."""
        if len(self._peers) + self._reserved >= self.max_sessions:
            raise SessionLimitError(
                f"Talkie is busy: all {self.max_sessions} live sessions are in use; "
                "try again in a minute"
            )
        self._reserved += 1
        slot = _Slot()
        try:
            yield slot
        finally:
            if not slot.used:
                self._reserved -= 1

    def add(self, peer: HostedSession, slot: _Slot) -> None:
        """Put a session into a reserved slot."""
        if slot.used:
            raise RuntimeError("this slot already holds a session")
        slot.used = True
        self._reserved -= 1
        self._peers[peer.session_id] = peer
        log.info("session %s started (%d live)", peer.session_id[:8], len(self._peers))

    def discard(self, session_id: str) -> None:
        if self._peers.pop(session_id, None) is not None:
            log.info("session %s ended (%d live)", session_id[:8], len(self._peers))

    async def close_all(self, reason: str, *, timeout: float) -> None:
        peers = self.peers()
        if not peers:
            return
        log.info("closing %d live sessions (%s)", len(peers), reason)
        tasks = [asyncio.ensure_future(p.close(reason)) for p in peers]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d sessions did not close within %.0f s", len(pending), timeout)
