"""An asyncio event loop on virtual time, for turn-taking tests that are fast and repeatable.

The loop's clock only moves when nothing is ready to run: it then jumps straight to the next
timer. Work done on the loop (rendering a frame, running Whisper inline) takes no virtual time,
so a minute of conversation runs in seconds of real time and the same way every time, however
busy the machine is. Real I/O still works (it is polled before every jump); work in other
threads does not belong in these tests (the session's parts run inline).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout is None or self.loop is None:
            return ready if ready or timeout == 0 else super().select(timeout)
        if timeout > 0:
            self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = 0.0

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a new virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
