"""When H.264 frames leave the track, against their time: encoded after their moment (lead 0,
as before) or taken ``ENCODE_LEAD_S`` early, encoded, then sent on time.

Run from the repository root::

    flock /tmp/talkie-cpu.lock .venv/bin/python bench/video_lead.py [--frames 240] [--rounds 2]

A real conversation (astronaut, product renderer and motion, no greeting) feeds the real
``ConversationVideoTrack`` with the real ``X264Encoder``; the two settings alternate in one
process, ``--rounds`` times each. For each frame: the media time when ``recv()`` returned (aiortc
sends it then) minus the frame's pts. A frame more than one period (41.7 ms) behind is late at
the receiver (bench/sessions.py's measure). Also the process's CPU share during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def one_run(lead: float, frames: int) -> dict[str, Any]:
    import talkie.transport.tracks as tracks
    from talkie.session import CharacterLibrary, Conversation, SessionOptions
    from talkie.session.contract import VIDEO_CLOCK_RATE
    from talkie.transport.encoder import X264Encoder

    tracks.ENCODE_LEAD_S = lead  # what recv() asks the conversation for
    conv = Conversation(
        character=CharacterLibrary().get("astronaut"),
        options=SessionOptions(brain="builtin", seed=1, greet=False),
    )
    failures: list[str] = []
    track = tracks.ConversationVideoTrack(conv, on_failure=failures.append)
    track.encoder = X264Encoder()
    await conv.start()
    behind: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for _ in range(frames):
            packet = await track.recv()
            behind.append(conv.media_time() - packet.pts / VIDEO_CLOCK_RATE)
    finally:
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        track.stop()
        track.encoder.close()
        await conv.close()
    ms = sorted(1000 * b for b in behind)
    return {
        "lead_ms": round(1000 * lead, 1),
        "frames": len(ms),
        "sent_behind_pts_ms": {
            "p50": round(statistics.median(ms), 1),
            "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "max": round(ms[-1], 1),
        },
        "over_one_frame": sum(1 for x in ms if x > 1000 / 24),
        "sent_before_pts": sum(1 for x in ms if x < 0),
        "cpu_pct": round(100 * cpu / wall, 1),
        "failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video_lead.json")
    args = ap.parse_args()
    from talkie.transport.tracks import ENCODE_LEAD_S

    runs = []
    for _ in range(args.rounds):
        for lead in (0.0, ENCODE_LEAD_S):
            run = asyncio.run(one_run(lead, args.frames))
            print(json.dumps(run))
            runs.append(run)
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "frames_per_run": args.frames,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
