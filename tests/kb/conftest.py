"""Fixtures for the knowledge-base tests: the real embedding model (loaded once per session) and
a knowledge base holding the synthetic handbook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kb_handbook import CHARACTER, handbook_pages

from talkie.brain.kb import Embedder, KnowledgeBase, load_embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """all-MiniLM-L6-v2 on onnxruntime (the default model; loads in well under a second)."""
    model = load_embedder("minilm")
    assert model is not None
    return model


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    """An empty knowledge base with real embeddings."""
    base = KnowledgeBase(tmp_path / "kb.sqlite", embedder=embedder)
    yield base
    base.close()


@pytest.fixture(scope="session")
def handbook_kb(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[KnowledgeBase]:
    """The 20-page handbook indexed for ``CHARACTER`` (shared: tests only read it)."""
    base = KnowledgeBase(tmp_path_factory.mktemp("handbook") / "kb.sqlite", embedder=embedder)
    for page in handbook_pages():
        base.put_document(CHARACTER, page.document_id, source=page.source, text=page.text)
    yield base
    base.close()
