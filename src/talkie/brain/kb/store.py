"""The knowledge base: per-character documents, chunked and indexed in one SQLite file.

Each character has its own documents (uploaded Markdown or plain text), identified by an id and
a source name (the file name, spoken when the character cites it). A document is cut into
passages (``talkie.brain.kb.chunking``); each passage is indexed twice:

- in an FTS5 table for BM25 keyword ranking (with words normalised as in ``lexical``);
- as three embeddings (float32 blob): the passage with its heading path, its body alone, and its
  section heading alone (``passage_vectors``).

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
import math
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

from talkie.brain.kb.chunking import DEFAULT_MAX_CHARS, chunk_document, markdown_title
from talkie.brain.kb.embedding import Embedder
from talkie.brain.kb.lexical import QueryTerms, coverage, fts_match, passage_terms, query_terms
from talkie.brain.kb.retrieval import Passage
from talkie.brain.kb.validation import (
    check_id,
    check_source,
    document_kind,
    document_text,
)
from talkie.brain.markdown import strip_markdown
from talkie.errors import InvalidInputError

__all__ = ["DocumentInfo", "KnowledgeBase", "KnowledgeBaseRetriever", "SearchMode"]

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "bm25", "embedding"]
_SCHEMA_VERSION = "1"
# How deep each ranker's list goes before fusion.
_CANDIDATES = 30
_KEYWORD_CANDIDATES = 100
# Hybrid score = cosine + this x normalised BM25. Measured on the handbook test set: 0.1-0.2
# keeps the embeddings' lead on paraphrases and breaks their ties with exact words; 0.3 and
# above lets shared common words override meaning.
_KEYWORD_WEIGHT = 0.15
_COVERAGE_WEIGHT = 0.3
_SHORT_PENALTY = 0.1
_SHORT_WORDS = 12
# Dense similarity = these weights . (cosine of the passage with headings, of its body alone,
# of its section heading alone). Measured on three generated handbooks (tests/kb): the passage
# with its headings carries most; the body alone rescues long sections whose heading path
# misleads, the heading alone short FAQ-style sections.
_FIELD_WEIGHTS = np.array([1.0, 0.3, 0.15], dtype=np.float32)
_SCALE = float(_FIELD_WEIGHTS.sum())
_FTS5_K1 = 1.2
# Column weights for BM25: a heading describes its whole section, so a question word in the
# heading counts twice as much as the same word in the body.
_HEADING_WEIGHT = 2.0
_BODY_WEIGHT = 1.0
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
            vectors = passage_vectors(self.embedder, [(c.headings, c.text) for c in chunks])
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
        total = self._fts_rows(db, character_id)
        frequency = self._frequencies(
            db, character_id, sorted({w for words in terms.alternatives.values() for w in words})
        )
        keyword: dict[int, float] = {}
        if mode != "embedding" and terms.terms:
            keyword = self._keyword_scores(db, character_id, terms, total, frequency)
        similarities: dict[int, float] = {}
        dense: dict[int, float] = {}
        if self.embedder is not None and mode != "bm25":
            vectors = self._character_vectors(db, character_id)
            if vectors is not None and len(vectors.ids):
                fields = vectors.matrix @ self.embedder.embed_query(query)  # (n, 3)
                ids = vectors.ids.tolist()
                similarities = dict(zip(ids, fields[:, 0].tolist(), strict=True))
                dense = dict(zip(ids, (fields @ _FIELD_WEIGHTS).tolist(), strict=True))
        if mode == "bm25" or not similarities:
            fused = keyword
        elif mode == "embedding":
            fused = similarities
        else:
            top_semantic = sorted(dense, key=lambda i: -dense[i])[:_CANDIDATES]
            candidates = {*top_semantic, *keyword}
            covered = self._coverages(db, list(candidates), terms, total, frequency)
            fused = {
                chunk_id: fuse(
                    dense.get(chunk_id, 0.0), keyword.get(chunk_id, 0.0),
                    covered.get(chunk_id, (0.0, 0))
                )
                for chunk_id in candidates
            }  # fmt: skip
        best = sorted(fused, key=lambda chunk_id: (-fused[chunk_id], chunk_id))[:k]
        return self._passages(db, best, fused, similarities, terms, total, frequency)

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
        vectors = passage_vectors(self.embedder, [(h, t) for _, h, t in pending])
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

    def _keyword_scores(
        self,
        db: sqlite3.Connection,
        character_id: str,
        terms: QueryTerms,
        total: int,
        frequency: dict[str, int],
    ) -> dict[int, float]:
        """BM25 (FTS5) of the best matching passages, divided by the most BM25 can give for
        this query (each word's IDF x (k1 + 1), FTS5's k1 being 1.2), so 1.0 means "every word
        of the question, many times" whatever the question's length."""
        match = "{heading_terms body_terms}: (" + fts_match(terms) + ")"
        weights = (_HEADING_WEIGHT, _BODY_WEIGHT)
        rows = db.execute(
            "SELECT rowid, -bm25(kb_fts, ?, ?, 0) FROM kb_fts WHERE kb_fts MATCH ? AND "
            "character_id = ? ORDER BY bm25(kb_fts, ?, ?, 0) LIMIT ?",
            (*weights, match, character_id, *weights, _KEYWORD_CANDIDATES),
        ).fetchall()
        if not rows:
            return {}
        ceiling = sum(
            max(1e-6, math.log((total - frequency.get(t, 0) + 0.5) / (frequency.get(t, 0) + 0.5)))
            for t in terms.terms
        ) * (1.0 + _FTS5_K1)
        return {int(rowid): min(1.0, float(score) / ceiling) for rowid, score in rows}

    @staticmethod
    def _frequencies(db: sqlite3.Connection, character_id: str, words: list[str]) -> dict[str, int]:
        """In how many of the character's passages each word occurs."""
        counts = {}
        for word in words:  # [a-z0-9]+ words (see ``lexical``): quoting is all they need
            (count,) = db.execute(
                "SELECT count(*) FROM kb_fts WHERE kb_fts MATCH ? AND character_id = ?",
                (f'{{heading_terms body_terms}}: "{word}"', character_id),
            ).fetchone()
            if count:
                counts[word] = int(count)
        return counts

    @staticmethod
    def _fts_rows(db: sqlite3.Connection, character_id: str) -> int:
        return int(
            db.execute(
                "SELECT count(*) FROM kb_chunks WHERE character_id = ?", (character_id,)
            ).fetchone()[0]
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
            np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32).reshape(
                -1, 3, dim
            ),
        )
        with self._cache_lock:
            self._vectors[character_id] = vectors
            self._vectors.move_to_end(character_id)
            while len(self._vectors) > _CACHED_CHARACTERS:
                self._vectors.popitem(last=False)
        return vectors

    def _coverages(
        self,
        db: sqlite3.Connection,
        chunk_ids: list[int],
        terms: QueryTerms,
        total: int,
        frequency: dict[str, int],
    ) -> dict[int, tuple[float, int]]:
        """(coverage of the question's words, number of body words) of each passage."""
        if not chunk_ids or not terms.terms:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = db.execute(
            f"SELECT rowid, heading_terms, body_terms FROM kb_fts WHERE rowid IN ({marks})",
            chunk_ids,
        ).fetchall()
        return {
            int(rowid): (
                coverage(terms, set(f"{heading} {body}".split()), frequency, total),
                len(body.split()),
            )
            for rowid, heading, body in rows
        }

    def _passages(
        self,
        db: sqlite3.Connection,
        chunk_ids: list[int],
        scores: dict[int, float],
        similarities: dict[int, float],
        terms: QueryTerms,
        total: int,
        frequency: dict[str, int],
    ) -> list[Passage]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = db.execute(
            "SELECT c.id, c.document_id, d.source, d.title, c.headings, c.text, c.position, "
            "f.heading_terms, f.body_terms FROM kb_chunks c JOIN kb_documents d ON "
            "d.character_id = c.character_id AND d.document_id = c.document_id JOIN kb_fts f "
            f"ON f.rowid = c.id WHERE c.id IN ({marks})",
            chunk_ids,
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        passages = []
        for chunk_id in chunk_ids:
            row = by_id.get(chunk_id)
            if row is None:  # cannot happen inside one snapshot; kept as a guard
                continue
            _, document_id, source, title, headings, text, position, heading_terms, body_terms = row
            words = set(f"{heading_terms} {body_terms}".split())
            passages.append(
                Passage(
                    document_id=document_id,
                    source=source,
                    headings=tuple(json.loads(headings)),
                    text=text,
                    score=scores[chunk_id],
                    similarity=similarities.get(chunk_id),
                    coverage=coverage(terms, words, frequency, total),
                    position=position,
                    title=title,
                )
            )
        return passages


class KnowledgeBaseRetriever:
    """``Retriever`` over one character's documents in a ``KnowledgeBase``."""

    def __init__(self, kb: KnowledgeBase, character_id: str, *, mode: SearchMode = "hybrid"):
        self.kb = kb
        self.character_id = character_id
        self.mode: SearchMode = mode

    def search(self, query: str, k: int = 3) -> list[Passage]:
        return self.kb.search(self.character_id, query, k=k, mode=self.mode)


def _embedding_text(headings: tuple[str, ...], text: str) -> str:
    """What is embedded for a passage: its heading path as a lead sentence, then the text
    without markup ("Leave policy, Parental leave. You get 20 weeks ...")."""
    plain = strip_markdown(text)
    return f"{', '.join(headings)}. {plain}" if headings else plain


def fuse(dense: float, keyword: float, covered: tuple[float, int]) -> float:
    """The hybrid score of a passage (see the module docstring): its dense similarity (the
    weighted cosines of its fields), plus a bonus for the question's words it contains
    (normalised BM25, and the IDF-weighted share of the question's words present, which a long
    passage cannot inflate by repetition), minus a little for a passage too short to state much
    (a one-line intro sharing a common word with the question must not beat the section that
    answers it). Scaled so that a perfect match of every signal is about 1."""
    share, words = covered
    short = max(0.0, 1.0 - words / _SHORT_WORDS) if words else 1.0
    raw = dense + _KEYWORD_WEIGHT * keyword + _COVERAGE_WEIGHT * share - _SHORT_PENALTY * short
    return raw / _SCALE


def passage_vectors(
    embedder: Embedder, passages: list[tuple[tuple[str, ...], str]]
) -> np.ndarray:
    """Three unit vectors per passage, shape ``(n, 3, dim)``: the passage with its heading path
    (``_embedding_text``), its body alone, and its section heading alone. A question can match a
    section by what it says, by what it is about (FAQ headings are often the question itself),
    or both; a long body dilutes its heading and the heading path dilutes a short body, so each
    field is scored on its own."""
    texts = [_embedding_text(h, t) for h, t in passages]
    texts += [strip_markdown(t) for _, t in passages]
    texts += [(h[-1] if h else strip_markdown(t)[:200]) for h, t in passages]
    vectors = embedder.embed_documents(texts)
    n = len(passages)
    return np.stack([vectors[:n], vectors[n : 2 * n], vectors[2 * n :]], axis=1)
