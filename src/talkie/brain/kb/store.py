"""The knowledge base: per-character documents, chunked and indexed in one SQLite file.

Each character has its own documents (uploaded Markdown or plain text), identified by an id and
a source name (the file name, spoken when the character cites it). A document is cut into
passages (``talkie.brain.kb.chunking``); each passage is indexed twice:

- in an FTS5 table for BM25 keyword ranking (with words normalised as in ``lexical``);
- as three embeddings (float32 blob): the passage with its heading path, its body alone, and its
  section heading alone (``ranking.passage_vectors``).

Hybrid ``search`` scores every passage that either ranker puts near the top with ``fuse``: the
weighted cosines of its three fields, plus a bonus for the question's words it contains
(normalised BM25, and the IDF-weighted share of the question's words present), minus a little
for passages too short to state much. Embeddings find paraphrases ("time off when I have a
baby" -> "parental leave") that share no word with the text; words find names, numbers and
jargon that embeddings blur, and keep a one-line intro that shares one common word with the
question from beating the section that answers it. Word statistics are the character's own.

Thread safety: every thread gets its own SQLite connection (WAL mode: readers never wait for
the writer); writes are serialised by a lock and ``BEGIN IMMEDIATE``, so replacing a document is
atomic for readers in any thread or process. Embeddings are computed before the write
transaction, so a slow upload does not block searches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from talkie.brain.kb import ranking
from talkie.brain.kb.chunking import DEFAULT_MAX_CHARS, chunk_document, markdown_title
from talkie.brain.kb.embedding import Embedder
from talkie.brain.kb.lexical import passage_terms, query_terms
from talkie.brain.kb.retrieval import Passage
from talkie.brain.kb.validation import (
    check_id,
    check_source,
    document_kind,
    document_text,
)
from talkie.errors import InvalidInputError

__all__ = ["DocumentInfo", "KnowledgeBase", "KnowledgeBaseRetriever", "SearchMode"]

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "bm25", "embedding"]
_SCHEMA_VERSION = "1"
_CACHED_CHARACTERS = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kb_documents (
    character_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT,
    kind TEXT NOT NULL,
    chars INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (character_id, document_id)
);
CREATE TABLE IF NOT EXISTS kb_chunks (
    id INTEGER PRIMARY KEY,
    character_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    headings TEXT NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS kb_chunks_document ON kb_chunks (character_id, document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5 (
    heading_terms, body_terms, character_id UNINDEXED, tokenize = 'unicode61'
);
CREATE VIRTUAL TABLE IF NOT EXISTS kb_vocab USING fts5vocab (kb_fts, 'row');
CREATE TABLE IF NOT EXISTS kb_revisions (
    character_id TEXT PRIMARY KEY, revision INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document: ids, source name, title (first Markdown heading, or ``None``), kind,
    size in characters, number of passages, the SHA-256 of its text, and when it was first and
    last uploaded (Unix seconds)."""

    character_id: str
    document_id: str
    source: str
    title: str | None
    kind: str
    chars: int
    chunks: int
    sha256: str
    created_at: float
    updated_at: float


@dataclass
class _Vectors:
    revision: int
    ids: np.ndarray  # chunk ids, int64
    # (n, 3, dim) float32 unit rows: the passage with its headings, its body alone, its
    # section heading alone (see ``passage_vectors``)
    matrix: np.ndarray


class KnowledgeBase:
    """Per-character document store with hybrid (BM25 + embedding) search.

    ``path`` is the SQLite file (created if missing; ``":memory:"`` is not supported because each
    thread opens its own connection). ``embedder`` is an ``Embedder`` or ``None`` for keyword
    search only. ``max_chunk_chars`` bounds a passage. Call ``close()`` when done.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | None = None,
        max_chunk_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise InvalidInputError("the knowledge base needs a file path, not ':memory:'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.max_chunk_chars = max_chunk_chars
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._vectors: OrderedDict[str, _Vectors] = OrderedDict()
        self._closed = False
        with self._write_lock:
            # executescript manages its own transaction (it commits any open one first).
            db = self._db()
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO kb_meta (key, value) VALUES ('schema', ?)",
                (_SCHEMA_VERSION,),
            )

    # -- documents -------------------------------------------------------------------------

    def put_document(
        self,
        character_id: str,
        document_id: str,
        *,
        source: str,
        text: str | bytes,
        kind: Literal["markdown", "text"] | None = None,
    ) -> DocumentInfo:
        """Add a document, or replace the one with the same id (atomically: a search sees the
        old passages or the new ones, never a mix or none).

        ``text`` is a string or UTF-8 bytes; ``kind`` defaults to ``"markdown"`` for ``.md``
        sources and ``"text"`` otherwise. Raises ``InvalidInputError`` for empty, binary,
        non-UTF-8 or oversized input, and for bad ids.
        """
        character_id = check_id(character_id, "character id")
        document_id = check_id(document_id, "document id")
        source = check_source(source)
        doc_kind = document_kind(kind, source)
        body = document_text(text, source)
        chunks = chunk_document(body, kind=doc_kind, max_chars=self.max_chunk_chars)
        if not chunks:
            raise InvalidInputError(f"{source} has no text to index (only headings or markup)")
        terms = [passage_terms(chunk.headings, chunk.text) for chunk in chunks]
        vectors: np.ndarray | None = None
        model: str | None = None
        started = time.perf_counter()
        if self.embedder is not None:
            vectors = ranking.passage_vectors(self.embedder, [(c.headings, c.text) for c in chunks])
            model = self.embedder.name
        embed_seconds = time.perf_counter() - started
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
        title = markdown_title(body) if doc_kind == "markdown" else None
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT created_at FROM kb_documents WHERE character_id = ? AND document_id = ?",
                (character_id, document_id),
            ).fetchone()
            created = row[0] if row else now
            self._delete_chunks(db, character_id, document_id)
            db.execute(
                "INSERT OR REPLACE INTO kb_documents (character_id, document_id, source, title, "
                "kind, chars, chunks, sha256, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (character_id, document_id, source, title, doc_kind, len(body), len(chunks), digest,
                 created, now),
            )  # fmt: skip
            for index, chunk in enumerate(chunks):
                blob = None if vectors is None else vectors[index].astype(np.float32).tobytes()
                cursor = db.execute(
                    "INSERT INTO kb_chunks (character_id, document_id, position, headings, text, "
                    "model, embedding) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (character_id, document_id, chunk.position, json.dumps(chunk.headings),
                     chunk.text, model, blob),
                )  # fmt: skip
                db.execute(
                    "INSERT INTO kb_fts (rowid, heading_terms, body_terms, character_id) "
                    "VALUES (?, ?, ?, ?)",
                    (cursor.lastrowid, terms[index][0], terms[index][1], character_id),
                )
            self._bump(db, character_id)
        log.info("knowledge base: %s %s document (%d chars, %d passages, embedded in %.2f s)",
                 "replaced" if row else "added", doc_kind, len(body), len(chunks),
                 embed_seconds)  # fmt: skip
        return DocumentInfo(character_id, document_id, source, title, doc_kind, len(body),
                            len(chunks), digest, created, now)  # fmt: skip

    def delete_document(self, character_id: str, document_id: str) -> bool:
        """Remove a document and its passages; ``False`` if there was none."""
        character_id = check_id(character_id, "character id")
        document_id = check_id(document_id, "document id")
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM kb_documents WHERE character_id = ? AND document_id = ?",
                (character_id, document_id),
            ).rowcount
            self._delete_chunks(db, character_id, document_id)
            if removed:
                self._bump(db, character_id)
        return bool(removed)

    def delete_character(self, character_id: str) -> int:
        """Remove all documents of a character; returns how many there were."""
        character_id = check_id(character_id, "character id")
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM kb_documents WHERE character_id = ?", (character_id,)
            ).rowcount
            db.execute(
                "DELETE FROM kb_fts WHERE rowid IN (SELECT id FROM kb_chunks WHERE "
                "character_id = ?)",
                (character_id,),
            )
            db.execute("DELETE FROM kb_chunks WHERE character_id = ?", (character_id,))
            db.execute("DELETE FROM kb_revisions WHERE character_id = ?", (character_id,))
        with self._cache_lock:
            self._vectors.pop(character_id, None)
        return int(removed)

    def list_documents(self, character_id: str) -> list[DocumentInfo]:
        """The character's documents, by source name."""
        character_id = check_id(character_id, "character id")
        rows = self._db().execute(
            "SELECT character_id, document_id, source, title, kind, chars, chunks, sha256, "
            "created_at, updated_at FROM kb_documents WHERE character_id = ? "
            "ORDER BY source, document_id",
            (character_id,),
        )
        return [DocumentInfo(*row) for row in rows]

    def get_document(self, character_id: str, document_id: str) -> DocumentInfo | None:
        """One document's info, or ``None``."""
        for info in self.list_documents(character_id):
            if info.document_id == document_id:
                return info
        return None

    # -- search ----------------------------------------------------------------------------

    def search(
        self, character_id: str, query: str, *, k: int = 3, mode: SearchMode = "hybrid"
    ) -> list[Passage]:
        """The ``k`` best passages of the character's documents for ``query``, best first.

        ``mode`` picks the ranking: ``"hybrid"`` (default), ``"bm25"`` or ``"embedding"``
        (the last two are for comparison; ``"embedding"`` without an embedder is empty).
        """
        character_id = check_id(character_id, "character id")
        if mode not in ("hybrid", "bm25", "embedding"):
            raise InvalidInputError(f"unknown search mode {mode!r}")
        query = query.strip()
        if not query or k < 1:
            return []
        db = self._db()
        # One read transaction: every statement below sees the same snapshot (WAL), so a
        # document replaced meanwhile shows up entirely old or entirely new.
        db.execute("BEGIN")
        try:
            return self._search(db, character_id, query, k, mode)
        finally:
            db.execute("COMMIT")

    def _search(
        self, db: sqlite3.Connection, character_id: str, query: str, k: int, mode: SearchMode
    ) -> list[Passage]:
        terms = query_terms(query)
        # Word statistics of this character's passages only: each character's documents are
        # a corpus of their own (a word common in one character's handbook is rare in another's).
        total = ranking.passage_count(db, character_id)
        frequency = ranking.word_frequencies(
            db, character_id, sorted({w for words in terms.alternatives.values() for w in words})
        )
        keyword: dict[int, float] = {}
        if mode != "embedding" and terms.terms:
            keyword = ranking.keyword_scores(db, character_id, terms, total, frequency)
        similarities: dict[int, float] = {}
        dense: dict[int, float] = {}
        if self.embedder is not None and mode != "bm25":
            vectors = self._character_vectors(db, character_id)
            if vectors is not None and len(vectors.ids):
                fields = vectors.matrix @ self.embedder.embed_query(query)  # (n, 3)
                ids = vectors.ids.tolist()
                similarities = dict(zip(ids, fields[:, 0].tolist(), strict=True))
                dense = dict(zip(ids, (fields @ ranking.FIELD_WEIGHTS).tolist(), strict=True))
        if mode == "bm25" or not similarities:
            fused = keyword
        elif mode == "embedding":
            fused = similarities
        else:
            top_semantic = sorted(dense, key=lambda i: -dense[i])[: ranking.CANDIDATES]
            candidates = {*top_semantic, *keyword}
            covered = ranking.coverages(db, list(candidates), terms, total, frequency)
            fused = {
                chunk_id: ranking.fuse(
                    dense.get(chunk_id, 0.0), keyword.get(chunk_id, 0.0),
                    covered.get(chunk_id, (0.0, 0))
                )
                for chunk_id in candidates
            }  # fmt: skip
        best = sorted(fused, key=lambda chunk_id: (-fused[chunk_id], chunk_id))[:k]
        return ranking.passages(db, best, fused, similarities, terms, total, frequency)

    def retriever(
        self, character_id: str, *, mode: SearchMode = "hybrid"
    ) -> KnowledgeBaseRetriever:
        """A ``Retriever`` bound to one character, for a brain."""
        return KnowledgeBaseRetriever(self, check_id(character_id, "character id"), mode=mode)

    def reembed(self, character_id: str | None = None) -> int:
        """Compute embeddings for passages that have none from the current model (after the
        embedding model changed); returns how many were updated."""
        if self.embedder is None:
            return 0
        where = "WHERE (model IS NOT ? OR embedding IS NULL)"
        args: tuple[object, ...] = (self.embedder.name,)
        if character_id is not None:
            where += " AND character_id = ?"
            args += (check_id(character_id, "character id"),)
        rows = self._db().execute(f"SELECT id, headings, text FROM kb_chunks {where}", args)
        pending = [(cid, tuple(json.loads(h)), text) for cid, h, text in rows.fetchall()]
        if not pending:
            return 0
        vectors = ranking.passage_vectors(self.embedder, [(h, t) for _, h, t in pending])
        with self._write() as db:
            characters = set()
            for (chunk_id, _, _), vector in zip(pending, vectors, strict=True):
                db.execute(
                    "UPDATE kb_chunks SET model = ?, embedding = ? WHERE id = ?",
                    (self.embedder.name, vector.astype(np.float32).tobytes(), chunk_id),
                )
            for (character,) in db.execute("SELECT DISTINCT character_id FROM kb_chunks"):
                characters.add(character)
            for character in characters:
                self._bump(db, character)
        return len(pending)

    def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the knowledge base is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so that close() may close it from another thread;
            # each connection is used by the thread that opened it.
            connection = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA busy_timeout = 10000")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _delete_chunks(db: sqlite3.Connection, character_id: str, document_id: str) -> None:
        # FTS5 rows are not covered by foreign keys: remove them by the chunk ids.
        db.execute(
            "DELETE FROM kb_fts WHERE rowid IN (SELECT id FROM kb_chunks WHERE character_id = ? "
            "AND document_id = ?)",
            (character_id, document_id),
        )
        db.execute(
            "DELETE FROM kb_chunks WHERE character_id = ? AND document_id = ?",
            (character_id, document_id),
        )

    @staticmethod
    def _bump(db: sqlite3.Connection, character_id: str) -> None:
        db.execute(
            "INSERT INTO kb_revisions (character_id, revision) VALUES (?, 1) ON CONFLICT "
            "(character_id) DO UPDATE SET revision = revision + 1",
            (character_id,),
        )

    def _character_vectors(self, db: sqlite3.Connection, character_id: str) -> _Vectors | None:
        """The character's embedding matrix, cached until its revision changes (also by
        another process: the revision lives in the database)."""
        assert self.embedder is not None
        row = db.execute(
            "SELECT revision FROM kb_revisions WHERE character_id = ?", (character_id,)
        ).fetchone()
        revision = row[0] if row else 0
        with self._cache_lock:
            cached = self._vectors.get(character_id)
            if cached is not None and cached.revision == revision:
                self._vectors.move_to_end(character_id)
                return cached
        rows = db.execute(
            "SELECT id, embedding FROM kb_chunks WHERE character_id = ? AND model = ? "
            "AND embedding IS NOT NULL ORDER BY id",
            (character_id, self.embedder.name),
        ).fetchall()
        dim = self.embedder.dim
        # One vector per passage was the format before the per-field vectors: it stands in
        # for all three fields until the passage is uploaded again or re-embedded.
        rows = [
            (cid, blob if len(blob) == 12 * dim else blob * 3)
            for cid, blob in rows if len(blob) in (4 * dim, 12 * dim)
        ]  # fmt: skip
        vectors = _Vectors(
            revision,
            np.array([cid for cid, _ in rows], dtype=np.int64),
            np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(-1, 3, dim),
        )
        with self._cache_lock:
            self._vectors[character_id] = vectors
            self._vectors.move_to_end(character_id)
            while len(self._vectors) > _CACHED_CHARACTERS:
                self._vectors.popitem(last=False)
        return vectors


class KnowledgeBaseRetriever:
    """``Retriever`` over one character's documents in a ``KnowledgeBase``."""

    def __init__(self, kb: KnowledgeBase, character_id: str, *, mode: SearchMode = "hybrid"):
        self.kb = kb
        self.character_id = character_id
        self.mode: SearchMode = mode

    def search(self, query: str, k: int = 3) -> list[Passage]:
        return self.kb.search(self.character_id, query, k=k, mode=self.mode)
