"""KnowledgeBase: documents per character, atomic replace, delete, validation, thread safety."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from talkie.brain.kb import MAX_DOCUMENT_BYTES, Embedder, KnowledgeBase
from talkie.errors import InvalidInputError

POLICY_V1 = """# Travel policy

## Hotels

The hotel limit is 150 euros per night.

## Trains

First class is allowed for journeys over 4 hours.
"""
POLICY_V2 = """# Travel policy

## Hotels

The hotel limit is 190 euros per night, breakfast included.
"""


def texts(kb: KnowledgeBase, character: str, query: str, k: int = 5) -> list[str]:
    return [p.text for p in kb.search(character, query, k=k)]


def test_put_list_and_search(kb: KnowledgeBase) -> None:
    info = kb.put_document("ada", "travel", source="travel-policy.md", text=POLICY_V1)
    assert (info.document_id, info.source, info.kind, info.title) == (
        "travel",
        "travel-policy.md",
        "markdown",
        "Travel policy",
    )
    assert info.chunks == 2 and info.chars == len(POLICY_V1)
    assert kb.list_documents("ada") == [info]
    assert kb.get_document("ada", "travel") == info
    best = kb.search("ada", "How much can I spend on a hotel?", k=1)[0]
    assert best.text == "The hotel limit is 150 euros per night."
    assert best.headings == ("Travel policy", "Hotels")
    assert best.heading == "Travel policy > Hotels"
    assert (best.document_id, best.source, best.title) == (
        "travel",
        "travel-policy.md",
        "Travel policy",
    )
    assert best.similarity is not None and best.similarity > 0.4
    assert 0.0 < best.coverage <= 1.0


def test_reupload_replaces_the_document(kb: KnowledgeBase) -> None:
    first = kb.put_document("ada", "travel", source="travel-policy.md", text=POLICY_V1)
    second = kb.put_document("ada", "travel", source="travel-policy-2025.md", text=POLICY_V2)
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert second.chunks == 1 and second.sha256 != first.sha256
    assert kb.list_documents("ada") == [second]
    found = texts(kb, "ada", "hotel limit per night")
    assert found == ["The hotel limit is 190 euros per night, breakfast included."]
    # The old passages are gone from both indexes.
    assert texts(kb, "ada", "first class train journeys") == [found[0]]
    assert kb.search("ada", "first class", mode="bm25") == []
    assert all(p.source == "travel-policy-2025.md" for p in kb.search("ada", "hotel"))


def test_delete_document_and_character(kb: KnowledgeBase) -> None:
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    kb.put_document("ada", "notes", source="notes.txt", text="Parking\nThere are 12 spaces.")
    kb.put_document("bob", "travel", source="travel.md", text=POLICY_V2)
    assert kb.delete_document("ada", "travel") is True
    assert kb.delete_document("ada", "travel") is False
    assert [d.document_id for d in kb.list_documents("ada")] == ["notes"]
    assert all(p.document_id == "notes" for p in kb.search("ada", "hotel limit per night"))
    # Another character's document with the same id is untouched.
    assert texts(kb, "bob", "hotel limit", k=1) == [
        "The hotel limit is 190 euros per night, breakfast included."
    ]
    assert kb.delete_character("ada") == 1
    assert kb.list_documents("ada") == [] and kb.search("ada", "parking spaces") == []
    assert kb.delete_character("ada") == 0
    db = sqlite3.connect(kb.path)
    try:
        # No orphans in the chunk table or the FTS index.
        assert db.execute("SELECT count(*) FROM kb_chunks").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM kb_fts").fetchone()[0] == 1
    finally:
        db.close()


def test_characters_do_not_see_each_other(kb: KnowledgeBase) -> None:
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    assert kb.search("bob", "hotel limit") == []
    assert kb.list_documents("bob") == []


def test_plain_text_kind_from_the_source_name(kb: KnowledgeBase) -> None:
    info = kb.put_document(
        "ada", "faq", source="FAQ.txt", text=b"Opening hours\nWe open at 9 am.\n\nPets\nDogs ok."
    )
    assert info.kind == "text" and info.title is None and info.chunks == 2
    best = kb.search("ada", "when do you open", k=1)[0]
    assert best.headings == ("Opening hours",)
    md = kb.put_document("ada", "m", source="notes", text="# T\n\nBody.", kind="markdown")
    assert md.kind == "markdown" and md.title == "T"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n\t\n", "is empty"),
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),  # a BOM alone
        ("caf\xe9".encode("latin-1") + b" menu", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("text\x00with a NUL", "binary"),
        ("a lone \ud800 surrogate", "invalid characters"),
        ("".join(chr(i) for i in range(1, 32)) * 10, "binary"),
        ("# Only\n\n## Headings\n", "no text to index"),
        (b"x" * (MAX_DOCUMENT_BYTES + 1), "limit is 2 MB"),
        ("é" * (MAX_DOCUMENT_BYTES // 2 + 1), "limit is 2 MB"),
        (12345, "str or bytes"),
    ],
)
def test_invalid_documents_are_rejected(kb: KnowledgeBase, text: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        kb.put_document("ada", "doc", source="upload.md", text=text)
    assert kb.list_documents("ada") == []


@pytest.mark.parametrize(
    ("character", "document", "source", "kind", "message"),
    [
        ("", "doc", "a.md", None, "character id is empty"),
        ("ada", "  ", "a.md", None, "document id is empty"),
        ("x" * 201, "doc", "a.md", None, "at most 200"),
        ("ada", "line\nbreak", "a.md", None, "one line"),
        ("ada", "doc", "", None, "source name"),
        ("ada", "doc", "a\x07.md", None, "printable"),
        ("ada", "doc", "a.md", "pdf", "'markdown' or 'text'"),
    ],
)
def test_invalid_ids_are_rejected(
    kb: KnowledgeBase, character: str, document: str, source: str, kind: str | None, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        kb.put_document(character, document, source=source, text="Some text.", kind=kind)


def test_a_document_at_the_size_limit_is_accepted(tmp_path: Path) -> None:
    # Keyword-only base: embedding 2 MB would take a while and prove nothing more here.
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        paragraph = "The canteen serves lunch from noon. " * 20 + "\n\n"
        text = (paragraph * (MAX_DOCUMENT_BYTES // len(paragraph)))[:MAX_DOCUMENT_BYTES]
        info = kb.put_document("ada", "big", source="big.txt", text=text)
        assert info.chars == len(text) and info.chunks > 1000


def test_search_edge_cases(kb: KnowledgeBase) -> None:
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    assert kb.search("ada", "   ") == []
    assert kb.search("ada", "hotel", k=0) == []
    # Only stop words: no keyword query, but the embedding still ranks.
    assert len(kb.search("ada", "what is it", k=1)) == 1
    # FTS5 syntax in a question is just text.
    assert kb.search("ada", 'hotel" OR NEAR(a b) * ^ {x}: -', k=1)
    with pytest.raises(InvalidInputError, match="search mode"):
        kb.search("ada", "hotel", mode="fuzzy")


def test_keyword_only_knowledge_base(tmp_path: Path) -> None:
    with KnowledgeBase(tmp_path / "kb.sqlite", embedder=None) as kb:
        kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
        best = kb.search("ada", "hotel limit per night", k=1)[0]
        assert best.headings[-1] == "Hotels" and best.similarity is None
        assert best.coverage == pytest.approx(1.0)
        assert kb.search("ada", "hotel", mode="embedding") == []


def test_persists_and_reembeds_after_a_model_change(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "kb.sqlite"
    with KnowledgeBase(path) as kb:  # indexed without embeddings
        kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    with KnowledgeBase(path, embedder=embedder) as kb:
        assert [d.document_id for d in kb.list_documents("ada")] == ["travel"]
        assert kb.search("ada", "hotel", mode="embedding") == []  # no vectors of this model yet
        assert kb.reembed() == 2
        assert kb.reembed() == 0
        best = kb.search("ada", "Where can I sleep on a trip?", k=1, mode="embedding")[0]
        assert best.headings[-1] == "Hotels"


def test_concurrent_searches_during_replacements(kb: KnowledgeBase) -> None:
    """Readers in several threads see either version of a document, never none or a mix."""
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    versions = {
        "The hotel limit is 150 euros per night.",
        "The hotel limit is 190 euros per night, breakfast included.",
    }
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                found = kb.search("ada", "hotel limit per night", k=1)
                assert len(found) == 1 and found[0].text in versions
        except BaseException as exc:  # noqa: BLE001 - collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for i in range(15):
            kb.put_document(
                "ada", "travel", source="travel.md", text=POLICY_V2 if i % 2 else POLICY_V1
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not errors, errors[0]


def test_embeddings_are_stored_as_float32_blobs(kb: KnowledgeBase, embedder: Embedder) -> None:
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    db = sqlite3.connect(kb.path)
    try:
        rows = db.execute("SELECT model, embedding FROM kb_chunks").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()
    assert mode == "wal"
    for model, blob in rows:
        # Three unit vectors per passage: with its headings, its body alone, its heading alone.
        vectors = np.frombuffer(blob, dtype=np.float32).reshape(3, embedder.dim)
        assert model == embedder.name
        assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)
        assert not np.allclose(vectors[0], vectors[1])


def test_passages_embedded_before_per_field_vectors_are_still_found(
    kb: KnowledgeBase, embedder: Embedder
) -> None:
    kb.put_document("ada", "travel", source="travel.md", text=POLICY_V1)
    expected = kb.search("ada", "What is the hotel limit per night?", k=1)[0]
    db = sqlite3.connect(kb.path)
    try:  # rewrite the blobs as the old format had them: one vector per passage
        for chunk_id, blob in db.execute("SELECT id, embedding FROM kb_chunks").fetchall():
            old = np.frombuffer(blob, dtype=np.float32)[: embedder.dim].tobytes()
            db.execute("UPDATE kb_chunks SET embedding = ? WHERE id = ?", (old, chunk_id))
        db.execute("UPDATE kb_revisions SET revision = revision + 1")
        db.commit()
    finally:
        db.close()
    found = kb.search("ada", "What is the hotel limit per night?", k=1)[0]
    assert found.text == expected.text and found.similarity == pytest.approx(
        expected.similarity, abs=1e-5
    )


def test_closed_knowledge_base_refuses_work(tmp_path: Path) -> None:
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    kb.close()
    with pytest.raises(RuntimeError, match="closed"):
        kb.search("ada", "hotel")
    with pytest.raises(InvalidInputError, match="file path"):
        KnowledgeBase(":memory:")
