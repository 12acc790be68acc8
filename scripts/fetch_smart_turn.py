#!/usr/bin/env python3
"""Extract the Smart Turn v3.2 end-of-turn model (BSD-2-Clause) from the pipecat-ai wheel.

pipecat-ai itself is not installed (it needs protobuf >= 5, which breaks mediapipe): this
downloads its wheel from the package index (no dependencies), copies the ONNX model and the
licence into ``<prefix>/share/talkie/smart-turn/``, checks the model's SHA-256 and deletes the
wheel. Idempotent: nothing happens when the model is already there and intact.

Usage: python scripts/fetch_smart_turn.py [--force] [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pipecat-ai==1.14.0"
MODEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
LICENSE_SUFFIX = ".dist-info/licenses/LICENSE"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="extract again even if present")
    parser.add_argument(
        "--dest", type=Path, default=Path(sys.prefix) / "share" / "talkie" / "smart-turn"
    )
    args = parser.parse_args()
    target = args.dest / Path(MODEL).name
    if target.is_file() and not args.force and sha256(target) == SHA256:
        print(f"smart-turn: {target} is in place")
        return 0
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"smart-turn: downloading the {WHEEL} wheel (12 MB) to extract its model")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--progress-bar", "off", "-q", "-d", tmp, WHEEL],
            check=True,
        )  # fmt: skip
        wheels = list(Path(tmp).glob("pipecat_ai-*.whl"))
        if not wheels:
            print("smart-turn: pip downloaded no pipecat-ai wheel", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as wheel:
            partial = target.with_suffix(".part")
            partial.write_bytes(wheel.read(MODEL))
            digest = sha256(partial)
            if digest != SHA256:
                partial.unlink()
                print(f"smart-turn: unexpected model hash {digest}", file=sys.stderr)
                return 1
            partial.replace(target)
            for name in wheel.namelist():
                if name.endswith(LICENSE_SUFFIX):
                    (args.dest / "LICENSE").write_bytes(wheel.read(name))
    print(f"smart-turn: extracted {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
