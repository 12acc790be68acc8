"""Media bytes (photos, rigs) stored content-addressed on disk: ``ROOT/ab/abcdef...``.

The name of a file is the SHA-256 of its bytes, so identical uploads are stored once, a file is
never rewritten in place, and a half-written file can never be mistaken for a complete one (it is
written to a temporary name and renamed into place, with an fsync, before the database refers to
it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_SHA = re.compile(r"^[0-9a-f]{64}$")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        if not _SHA.match(sha):  # never let a crafted id walk out of the folder
            raise ValueError(f"not a media hash: {sha[:80]!r}")
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its hash. Idempotent."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists():
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get(self, sha: str) -> bytes:
        """The bytes stored under ``sha`` (``FileNotFoundError`` if absent)."""
        return self.path(sha).read_bytes()

    def has(self, sha: str) -> bool:
        return self.path(sha).exists()

    def collect_garbage(self, keep: set[str]) -> int:
        """Delete every stored file whose hash is not in ``keep``; returns how many."""
        removed = 0
        for path in self.root.glob("*/*"):
            if path.name.startswith(".tmp-") or (_SHA.match(path.name) and path.name not in keep):
                path.unlink(missing_ok=True)
                removed += 1
        return removed
