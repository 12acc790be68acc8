"""The machine's speech service across many sessions: its threads, open files and memory.

Run from the repository root::

    flock /tmp/talkie-cpu.lock .venv/bin/python bench/speech_service_churn.py [--sessions 8]

The real server with the process host (one warm worker, models preloaded, so the workers use
the speech service of ``talkie.session.voices``) serves ``--sessions`` sessions one after the
other; each is greeted, asks a typed question and hears the answer, then hangs up. After each,
once its worker is gone and the pool has a ready worker again, the service process's thread
count, open file descriptors and RSS are read from ``/proc``. A connection that outlived its
worker would show as a thread and a descriptor more per session.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))


def _status(pid: int) -> dict[str, Any]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return {
        "threads": fields["Threads"],
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mb": round(fields["VmRSS"] / 1024, 1),
    }


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not settle")
        time.sleep(0.1)


async def _one_session(url: str) -> None:
    from live_client import connect

    session = await connect(url, "astronaut")
    try:
        await session.wait_event(lambda e: e.get("type") == "reply", 60)
        session.send({"type": "text", "text": "How far away is the Moon?"})
        await session.wait_event(
            lambda e: e.get("type") == "reply" and "kilometres" in str(e.get("text")), 60
        )
    finally:
        await session.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "speech_service_churn.json"
    )
    args = ap.parse_args()
    from live_server import LiveServer

    from talkie.server.app import ServerOptions
    from talkie.session import voices

    options = ServerOptions(max_sessions=2, host_kind="process", warm=1, preload_models=True)
    with LiveServer(options=options) as server:
        host = server.app.state.host
        _wait(lambda: host.ready_workers >= 1, 300)
        service = voices._service[0]._proc.pid
        rows = [{"after_sessions": 0, **_status(service)}]
        print(rows[-1], flush=True)
        for n in range(1, args.sessions + 1):
            asyncio.run(_one_session(server.url))
            _wait(lambda: len(server.registry) == 0 and host.ready_workers >= 1, 120)
            rows.append({"after_sessions": n, **_status(service)})
            print(rows[-1], flush=True)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "rows": rows,
        "threads_growth": rows[-1]["threads"] - rows[0]["threads"],
        "fds_growth": rows[-1]["fds"] - rows[0]["fds"],
        # the first two sessions grow the models' buffers (longer inputs); after that, a leak
        "rss_growth_mb_after_second": round(
            rows[-1]["rss_mb"] - rows[min(2, len(rows) - 1)]["rss_mb"], 1
        ),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
