"""Give the memory a process has freed back to the system, now and then.

Why: a talking session allocates and frees large buffers many times a second from several
threads (frames, audio clauses, the encoder's pictures). glibc keeps freed heap memory in its
arenas for reuse, and with many threads and mixed sizes much of it stays resident: a session's
resident memory grew by ~1.4 MB per answered question (595 -> 642 MB over 25 turns) while its
Python objects stayed flat (tracemalloc), and session workers grew 37-54 MB over a 10-minute
soak. ``malloc_trim(0)`` hands the free pages back (in the same run: 551-562 MB across 25 turns
with a trim every 5). It takes a few milliseconds, so it runs now and then, off the event loop:
``trim_heap_forever`` as a task of a process hosting sessions, ``trim_heap_if_due`` after the
requests a model process answers.

On a system without glibc (musl, macOS) there is nothing to call and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import threading
import time
from typing import Any

TRIM_EVERY_S = 30.0

_lock = threading.Lock()
_last_trim = time.monotonic()


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None."""
    for name in (ctypes.util.find_library("c"), "libc.so.6"):
        if name:
            try:
                return getattr(ctypes.CDLL(name), "malloc_trim", None)
            except OSError:
                continue
    return None


def trim_heap() -> bool:
    """Return the heap's free pages to the system now; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def trim_heap_if_due(every_s: float = TRIM_EVERY_S) -> bool:
    """``trim_heap`` when the last trim of this process was at least ``every_s`` ago (safe to
    call from several threads; one of them trims). Blocks for the trim: not on the event loop."""
    global _last_trim
    with _lock:
        now = time.monotonic()
        if now - _last_trim < every_s:
            return False
        _last_trim = now
    return trim_heap()


async def trim_heap_forever(every_s: float = TRIM_EVERY_S) -> None:
    """Trim every ``every_s`` seconds, in a worker thread, until cancelled (a task of a process
    that hosts sessions)."""
    while True:
        await asyncio.sleep(every_s)
        await asyncio.to_thread(trim_heap)
