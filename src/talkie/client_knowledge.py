"""The knowledge-base part of the Python client: a character's documents and the search that
shows which passages a question finds (``TalkieClient.documents``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from talkie.client import _items, _load, _Resource, _segment
from talkie.errors import InvalidInputError

_TYPES = {"markdown": "text/markdown", "text": "text/plain"}
_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")


@dataclass(frozen=True)
class Document:
    id: str
    source: str
    title: str | None
    kind: str
    chars: int
    passages: int
    sha256: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Hit:
    document_id: str
    source: str
    heading: str
    text: str
    score: float


class Documents(_Resource):
    """``/v1/characters/{id}/documents``: what a character knows (Markdown or plain text)."""

    def put(
        self, character_id: str, document: str | os.PathLike[str] | bytes, *,
        document_id: str | None = None, kind: str | None = None, source: str | None = None,
    ) -> Document:  # fmt: skip
        """Upload a document (a path, or its UTF-8 bytes) under ``document_id`` (default: the
        file's name without its extension); the same id again replaces it. ``kind`` is
        ``"markdown"`` or ``"text"`` (default: from the file name, else markdown)."""
        if isinstance(document, bytes):
            data, name = document, source or document_id or "document"
        else:
            path = Path(document)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InvalidInputError(f"{path}: cannot read it ({exc.strerror})") from None
            name = source or path.name
        doc_id = document_id or _id_from(name)
        if kind is None:
            is_text = name.lower().endswith((".txt", ".text"))
            kind = "text" if is_text else "markdown"
        if kind not in _TYPES:
            raise InvalidInputError(f"kind {kind!r}: use markdown or text")
        body = self._client._json(
            "PUT", self._path(character_id) + "/documents/" + _segment(doc_id, "document id"),
            content=data, headers={"content-type": _TYPES[kind]}, params={"source": name},
        )  # fmt: skip
        return _load(Document, body)

    def list(self, character_id: str) -> tuple[Document, ...]:
        body = self._client._json("GET", self._path(character_id) + "/documents")
        return tuple(_load(Document, d) for d in _items(body, "documents"))

    def delete(self, character_id: str, document_id: str) -> None:
        path = self._path(character_id) + "/documents/" + _segment(document_id, "document id")
        self._client._request("DELETE", path)

    def search(self, character_id: str, question: str, *, k: int = 3) -> tuple[Hit, ...]:
        """The passages the character would answer ``question`` from, best first."""
        body = self._client._json(
            "GET", self._path(character_id) + "/search", params={"q": question, "k": k}
        )
        return tuple(_load(Hit, h) for h in _items(body, "passages"))

    @staticmethod
    def _path(character_id: str) -> str:
        return "/v1/characters/" + _segment(character_id, "character id")


def _id_from(name: str) -> str:
    """``Travel Policy.md`` -> ``Travel-Policy`` (the server's id pattern)."""
    stem = Path(name).stem if "." in name else name
    cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in stem).strip("-._")
    return cleaned[:100] or "document"
