"""Words for the knowledge base's keyword index, shared with the built-in brain's sentence index.

SQLite FTS5 ranks with BM25 but tokenises with its own rules. Feeding it words already normalised
by ``talkie.brain.knowledge`` (contractions expanded, stop words dropped, light stemming, answer-
type tags such as ``@price`` for "how much") makes FTS5's terms the same as the questions' terms,
so a question matches a passage exactly when the sentence index would, and the coverage of a
question by a passage can be computed from the stored terms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from talkie.brain.knowledge import answer_tags, synonyms, tokenize

__all__ = ["QueryTerms", "coverage", "fts_match", "passage_terms", "query_terms"]

# FTS5's unicode61 tokenizer splits "@price" at the "@": spell tags as one plain word instead.
_TAG_PREFIX = "qqtag"
# Answer-type tags say what kind of answer is wanted, not what about: they count half.
_TAG_WEIGHT = 0.5


def _fts_word(term: str) -> str:
    return _TAG_PREFIX + term[1:] if term.startswith("@") else term


@dataclass(frozen=True)
class QueryTerms:
    """The searchable words of a question: ``terms`` (FTS spelling, in order) and for each the
    words that also satisfy it (itself and its synonyms)."""

    terms: tuple[str, ...]
    alternatives: Mapping[str, tuple[str, ...]]


def passage_terms(headings: Iterable[str], text: str) -> tuple[str, str]:
    """(heading words, body words) of a passage, as space-separated FTS5 input."""
    heading_words = [_fts_word(t) for heading in headings for t in tokenize(heading)]
    body_words = [_fts_word(t) for t in tokenize(text)]
    body_words.extend(_fts_word(tag) for tag in answer_tags(text))
    return " ".join(heading_words), " ".join(body_words)


def query_terms(question: str) -> QueryTerms:
    """The question's words (paraphrases rewritten, duplicates dropped) and their synonyms."""
    terms = tuple(dict.fromkeys(_fts_word(t) for t in tokenize(question, paraphrase=True)))
    alternatives = {term: (term, *(_fts_word(s) for s in synonyms(term))) for term in terms}
    return QueryTerms(terms, alternatives)


def fts_match(query: QueryTerms, *, with_synonyms: bool = True) -> str:
    """An FTS5 MATCH expression: any of the words (BM25 then rewards passages with more)."""
    words: list[str] = []
    for term in query.terms:
        for word in query.alternatives[term] if with_synonyms else (term,):
            if word not in words:
                words.append(word)
    # Words are [a-z0-9]+ (see tokenize), so quoting is all the escaping they need.
    return " OR ".join(f'"{word}"' for word in words)


def coverage(
    query: QueryTerms, words: set[str], document_frequency: Mapping[str, int], total: int
) -> float:
    """IDF-weighted share of the question's words present in ``words`` (a passage's terms),
    synonyms counting as present. 0 when the question has no searchable words."""
    covered = 0.0
    weight_sum = 0.0
    for term in query.terms:
        present = [document_frequency.get(w, 0) for w in query.alternatives[term]]
        df = max(present) if any(present) else 0
        # A word absent from the whole knowledge base is as specific as a word can be.
        weight = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        if term.startswith(_TAG_PREFIX):
            weight *= _TAG_WEIGHT
        weight_sum += weight
        if any(w in words for w in query.alternatives[term]):
            covered += weight
    return covered / weight_sum if weight_sum else 0.0
