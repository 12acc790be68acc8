"""Brain benchmark: the embedded LLM's speed and memory, answer quality by rubric, retrieval.

    .venv/bin/python bench/brain.py                                   # everything, default model
    .venv/bin/python bench/brain.py --models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b
    .venv/bin/python bench/brain.py --parts retrieval --out /tmp/brain.json

Parts (``--parts speed,rubric,retrieval``):

- ``speed`` (per local model): worker start and model load (s); resident memory of the worker
  (VmRSS now, VmHWM peak, from /proc); time to first token (TTFT, measured at the client over the
  private socket) of the real prompt (persona + knowledge-base passages + question, as the local
  brain builds it), in three states of the KV cache:
  ``cold`` nothing cached (first request after start); ``warm`` the persona prefix cached (the
  passages and the question are processed); ``prefilled`` persona and passages processed before
  the question arrived (as when the answer is prepared at the user's pause, with the question's
  start already in); and decoding speed (tokens/s, llama.cpp's own count, median over answers).
  llama.cpp's ``prompt_n``/``cache_n`` show how many prompt tokens each state processed.
- ``rubric``: 32 fixed questions to "Sam" of a bike shop whose handbook is in the knowledge base
  (persona, small talk, knowledge, unanswerable), answered by the built-in brain and by each
  local model (with a generous first-token budget, so the model itself is judged; the route is
  recorded). Each answer is checked against the criteria that apply: ``spoken`` (1-3 sentences,
  at most 60 words, no markdown or lists), ``persona`` (never calls itself Qwen/an AI model;
  persona questions name Sam or the shop), ``passage`` (knowledge questions: states the fact),
  ``honest`` (unanswerable: says it does not know, with no invented numbers).
- ``retrieval``: top-1 and top-3 right passage, hybrid search, on the three generated handbooks
  (tests/kb: 20-page company handbook, 6-page shop FAQ, 4 long library policy pages), each in
  its own knowledge base.

Machine load (1-minute load average) is recorded at the start and end of each part: the
development machine is shared, and CPU contention changes every timing here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kb"))

from kb_handbook import CHARACTER, QUESTIONS, handbook_pages  # noqa: E402
from kb_handbooks import LIBRARY, SHOP  # noqa: E402

from talkie.brain import BuiltinBrain, Persona  # noqa: E402
from talkie.brain.kb import KnowledgeBase, load_embedder  # noqa: E402
from talkie.brain.local import DEFAULT_MODEL, find_model  # noqa: E402
from talkie.brain.local.brain import LocalBrain, LocalBrainOptions  # noqa: E402
from talkie.brain.local.engine import EngineOptions, LocalEngine  # noqa: E402

SAM = Persona(
    name="Sam",
    system_prompt=(
        "You are Sam, the friendly shop assistant of Spoke & Chain, a family-run bike shop in "
        "Portsmouth. You chat with customers in a live voice conversation. Keep every answer "
        "short and natural to say out loud: one to three sentences. Be honest: if you do not "
        "know something, say so."
    ),
    greeting="Hi, I'm Sam from Spoke & Chain. How can I help?",
)
# (category, question, what an answer must contain: any of these, case-insensitive)
RUBRIC: list[tuple[str, str, tuple[str, ...]]] = [
    ("persona", "Who are you?", ("sam",)),
    ("persona", "What's your name?", ("sam",)),
    ("persona", "Could you tell me a little bit about yourself?", ("sam", "spoke")),
    ("persona", "Are you a robot?", ("sam", "assistant", "spoke", "shop")),
    ("persona", "What can you help me with?", ("bike", "shop", "repair", "question")),
    ("persona", "Where do you work?", ("spoke", "shop")),
    ("small_talk", "Hi there!", ()),
    ("small_talk", "How are you today?", ()),
    ("small_talk", "Thanks a lot!", ()),
    ("small_talk", "Good morning!", ()),
    ("small_talk", "I'm just browsing, to be honest.", ()),
    ("small_talk", "Okay, bye for now!", ()),
    ("knowledge", "When do you open on Saturday?", ("10:00", "10 am", "10am", "ten")),
    ("knowledge", "Are you open on Sundays?", ("closed", "not open", "no")),
    ("knowledge", "Where is the shop?", ("harbour street",)),
    ("knowledge", "Who founded the shop?", ("greta",)),
    ("knowledge", "How much does a full service cost?", ("95",)),
    ("knowledge", "Do you work on electric bikes?", ("bosch", "shimano", "brose", "yes")),
    ("knowledge", "Can I try a bike before I buy it?", ("test ride", "30 minutes", "yes")),
    ("knowledge", "Can I pay with my phone?", ("apple pay",)),
    ("knowledge", "Can I get my money back if I change my mind?", ("28 days",)),
    ("knowledge", "How much is it to rent an e-bike for a day?", ("35",)),
    ("knowledge", "Do I get a helmet with a rental bike?", ("helmet",)),
    ("knowledge", "How long will my bike be in the workshop?", ("three working days", "3 working")),
    ("knowledge", "How many mechanics do you have?", ("six", "6")),
    ("knowledge", "How long is the frame guaranteed?", ("lifetime",)),
    ("unanswerable", "Do you have a car park for customers?", ()),
    ("unanswerable", "What's your phone number?", ()),
    ("unanswerable", "Can I book a guided bike tour with you?", ()),
    ("unanswerable", "Do you give discounts to students?", ()),
    ("unanswerable", "Is there a cafe in the shop?", ()),
    ("unanswerable", "Do you ship bikes to France?", ()),
]
_DONT_KNOW = re.compile(
    r"don't know|do not know|not sure|no information|don't have (?:that|any|information|details)|"
    r"can't (?:find|say|tell)|couldn't find|i'm afraid|isn't in|not in my|doesn't say|"
    r"do not have|unable to|no details|not something i|i don't have", re.IGNORECASE
)
_OFF_PERSONA = re.compile(r"qwen|alibaba|language model|as an ai|ai assistant created", re.I)
_MARKDOWN = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#)\s|\*\*|```|`", re.MULTILINE)


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def proc_memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


def shop_kb(folder: Path) -> KnowledgeBase:
    kb = KnowledgeBase(folder / "shop.sqlite", embedder=load_embedder("minilm"))
    for page in SHOP.pages:
        kb.put_document(SHOP.character, page.document_id, source=page.source, text=page.text)
    return kb


# -- speed -------------------------------------------------------------------------------------


async def _timed_request(
    engine: LocalEngine, messages: list[dict[str, Any]], max_tokens: int = 60
) -> dict[str, Any]:
    body = {"messages": messages, "max_tokens": max_tokens, "stream": True, "cache_prompt": True,
            "temperature": 0.3}  # fmt: skip
    headers = {"Authorization": f"Bearer {engine.api_key}"}
    first: float | None = None
    timings: dict[str, Any] = {}
    text = []
    async with httpx.AsyncClient(transport=engine.transport(), timeout=300) as client:
        start = time.perf_counter()
        async with client.stream(
            "POST", "http://talkie-local-llm/v1/chat/completions", json=body, headers=headers
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                for choice in chunk.get("choices", []):
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        first = first if first is not None else time.perf_counter() - start
                        text.append(delta)
                timings = chunk.get("timings", timings)
    return {"ttft_s": round(first or 0.0, 3), "text": "".join(text),
            "prompt_n": timings.get("prompt_n"), "cache_n": timings.get("cache_n"),
            "prompt_ms": round(timings.get("prompt_ms", 0.0), 1),
            "tokens_per_s": round(timings.get("predicted_per_second", 0.0), 1),
            "predicted_n": timings.get("predicted_n")}  # fmt: skip


def speed(model: str, kb: KnowledgeBase, threads: int) -> dict[str, Any]:
    found = find_model(model)
    if found is None:
        return {"error": f"{model} is not installed (python scripts/fetch_local_llm.py {model})"}
    spec, path = found
    started = time.perf_counter()
    engine = LocalEngine(path, name=spec.name, options=EngineOptions(threads=threads,
                                                                     batch_threads=threads))
    engine.wait_ready(600)
    if not engine.ready:
        return {"error": engine.error}
    result: dict[str, Any] = {"model": spec.name, "sha256": spec.sha256, "threads": threads,
                              "start_s": round(time.perf_counter() - started, 2),
                              "load_s": round(engine.load_seconds or 0, 2),
                              "load_avg_start": load_avg()}  # fmt: skip
    pid = engine._worker._proc.pid  # noqa: SLF001 - the benchmark reads the worker's memory
    result["memory_loaded_mb"] = proc_memory_mb(pid)
    brain = LocalBrain(engine=engine, persona=SAM, retriever=kb.retriever(SHOP.character))
    llm = brain.llm
    assert llm is not None
    questions = [q.text for q in SHOP.questions[:10]]

    def prompt(question: str) -> list[dict[str, Any]]:
        return asyncio.run(llm.request_messages([], question))

    prompts = [prompt(q) for q in questions]

    async def run() -> None:
        cold = await _timed_request(engine, prompts[0])
        warm, prefilled = [], []
        for question, messages in zip(questions[1:], prompts[1:], strict=True):
            # the persona prefix in the cache (what every turn after the first finds)
            await asyncio.to_thread(engine.prefill, messages[:1])
            warm.append(await _timed_request(engine, messages))
            # the answer prepared at the user's pause: persona, passages and the question's
            # start already processed when the rest of the question comes
            words = question.split()
            partial = messages[:-1] + [{"role": "user", "content": " ".join(words[: len(words)
                                                                                   // 2])}]
            await _timed_request(engine, partial, max_tokens=1)
            prefilled.append(await _timed_request(engine, messages))
        result["cold"] = cold
        for name, runs in (("warm", warm), ("prefilled", prefilled)):
            result[name] = {
                "ttft_s_median": round(statistics.median(r["ttft_s"] for r in runs), 3),
                "ttft_s_max": max(r["ttft_s"] for r in runs),
                "prompt_tokens_processed_median": statistics.median(r["prompt_n"] for r in runs),
                "prompt_tokens_cached_median": statistics.median(r["cache_n"] for r in runs),
                "runs": runs,
            }
        rates = [r["tokens_per_s"] for r in warm + prefilled if (r["predicted_n"] or 0) >= 8]
        result["tokens_per_s_median"] = round(statistics.median(rates), 1) if rates else None

    asyncio.run(run())
    result["memory_after_mb"] = proc_memory_mb(pid)
    result["load_avg_end"] = load_avg()
    engine.close()
    return result


# -- rubric ------------------------------------------------------------------------------------


def judge(category: str, answer: str, expected: tuple[str, ...]) -> dict[str, bool]:
    words = answer.split()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer.strip()) if re.search(r"\w", s)]
    checks = {
        "spoken": 1 <= len(sentences) <= 3 and len(words) <= 60 and not _MARKDOWN.search(answer),
        "persona": not _OFF_PERSONA.search(answer),
    }
    low = answer.lower()
    if category == "persona" and expected:
        checks["persona"] = checks["persona"] and any(e in low for e in expected)
    if category == "knowledge":
        checks["passage"] = any(e in low for e in expected)
    if category == "unanswerable":
        checks["honest"] = bool(_DONT_KNOW.search(answer)) and not re.search(r"\d", answer)
    return checks


async def _answer(brain: Any, question: str) -> tuple[str, float]:
    start = time.perf_counter()
    first = None
    parts = []
    async with contextlib.aclosing(brain.reply([], question)) as deltas:
        async for delta in deltas:
            first = first if first is not None else time.perf_counter() - start
            parts.append(delta)
    return " ".join("".join(parts).split()), round(first or 0.0, 3)


def rubric(label: str, brain: Any) -> dict[str, Any]:
    rows = []
    started = load_avg()
    for category, question, expected in RUBRIC:
        answer, first = asyncio.run(_answer(brain, question))
        checks = judge(category, answer, expected)
        rows.append({"category": category, "question": question, "answer": answer,
                     "first_text_s": first, "route": getattr(brain, "last_route", brain.name),
                     "checks": checks, "pass": all(checks.values())})  # fmt: skip
    by_category: dict[str, Any] = {}
    for category in dict.fromkeys(c for c, _, _ in RUBRIC):
        mine = [r for r in rows if r["category"] == category]
        by_category[category] = f"{sum(r['pass'] for r in mine)}/{len(mine)}"
    criteria: dict[str, str] = {}
    for name in ("spoken", "persona", "passage", "honest"):
        applicable = [r["checks"][name] for r in rows if name in r["checks"]]
        criteria[name] = f"{sum(applicable)}/{len(applicable)}"
    passed = sum(r["pass"] for r in rows)
    return {"brain": label, "passed": f"{passed}/{len(rows)}",
            "score": round(passed / len(rows), 3), "by_category": by_category,
            "criteria": criteria,
            "first_text_s_median": statistics.median(r["first_text_s"] for r in rows),
            "load_avg": [started, load_avg()], "answers": rows}  # fmt: skip


# -- retrieval ---------------------------------------------------------------------------------


def retrieval(folder: Path) -> dict[str, Any]:
    embedder = load_embedder("minilm")
    sets = [("company handbook (20 pages)", CHARACTER, handbook_pages(), QUESTIONS),
            (SHOP.name, SHOP.character, SHOP.pages, SHOP.questions),
            (LIBRARY.name, LIBRARY.character, LIBRARY.pages, LIBRARY.questions)]  # fmt: skip
    out: dict[str, Any] = {}
    for name, character, pages, questions in sets:
        kb = KnowledgeBase(folder / f"{character}.sqlite", embedder=embedder)
        for page in pages:
            kb.put_document(character, page.document_id, source=page.source, text=page.text)
        top1 = top3 = 0
        missed = []
        for q in questions:
            found = kb.search(character, q.text, k=3)

            def right(p: Any, q: Any = q) -> bool:
                return (p.document_id == q.document_id and bool(p.headings)
                        and p.headings[-1] == q.section and q.fact in p.text)  # fmt: skip

            top1 += bool(found) and right(found[0])
            top3 += any(right(p) for p in found)
            if not (found and right(found[0])):
                missed.append(q.text)
        kb.close()
        n = len(questions)
        out[name] = {"top1": f"{top1}/{n}", "top3": f"{top3}/{n}",
                     "top1_rate": round(top1 / n, 3), "top3_rate": round(top3 / n, 3),
                     "missed": missed}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="speed,rubric,retrieval")
    parser.add_argument("--models", default=DEFAULT_MODEL, help="comma-separated local models")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "brain.json")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    models = [m for m in args.models.split(",") if m]
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kb = shop_kb(folder) if parts & {"speed", "rubric"} else None
        if "speed" in parts and kb is not None:
            report["speed"] = [speed(m, kb, args.threads) for m in models]
            for s in report["speed"]:
                if "error" in s:
                    print(f"speed {s}")
                    continue
                print(f"speed {s['model']} ({s['threads']} threads): load {s['load_s']} s, "
                      f"RSS {s['memory_after_mb']}; TTFT cold {s['cold']['ttft_s']} s "
                      f"({s['cold']['prompt_n']} tokens), warm {s['warm']['ttft_s_median']} s "
                      f"({s['warm']['prompt_tokens_processed_median']} tokens), prefilled "
                      f"{s['prefilled']['ttft_s_median']} s; {s['tokens_per_s_median']} tok/s; "
                      f"load avg {s['load_avg_start']} -> {s['load_avg_end']}")  # fmt: skip
        if "rubric" in parts and kb is not None:
            retriever = kb.retriever(SHOP.character)
            results = [rubric("builtin", BuiltinBrain(persona=SAM, retriever=retriever))]
            for model in models:
                found = find_model(model)
                if found is None:
                    continue
                engine = LocalEngine(found[1], name=model)
                engine.wait_ready(600)
                generous = LocalBrainOptions(first_text_budget_s=60.0)
                brain = LocalBrain(engine=engine, persona=SAM, retriever=retriever,
                                   options=generous)  # fmt: skip
                results.append(rubric(f"local:{model}", brain))
                engine.close()
            report["rubric"] = results
            for r in results:
                print(f"rubric {r['brain']}: {r['passed']} ({r['by_category']}; criteria "
                      f"{r['criteria']}; first text {r['first_text_s_median']} s median)")
        if kb is not None:
            kb.close()
        if "retrieval" in parts:
            report["retrieval"] = retrieval(folder)
            for name, r in report["retrieval"].items():
                print(f"retrieval {name}: top-1 {r['top1']}, top-3 {r['top3']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous.update(report)  # a run of some parts keeps the others' last results
    args.out.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
