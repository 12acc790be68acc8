"""Hostile requests benchmark: what 50 huge or endless request bodies cost the server's memory,
without a key and with one.

    .venv/bin/python bench/hostile_requests.py        # bench/results/hostile_requests.json
    .venv/bin/python bench/hostile_requests.py --size-mb 60 --out /tmp/hostile.json

The real server runs as its own process (``talkie serve`` on a free port, a fresh data folder),
so its memory is measured alone: resident set (``VmRSS``) before and after each batch of 50, and
the peak (``VmHWM``). Each request comes from a raw socket (``tests/api/hostile_http.py``) and
keeps sending until the server answers: chunked JSON bodies of ``--size-mb`` (and declared
``Content-Length`` ones) to ``POST /v1/sessions``, ``PATCH /v1/characters/{id}``, the WebRTC
offer, ``POST /v1/characters`` (the photo upload) and ``POST /v1/keys``. Reported per batch:
statuses, RSS before/after/growth, peak, and the most body bytes any request got out before
the answer (what the kernel's socket buffers took, unread by the server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "api"))

from hostile_http import MIB, hostile, rss_mb  # noqa: E402


def batch(
    port: int, pid: int, headers: dict[str, str], session_id: str, size: int
) -> dict[str, Any]:
    targets = [
        ("POST", "/v1/sessions"), ("PATCH", "/v1/characters/astronaut"),
        ("POST", f"/v1/sessions/{session_id}/offer"), ("POST", "/v1/characters"),
        ("POST", "/v1/keys"),
    ]  # fmt: skip
    before = rss_mb(pid)
    statuses: Counter[int | None] = Counter()
    most_sent = 0
    for round_ in range(10):
        for method, path in targets:
            chunked = round_ % 3 != 2
            outcome = hostile(port, method, path, headers=headers, total=size, chunked=chunked)
            statuses[outcome.status] += 1
            most_sent = max(most_sent, outcome.sent)
    after = rss_mb(pid)
    return {
        "requests": sum(statuses.values()), "statuses": {str(k): v for k, v in statuses.items()},
        "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1), "rss_peak_mb": round(rss_mb(pid, "VmHWM"), 1),
        "most_body_sent_mib": round(most_sent / MIB, 1),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="body size per request (200)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/hostile_requests.json")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="talkie-bench-hostile-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkie.cli", "serve", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        if not line.startswith("Talkie is live at "):
            raise SystemExit(f"the server did not start: {line!r}")
        url = line.rsplit(" ", 1)[1]
        port = int(url.rsplit(":", 1)[1])
        admin = {"Authorization": f"Bearer {(data_dir / 'admin.key').read_text().strip()}"}
        created = httpx.post(url + "/v1/sessions", json={"character_id": "astronaut"},
                             headers=admin, timeout=30).json()  # fmt: skip
        session_id = created["session"]["id"]
        size = args.size_mb * MIB
        results = {
            "no_key": batch(port, proc.pid, {}, session_id, size),
            "admin_key": batch(port, proc.pid, admin, session_id, size),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report = {
        "benchmark": "hostile_requests", "date": dt.datetime.now(dt.UTC).isoformat(),
        "machine": platform.machine(), "body_mb": args.size_mb, **results,
    }  # fmt: skip
    print(f"{'batch':<10} {'statuses':<18} {'RSS before':>10} {'after':>8} {'growth':>8} "
          f"{'peak':>8} {'most sent':>10}")  # fmt: skip
    for name, r in results.items():
        print(f"{name:<10} {json.dumps(r['statuses']):<18} {r['rss_before_mb']:>8.0f}MB "
              f"{r['rss_after_mb']:>6.0f}MB {r['rss_growth_mb']:>+6.1f}MB "
              f"{r['rss_peak_mb']:>6.0f}MB {r['most_body_sent_mib']:>7.1f}MiB")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
