"""50 connect/disconnect cycles (Python WebRTC client, no browser) leave nothing behind:
no live sessions, no open conversations, no extra threads or asyncio tasks on the server."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import httpx
from live_client import connect
from live_fakes import FakeConversation
from live_server import LiveServer

CYCLES = 50
WARMUP = 3


def _native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def _wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _cycle(server: LiveServer, i: int) -> None:
    session = await connect(server.url, "astronaut", microphone=i % 2 == 0)
    await asyncio.wait_for(session.channel_open.wait(), 10)
    await session.wait_video(1, timeout=10)
    if i % 3 == 0:  # hang up through the API, then drop the connection
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            r = await http.delete(
                f"/v1/sessions/{session.session_id}",
                headers={"Authorization": f"Bearer {session.token}"},
            )
            assert r.status_code == 200 and r.json()["status"] == "ended", r.text
    await session.close()
    await _wait_until(lambda: len(server.registry) == 0, 10, f"cycle {i} to end")


async def _fill_default_executor() -> None:
    """Grow this loop's default thread pool to its maximum now: it grows lazily with how many
    blocking calls happen to overlap, which says nothing about leaks."""
    await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.05) for _ in range(64)))


def test_connect_disconnect_cycles_do_not_leak(fake_server: LiveServer) -> None:
    async def run() -> dict[str, int]:
        for i in range(WARMUP):
            await _cycle(fake_server, i)
        fake_server.call(_fill_default_executor)
        await _fill_default_executor()
        await asyncio.sleep(0.5)
        base = {
            "threads": threading.active_count(),
            "native": _native_threads(),
            "tasks": fake_server.task_count(),
        }
        t0 = time.monotonic()
        for i in range(CYCLES):
            await _cycle(fake_server, i)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(1.0)
        after = {
            "threads": threading.active_count(),
            "native": _native_threads(),
            "tasks": fake_server.task_count(),
        }
        print(f"\n{CYCLES} cycles in {elapsed:.1f} s; before {base}; after {after}")
        return {**{f"{k}0": v for k, v in base.items()}, **after}

    result = asyncio.run(asyncio.wait_for(run(), 240))
    assert len(fake_server.registry) == 0
    assert FakeConversation.instances and all(c.closed for c in FakeConversation.instances)
    # Pooled executor threads may still be created lazily; a leak would grow with the cycles.
    assert result["threads"] <= result["threads0"] + 2, result
    assert result["native"] <= result["native0"] + 4, result
    assert result["tasks"] <= result["tasks0"] + 1, result
