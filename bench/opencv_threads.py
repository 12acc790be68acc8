"""What OpenCV's thread pool costs a session: CPU per 720p frame (render + RGB->I420 + x264, the
per-frame work of a talking session) with the pool at 1 thread and at one per core.

    flock /tmp/talkie-cpu.lock .venv/bin/python bench/opencv_threads.py [--rounds 3]

The real renderer draws skimage's astronaut saying a piper sentence (``still_px=0``: every
frame drawn), and ``X264Encoder`` encodes each frame, in this process, on whatever cores the
OS gives it (as in a session worker). CPU is the whole process's (every thread, the pool's
too), per frame. Pool sizes alternate within a round, so the machine's drift hits both.
Saves bench/results/opencv_threads.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from encoder_settings import FPS, talking  # noqa: E402


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(renderer: Any, params: list[Any], threads: int) -> dict[str, float]:
    from talkie.transport.encoder import X264Encoder

    cv2.setNumThreads(threads)
    encoder = X264Encoder()
    renderer.render(params[0])  # the pool starts outside the timing
    render_cpu = 0.0
    cpu0, wall0 = _process_cpu(), time.perf_counter()
    for i, p in enumerate(params):
        before = _process_cpu()
        frame = renderer.render(p)
        render_cpu += _process_cpu() - before
        encoder.encode(frame, round(i * 90_000 / FPS))
    n = len(params)
    return {
        "cpu_ms_per_frame": round((_process_cpu() - cpu0) * 1000 / n, 2),
        "render_cpu_ms_per_frame": round(render_cpu * 1000 / n, 2),
        "wall_ms_per_frame": round((time.perf_counter() - wall0) * 1000 / n, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "opencv_threads.json")
    args = ap.parse_args(argv)
    renderer, params = talking(args.seconds)
    sizes = {"1 thread (session workers)": 1, f"{os.cpu_count()} threads (OpenCV's default)": 0}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in sizes}
    for r in range(args.rounds):
        for name, threads in sizes.items():
            got = run(renderer, params, threads or (os.cpu_count() or 1))
            rounds[name].append(got)
            print(f"round {r + 1}  {name:32s} {got}", flush=True)
    results = {
        name: {
            "rounds": runs,
            "cpu_ms_per_frame_median": statistics.median(x["cpu_ms_per_frame"] for x in runs),
            "wall_ms_per_frame_median": statistics.median(x["wall_ms_per_frame"] for x in runs),
        }
        for name, runs in rounds.items()
    }
    for name, res in results.items():
        print(
            f"{name:32s} CPU {res['cpu_ms_per_frame_median']:6.2f} ms/frame, "
            f"wall {res['wall_ms_per_frame_median']:6.2f} ms/frame",
            flush=True,
        )
    out = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "frames": len(params),
        "size": "1280x720",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
