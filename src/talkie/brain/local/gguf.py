"""Read the metadata of a GGUF model file (header only; tensors are never read).

GGUF is a small header: magic ``GGUF``, a version, the tensor and key/value counts, then typed
key/value pairs (``general.architecture``, ``general.name``, the chat template, ...). Parsing it
here checks an installed model's identity without importing the runtime.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from talkie.errors import InvalidInputError

__all__ = ["read_gguf_metadata"]

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
# Big arrays (the vocabulary) are skipped: the metadata of interest is scalars and strings.
_MAX_KEPT_ARRAY = 16
_MAX_STRING = 1 << 24


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path

    def read(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = self.handle.read(size)
        if len(data) != size:
            raise InvalidInputError(f"{self.path} is truncated (GGUF header cut short)")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.read("<Q")
        if length > _MAX_STRING:
            raise InvalidInputError(f"{self.path}: a GGUF string of {length} bytes")
        return str(self.handle.read(length).decode("utf-8", errors="replace"))

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.read(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind = self.read("<I")
            count = self.read("<Q")
            if count > _MAX_KEPT_ARRAY:
                # Skipped, not decoded: decoding a 150,000-word vocabulary took ~0.5 s, and
                # every new session checks the installed model.
                for _ in range(count):
                    self.skip(item_kind)
                return f"<{count} items>"
            return [self.value(item_kind) for _ in range(count)]
        raise InvalidInputError(f"{self.path}: unknown GGUF value type {kind}")

    def skip(self, kind: int) -> None:
        if kind in _SCALARS:
            self.handle.seek(struct.calcsize(_SCALARS[kind]), 1)
        elif kind == _STRING:
            length = self.read("<Q")
            if length > _MAX_STRING:
                raise InvalidInputError(f"{self.path}: a GGUF string of {length} bytes")
            self.handle.seek(length, 1)
        else:
            self.value(kind)


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file; ``InvalidInputError`` if it is not one."""
    path = Path(path)
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise InvalidInputError(f"{path} is not a GGUF model file")
        reader = _Reader(handle, path)
        version = reader.read("<I")
        if version not in (2, 3):
            raise InvalidInputError(f"{path}: GGUF version {version} is not supported")
        reader.read("<Q")  # tensor count
        pairs = reader.read("<Q")
        if pairs > 100_000:
            raise InvalidInputError(f"{path}: {pairs} metadata entries is not a model header")
        metadata: dict[str, Any] = {"gguf.version": version}
        for _ in range(pairs):
            key = reader.string()
            metadata[key] = reader.value(reader.read("<I"))
    return metadata
