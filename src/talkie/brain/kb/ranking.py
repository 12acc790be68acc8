"""How the knowledge base ranks passages: the rankers' SQL (BM25 over FTS5, word statistics,
coverage) and the hybrid score that fuses them with the embeddings (see ``store``'s docstring).

Every function takes the caller's connection, so one search reads one snapshot.
"""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np

from talkie.brain.kb.embedding import Embedder
from talkie.brain.kb.lexical import QueryTerms, coverage, fts_match
from talkie.brain.kb.retrieval import Passage
from talkie.brain.markdown import strip_markdown

# How deep each ranker's list goes before fusion.
CANDIDATES = 30
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
FIELD_WEIGHTS = np.array([1.0, 0.3, 0.15], dtype=np.float32)
_SCALE = float(FIELD_WEIGHTS.sum())
_FTS5_K1 = 1.2
# Column weights for BM25: a heading describes its whole section, so a question word in the
# heading counts twice as much as the same word in the body.
_HEADING_WEIGHT = 2.0
_BODY_WEIGHT = 1.0


def keyword_scores(
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


def word_frequencies(db: sqlite3.Connection, character_id: str, words: list[str]) -> dict[str, int]:
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


def passage_count(db: sqlite3.Connection, character_id: str) -> int:
    return int(
        db.execute(
            "SELECT count(*) FROM kb_chunks WHERE character_id = ?", (character_id,)
        ).fetchone()[0]
    )


def coverages(
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


def passages(
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


def passage_vectors(embedder: Embedder, passages: list[tuple[tuple[str, ...], str]]) -> np.ndarray:
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
