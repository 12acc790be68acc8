"""What an idle session costs, as the server itself measures and reports it (the
``talkie_session_cpu_cores{activity="idle"}`` metric and the admin page's figure).

Run from the repository root::

    .venv/bin/python bench/ops_idle_cost.py [--sessions 1 2] [--hold 40] [--out ...]

The real server (``LiveServer``: the app under uvicorn in a thread of THIS process, real
conversations of the astronaut character) first runs alone (its own cost), then serves N idle
sessions whose aiortc clients run in a separate process (``--client``), so this process's CPU is
the server's. The characters greet, then nobody speaks: after the greeting the sessions are idle
and the server's estimate settles. Printed: the server's own cores, the estimate per idle
session, and the process CPU while the sessions were idle.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))


async def _clients(url: str, n: int, hold: float) -> None:
    from live_client import connect

    sessions = [await connect(url, "astronaut", microphone=False, decode=False) for _ in range(n)]
    print("connected", flush=True)
    await asyncio.sleep(hold)
    for s in sessions:
        await s.close()


def _dashboard(server: Any) -> dict[str, Any]:
    with server.admin() as admin:
        return admin.get("/v1/admin/ops").json()  # type: ignore[no-any-return]


def _measure(server: Any, n: int, hold: float) -> dict[str, Any]:
    client = subprocess.Popen(
        [sys.executable, __file__, "--client", server.url, str(n), str(hold)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "connected", "the clients did not connect"
    started = time.time()
    time.sleep(hold - 5)
    d = _dashboard(server)
    idle = [s for s in d["samples"] if s["at"] >= started and s["live"] == n and not s["talking"]]
    client.wait(timeout=60)
    return {
        "sessions": n,
        "idle_session_cores": d["cost"]["idle_session_cores"],
        "server_cores": d["cost"]["server_cores"],
        "idle_samples": len(idle),
        "process_cores_while_idle": round(sum(s["cpu_cores"] for s in idle) / len(idle), 3)
        if idle
        else None,
        "late_frames_while_idle": sum(s["late_frames"] for s in idle),
        "frames_while_idle": sum(s["frames"] for s in idle),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hold", type=float, default=40.0, help="seconds each step holds")
    ap.add_argument("--alone", type=float, default=16.0, help="seconds the server runs alone")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/ops_idle_cost.json")
    ap.add_argument("--client", nargs=3, metavar=("URL", "N", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        url, n, hold = args.client
        asyncio.run(_clients(url, int(n), float(hold)))
        return
    from live_server import LiveServer

    from talkie.server.app import ServerOptions

    options = ServerOptions(max_sessions=max(args.sessions) + 1)
    with LiveServer(options=options) as server:
        time.sleep(args.alone)
        steps = []
        for n in args.sessions:
            step = _measure(server, n, args.hold)
            steps.append(step)
            print(
                f"{n} idle session(s): {step['idle_session_cores']} cores each (server alone "
                f"{step['server_cores']}); process {step['process_cores_while_idle']} cores over "
                f"{step['idle_samples']} idle samples; late frames "
                f"{step['late_frames_while_idle']}/{step['frames_while_idle']}",
                flush=True,
            )
            time.sleep(6)
    result = {
        "what": "CPU cost of idle live sessions as the server measures it (talkie.server.ops)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "steps": steps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
