"""Rate limits: token buckets per API key and per session (HTTP requests and typed messages).

In memory, per server process: a limit protects this server's CPU and the LLM bill, so it does
not need to be shared between processes. A refused request gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from talkie.server.errors import ApiError

_MAX_BUCKETS = 10_000  # forget idle buckets beyond this many (a full bucket is no state)


class RateLimiter:
    """``rate`` events per minute on average, bursts of up to ``burst`` at once, per key."""

    def __init__(self, *, per_minute: float, burst: int) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.per_second = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def wait_time(self, key: str, *, now: float | None = None) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > _MAX_BUCKETS:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def check(self, key: str, what: str) -> None:
        """Raise a 429 ``ApiError`` (with Retry-After) when ``key`` is over its limit."""
        wait = self.wait_time(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429, "rate_limited", f"too many {what}; retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )  # fmt: skip

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.per_second >= self.burst:
                del self._buckets[key]


class MessageLimitedConversation:
    """Wraps a ``LiveConversation``: typed messages (``{"type": "text"}`` client events) are
    limited per session, so a script on the data channel cannot run up the brain's bill. Voice
    turns need no limit: each takes as long as the user speaks. Everything else is delegated."""

    def __init__(self, inner: Any, *, limiter: RateLimiter, key: str) -> None:
        self._inner = inner
        self._limiter = limiter
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def handle_client_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "text":
            wait = self._limiter.wait_time(self._key)
            if wait > 0:  # the transport sends this to the page as an error event
                raise ValueError(f"too many messages; wait {max(1, math.ceil(wait))} s")
        self._inner.handle_client_event(event)
