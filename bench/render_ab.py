"""The renderer of another git revision against this one: same frames? how much CPU each?

    .venv/bin/python bench/render_ab.py [--rev 7131479] [--frames 96] [--out FILE.json]

Loads ``src/talkie/render/meshwarp.py`` as it was at ``--rev`` beside the current one (the rest
of ``talkie`` is the current tree, so only that file's changes are compared), builds both for
the astronaut's rig, and renders the same idle + speech FaceParams with each, alternating in
blocks of 24 frames on one thread (both see the same machine). Prints and saves per-frame CPU
(median / p95), the ratio, and how the frames differ (share of pixels off by more than 8 levels,
mean absolute difference).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _r(x: Any) -> float:
    return round(float(x), 3)


def load_old(rev: str) -> Any:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/talkie/render/meshwarp.py"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp(prefix="talkie-ab-")) / "meshwarp_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("meshwarp_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["meshwarp_old"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="7131479")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "render_ab.json")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    from skimage import data

    from talkie.messages import FaceParams
    from talkie.motion import MotionGenerator
    from talkie.offline import synthesize
    from talkie.render import MeshWarpRenderer
    from talkie.rig import build_rig
    from talkie.voice import load_tts

    rig = build_rig(data.astronaut())
    motion = MotionGenerator(fps=24, seed=0)
    motion.push(synthesize(load_tts("piper"), "Every word you hear moves my lips."), start=0.4)
    params: list[FaceParams] = []
    while len(params) < args.frames:
        params.extend(f.params for f in motion.next_step())
    params = params[: args.frames]
    renderers = {"old": load_old(args.rev).MeshWarpRenderer(rig), "new": MeshWarpRenderer(rig)}
    cpu: dict[str, list[float]] = {k: [] for k in renderers}
    for r in renderers.values():
        r.render(params[0])
    for start in range(0, len(params), 24):
        for k, r in renderers.items():
            for p in params[start : start + 24]:
                c0 = time.thread_time()
                r.render(p)
                cpu[k].append((time.thread_time() - c0) * 1000.0)
    off, mean = [], []
    for p in params:
        d = np.abs(renderers["old"].render(p).astype(np.int16) - renderers["new"].render(p))
        d = d.max(axis=2)
        off.append(float((d > 8).mean()))
        mean.append(float(d.mean()))
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rev_old": args.rev,
        "frames": len(params),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpu_ms": {
            k: {
                "median": round(float(np.median(v)), 3),
                "p95": round(float(np.percentile(v, 95)), 3),
            }
            for k, v in cpu.items()
        },
        "ratio_old_over_new": round(float(np.median(cpu["old"]) / np.median(cpu["new"])), 3),
        "pixels_off_by_more_than_8": {"max_share": max(off), "median_share": float(np.median(off))},
        "mean_abs_diff": {"max": round(max(mean), 5), "median": round(float(np.median(mean)), 5)},
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
