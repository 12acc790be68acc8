"""The per-character knowledge base: uploaded Markdown and text documents, chunked by headings,
indexed for hybrid search (SQLite FTS5 BM25 + sentence embeddings), cited by source.

- ``KnowledgeBase``: the store (one SQLite file) with ``put_document``, ``delete_document``,
  ``delete_character``, ``list_documents`` and ``search``;
- ``Retriever``/``Passage``: what a brain sees (``KnowledgeBase.retriever(character_id)``);
- ``load_embedder``: the embedding model (all-MiniLM-L6-v2 on onnxruntime by default);
- ``format_passages``/``spoken_source``: passages as LLM context, source names as spoken.
"""

from talkie.brain.kb.chunking import Chunk, chunk_document, chunk_markdown, chunk_text
from talkie.brain.kb.embedding import Embedder, load_embedder
from talkie.brain.kb.retrieval import Passage, Retriever, format_passages, spoken_source
from talkie.brain.kb.store import DocumentInfo, KnowledgeBase, KnowledgeBaseRetriever, SearchMode
from talkie.brain.kb.validation import MAX_DOCUMENT_BYTES

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Chunk",
    "DocumentInfo",
    "Embedder",
    "KnowledgeBase",
    "KnowledgeBaseRetriever",
    "Passage",
    "Retriever",
    "SearchMode",
    "chunk_document",
    "chunk_markdown",
    "chunk_text",
    "format_passages",
    "load_embedder",
    "spoken_source",
]
