"""Time from the browser's offer to the WebRTC answer, per session host.

- ``inprocess``: the session is built in the web server's process;
- ``process-cold``: a worker process is spawned for the session (no warm pool);
- ``process-warm``: the session takes a worker the warm pool started ahead of time;
- ``process-burst``: two sessions ``--gap`` s apart with one warm worker: the first takes it,
  the second (timed) takes the replacement the pool is loading;
- ``warm-up``: how long a pooled worker's warm-up with the speech models takes (``WarmUp``
  built in a fresh interpreter, as in a new worker process; no server).

Each round connects a Python aiortc client (tests/live/live_client.py) to the real server,
measures offer -> answer as the client sees it (``connect``: session create + offer POST) and as
the host reports it (``answered_in``) and until the first video frame arrives (the session is
live), then hangs up. ``--real`` uses the real conversation (its
models load in the worker; add ``--preload-models`` to load them in the warm-up), otherwise the
fake conversation of the live tests isolates what the host itself costs.

    flock /tmp/talkie-cpu.lock .venv/bin/python bench/session_hosts.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))

from live_client import connect  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402

CHARACTER = "astronaut"


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not get ready in time")
        time.sleep(0.05)


_WARM_UP = """
import time
t = time.perf_counter()
from talkie.server.hosts.session_worker import WarmUp
WarmUp(models=True)()
print("WARM-UP", time.perf_counter() - t, flush=True)
"""


def measure_warm_up(rounds: int) -> dict[str, Any]:
    seconds = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", _WARM_UP], capture_output=True, text=True, check=True
        )
        line = next(x for x in done.stdout.splitlines() if x.startswith("WARM-UP"))
        seconds.append(float(line.split()[1]))
    return {
        "host": "warm-up",
        "rounds": rounds,
        "warm_up_s": [round(x, 3) for x in seconds],
        "median_warm_up_s": round(statistics.median(seconds), 3),
    }


def measure(
    kind: str, rounds: int, *, real: bool, preload: bool, gap: float = 2.0
) -> dict[str, Any]:
    host_kind = "inprocess" if kind == "inprocess" else "process"
    warm = 1 if kind in ("process-warm", "process-burst") else 0
    options = ServerOptions(
        max_sessions=2,
        host_kind=host_kind,
        warm=warm,
        preload_models=preload,  # type: ignore[arg-type]
        answer_timeout=180.0,  # a burst's second visitor is timed, not turned away at 30 s
    )
    factory = {} if real else {"conversation_factory": FakeConversation}
    client_s: list[float] = []
    host_s: list[float] = []
    live_s: list[float] = []
    warm_flags: list[bool] = []
    with LiveServer(options=options, **factory) as server:
        # the character's rig is loaded once before timing (it is cached for every host)
        server.call(lambda: server.app.state.services.characters.load_async(CHARACTER), 120)
        host = server.app.state.host
        for _ in range(rounds):
            if warm:
                _wait(lambda: host.ready_workers >= warm, 300)

            async def one() -> None:
                first = None
                if kind == "process-burst":  # takes the warm worker; the timed one comes next
                    first = await connect(server.url, CHARACTER)
                    await asyncio.sleep(gap)
                started = time.perf_counter()
                # a burst's second visitor may wait long: time it rather than give up at 30 s
                session = await connect(server.url, CHARACTER, timeout=180.0)
                client_s.append(time.perf_counter() - started)
                hosted = server.registry.get(session.session_id)
                stats = hosted.stats() if hosted is not None else {}
                if stats.get("answered_in") is not None:
                    host_s.append(float(stats["answered_in"]))
                    warm_flags.append(bool(stats.get("warm")))
                await session.wait_video(1, timeout=120)
                live_s.append(time.perf_counter() - started)  # the first frame: what a user sees
                await session.close()
                if first is not None:
                    await first.close()

            asyncio.run(one())
            _wait(lambda: len(server.registry) == 0, 60)
    result: dict[str, Any] = {
        "host": kind,
        "rounds": rounds,
        "offer_to_answer_client_s": [round(x, 3) for x in client_s],
        "median_client_s": round(statistics.median(client_s), 3),
        "offer_to_first_frame_s": [round(x, 3) for x in live_s],
        "median_first_frame_s": round(statistics.median(live_s), 3),
    }
    if host_s:
        result["offer_to_answer_host_s"] = [round(x, 3) for x in host_s]
        result["median_host_s"] = round(statistics.median(host_s), 3)
        result["took_warm_worker"] = warm_flags
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--real", action="store_true", help="the real conversation, not the fake")
    ap.add_argument("--preload-models", action="store_true")
    ap.add_argument(
        "--hosts", default="inprocess,process-cold,process-warm", help="comma-separated"
    )
    ap.add_argument("--gap", type=float, default=2.0, help="process-burst: seconds between")
    ap.add_argument(
        "--start-method", choices=("forkserver", "spawn"), default="forkserver",
        help="how the process host starts workers (ProcessHost(start_method=...))",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "session_hosts.json")
    args = ap.parse_args(argv)
    from talkie.server.hosts.process import ProcessHost

    assert ProcessHost.__init__.__kwdefaults__ is not None
    ProcessHost.__init__.__kwdefaults__["start_method"] = args.start_method
    results = []
    for kind in args.hosts.split(","):
        if kind == "warm-up":
            r = measure_warm_up(args.rounds)
            results.append(r)
            print(f"warm-up median {r['median_warm_up_s']:.3f} s ({r['warm_up_s']})", flush=True)
            continue
        r = measure(kind, args.rounds, real=args.real, preload=args.preload_models, gap=args.gap)
        results.append(r)
        print(
            f"{kind:13s} offer->answer median {r['median_client_s']:.3f} s at the client"
            + (f", {r['median_host_s']:.3f} s in the host" if "median_host_s" in r else "")
            + f"; first frame {r['median_first_frame_s']:.3f} s",
            flush=True,
        )
    out = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "conversation": "real" if args.real else "fake (tests/live/live_fakes.py)",
        "preload_models": args.preload_models,
        "start_method": args.start_method,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
