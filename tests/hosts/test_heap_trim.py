"""Freed heap memory goes back to the system (talkie.heap), in a fresh process where glibc keeps
it: many mid-sized buffers are freed while one allocated after them pins the top of the heap,
the way frames and audio clauses are freed under a session that keeps running."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from talkie import heap

SCRIPT = textwrap.dedent(
    """
    import json, numpy as np
    from talkie.heap import trim_heap

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    # Freeing one big mmapped buffer raises glibc's mmap threshold (to 4 MB here), so the
    # 256 KB buffers below come from the heap, as a long-running process's buffers do.
    del_me = np.ones(4 * 1024 * 1024 // 8)
    del del_me
    buffers = [np.ones(256 * 1024 // 8) for _ in range(800)]  # 200 MB
    pin = np.ones(256 * 1024 // 8)  # allocated last: the heap cannot shrink below it
    del buffers
    freed = rss_mb()
    trimmed = trim_heap()
    print(json.dumps({"freed": freed, "after": rss_mb(), "trimmed": trimmed}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trimming_returns_freed_heap_memory_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nRSS with 200 MB freed: {result['freed']:.0f} MB; trimmed: {result['after']:.0f} MB")
    assert result["trimmed"] is True
    assert result["freed"] - result["after"] > 150  # most of the 200 MB went back


def test_trimming_when_due_runs_at_most_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    monkeypatch.setattr(heap, "trim_heap", lambda: calls.append(time.monotonic()) or True)
    monkeypatch.setattr(heap, "_last_trim", time.monotonic() - 100.0)
    assert heap.trim_heap_if_due(every_s=60.0) is True
    assert heap.trim_heap_if_due(every_s=60.0) is False  # just trimmed
    assert len(calls) == 1
    monkeypatch.setattr(heap, "_last_trim", time.monotonic() - 61.0)
    assert heap.trim_heap_if_due(every_s=60.0) is True
    assert len(calls) == 2
