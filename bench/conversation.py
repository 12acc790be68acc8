"""Listening as people talk, through the real browser: one turn per question, no lost words,
stopping when talked over (not for "mm-hm"), and the wait the user feels.

Run from the repository root::

    .venv/bin/python bench/conversation.py [--conditions clean,noise,load] [--out FILE]

For each condition the real server (built-in brain, Piper, Whisper tiny.en, Silero, Smart Turn)
talks to ONE headless Chromium page whose fake microphone plays ONE generated WAV, made of:

- a question said over the greeting (4.5 s after the click, as the greeting plays);
- every multi-part question of ``tests/session/speech_set.py`` (two or three breaths, pauses
  0.4-1.2 s, eight espeak-ng voices and accents), then one-breath questions;
- barge-ins: a question with a long answer, then a new question 2 s into the answer;
- backchannels: a question with a long answer, then "okay" / "yeah" / "right" 2 s into it;

each followed by room for its answer (the built-in brain's planned answer, synthesised with the
character's voice to size the gap). Conditions: ``clean``; ``noise`` (white noise 10 dB below
the speech); ``load`` (two other sessions on the same server, each typing a question every 6 s,
so two other characters talk throughout).

Measured, per item (what a user notices):

- **one turn**: the item's words became exactly one recorded turn (a ``turn`` event);
- **WER** of that turn's text against what was said; **words lost**: reference words deleted
  (never transcribed at all; a misheard word is an error, not a lost word); **breaths lost**:
  parts of a question of which (almost) no word reached any transcript;
- **answered**: the turn got an answer; **right**: it names what the knowledge says;
- **latency at the browser**: the end of the last breath (from the WAV, aligned to the page's
  microphone levels) to the first sound of the answer (the page's received audio), and the
  page's own measurement (``window.talkie.latencies``, what its response-time bar shows);
- **barge-in stop**: the user's onset to the character's last sound (at the browser);
- **backchannel kept**: the answer went on to its end, the backchannel is recorded, no turn.

Prints a table and saves JSON (default ``bench/results/conversation.json``). Definitions:
bench/README.md.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests" / "live"), str(ROOT / "tests" / "session")]

from live_browser import TalkiePage, launch_chromium  # noqa: E402
from live_server import LiveServer  # noqa: E402
from speech_set import BACKCHANNELS, MULTI_PART, ONE_BREATH, VOICES, Question, Track  # noqa: E402

from talkie.hearing import normalize_words  # noqa: E402
from talkie.server.app import ServerOptions  # noqa: E402
from talkie.server.ops import AdmissionOptions, OpsOptions  # noqa: E402
from turn_latency import COLLECT_JS, INSTRUMENT_JS, WORKLET_JS, CpuMeter, wait_for_quiet  # noqa: E402

CHARACTER = "astronaut"
RATE = 48_000
LEVEL = 0.01  # RMS per 128-sample block counted as sound (-40 dBFS)
ANSWER_MARGIN_S = 3.0
DONT_KNOW = "don't know"
# Questions with long answers (4-9 s): the barge-in or backchannel comes 2 s into the answer.
LONG = ("How do you listen to me?", "How do astronauts train?", "How does your face move?",
        "What is Talkie?", "Tell me about the space station.", "How do you talk?")
BARGES = ("Wait, how long is a day on Mars?", "Sorry, how far away is the Sun?",
          "Hold on, is Talkie open source?")  # fmt: skip


@dataclass
class Item:
    kind: str  # multi | one | greeting | barge | backchannel
    question: Question
    voice: tuple[str, int]
    start: float = 0.0  # in the WAV (s)
    parts: list[tuple[float, float]] = field(default_factory=list)  # each breath's span
    answer_s: float = 0.0
    after: str = ""  # the barge-in or backchannel said into the answer
    after_at: float = 0.0

    @property
    def end(self) -> float:
        return self.parts[-1][1]


# ------------------------------------------------------------------------------ the script


def plan(items: list[Item]) -> None:
    """The built-in brain's answer to each item and how long Nova takes to say it."""
    from talkie.brain.builtin import BuiltinBrain
    from talkie.session.character import CharacterLibrary
    from talkie.voice import load_tts

    character = asyncio.run(CharacterLibrary().get_async(CHARACTER))
    brain = BuiltinBrain(persona=character.persona)
    tts = load_tts(character.voice)
    for item in items:
        answer = brain.answer([], item.question.text)
        item.answer_s = sum(len(c.audio) / c.sample_rate for c in tts.synthesize(answer))


def script(conditions_seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(conditions_seed)
    items = [Item("greeting", Question(("How long is a day on Mars?",), ()), VOICES[2])]
    items += [Item("multi", q, VOICES[i % len(VOICES)]) for i, q in enumerate(MULTI_PART)]
    items += [Item("one", q, VOICES[(i + 3) % len(VOICES)]) for i, q in enumerate(ONE_BREATH)]
    for i, barge in enumerate(BARGES):
        items.append(Item("barge", Question((LONG[i],), ()), VOICES[i], after=barge))
        bc = BACKCHANNELS[int(rng.integers(1, len(BACKCHANNELS)))]  # espeak can't hum "mm-hm"
        items.append(Item("backchannel", Question((LONG[i + 3],), ()), VOICES[i + 4], after=bc))
    return items


def build_wav(items: list[Item], folder: Path, *, noise_snr: float | None) -> tuple[Path, float]:
    track = Track(1.0)
    t = 4.5  # the greeting item: over the greeting (the page connects ~2-3 s after the click)
    for k, item in enumerate(items):
        item.start = t
        end = track.ask(k, item.question, t, item.voice)
        item.parts = [(s.start, s.end) for s in track.spoken if s.question == k]
        t = end + 0.6 + item.answer_s
        if item.after:
            item.after_at = end + 0.6 + 2.0
            after_end = track.say(item.after, item.after_at, voice=VOICES[7], question=-2)
            # a barge-in gets its own answer; a backchannel pauses the answer (~1 s)
            t = max(t, after_end + 0.6 + 5.0) if item.kind == "barge" else t + 3.0
        t += ANSWER_MARGIN_S
    audio = track.with_noise(noise_snr) if noise_snr is not None else track.audio
    audio = np.concatenate([audio, np.zeros(int(6 * 16_000), np.float32)])
    pcm = resample_poly(audio, 3, 1) * 32767 * 0.9
    path = folder / "conversation.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(pcm, -32768, 32767).astype(np.int16).tobytes())
    return path, len(audio) / 16_000


# ------------------------------------------------------------------------------ running


def start_load(url: str, seconds: float) -> subprocess.Popen[str]:
    """Two other sessions on the same server, each typing a question every 6 s."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "sessions.py"), "--client", url, "--n", "2",
         "--seconds", str(seconds), "--ask-every", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def run_condition(name: str, items: list[Item], folder: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    wav, wav_s = build_wav(items, folder, noise_snr=10.0 if name == "noise" else None)
    print(f"[{name}] WAV {wav_s:.0f} s, {len(items)} items", flush=True)
    machine = wait_for_quiet(limit=1.5, max_wait=300)
    # Admission would (rightly) put the measured page in line behind two talking sessions on
    # 2 cores (their frames run > 5 % late); this condition measures listening on a machine
    # that is that full anyway, so the late-frames check is off for it.
    late_check = None if name == "load" else AdmissionOptions().max_late_ratio
    ops = OpsOptions(admission=AdmissionOptions(max_late_ratio=late_check))
    server = LiveServer(options=ServerOptions(max_sessions=4, ops=ops)).start()
    load = None
    try:
        server.call(lambda: server.app.state.services.characters.load_async(CHARACTER), timeout=90)
        with sync_playwright() as pw:
            # A first, silent session loads the shared voice and speech models, so the measured
            # one is live ~1-2 s after the click (its microphone WAV starts at the click).
            warm = launch_chromium(pw, mic=True)
            first = TalkiePage(warm, server.url).open(timeout=30)
            first.pick(CHARACTER)
            first.wait_playing(timeout=120, frames=5)
            first.close()
            warm.close()
            browser = launch_chromium(pw, fake_audio=wav)
            page = TalkiePage(browser, server.url).open(timeout=30)
            if name == "load":
                load = start_load(server.url, wav_s + 40)
                time.sleep(12.0)  # the other two are connected and talking
            cpu = CpuMeter()
            t_click = time.monotonic()
            page.pick(CHARACTER)
            try:
                page.wait_playing(timeout=60, frames=5)
            except Exception:
                refused = dict(server.app.state.services.ops.admission.refused)
                says = page.page.inner_text("body")[:400]
                print(f"[{name}] the measured page did not start; admission refused: "
                      f"{refused}; the page says: {says!r}", flush=True)  # fmt: skip
                raise
            page.page.wait_for_function(
                INSTRUMENT_JS, arg={"worklet": WORKLET_JS, "box": [0, 0, 8, 8], "width": 1280},
                timeout=20_000,
            )  # fmt: skip
            video_start, t_video = page.video_info(), time.monotonic()
            while time.monotonic() < t_click + wav_s + 10:
                time.sleep(2.0)
            video_end = page.video_info()
            video = {
                "fps": round((video_end["frames"] - video_start["frames"])
                             / (time.monotonic() - t_video), 2),
                "dropped": video_end["dropped"] - video_start["dropped"],
            }  # fmt: skip
            data = page.page.evaluate(COLLECT_JS)
            events = page.events()
            felt = page.page.evaluate("() => window.talkie.latencies")
            cpu_pct = cpu.percent()
            page.close()
            browser.close()
    finally:
        if load is not None:
            load.kill()
        server.stop()
    return {"data": data, "events": events, "felt": felt, "cpu_percent": cpu_pct,
            "machine": machine, "wav_s": wav_s, "video": video}  # fmt: skip


# ------------------------------------------------------------------------------ analysis


def _blocks(data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(data["audio"], np.float64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2]


def _mic_onsets(t: np.ndarray, mic: np.ndarray, quiet_s: float = 0.35) -> np.ndarray:
    """Where the page's microphone starts sounding after at least ``quiet_s`` of quiet."""
    out, last = [], -1e9
    for i in np.flatnonzero(mic > LEVEL):
        if t[i] - last > quiet_s:
            out.append(t[i])
        last = t[i]
    return np.asarray(out)


def _locate(items: list[Item], t: np.ndarray, mic: np.ndarray) -> list[float]:
    """For each item, the offset from WAV time to the page's audio clock.

    The AudioContext's clock is the only one the page's audio levels have, and on a busy
    machine it runs late (audio rendering stalls), drifting by seconds over minutes; so each
    item is located on its own: its breaths' onsets in the script are matched to the onsets
    heard in the page's microphone, following the drift from item to item."""
    heard = _mic_onsets(t, mic)
    starts = [p[0] for item in items for p in item.parts]
    # The first offset: the most common difference between early onsets (a histogram mode).
    diffs = np.array([h - w for w in starts[:6] for h in heard[:12]])
    hist, edges = np.histogram(diffs, bins=np.arange(-90.0, 30.0, 0.1))
    offset = float(edges[int(np.argmax(hist))] + 0.05)
    offsets = []
    for item in items:
        found = []
        for start, _ in item.parts:
            near = heard[np.abs(heard - (start + offset)) < 1.0]
            if near.size:
                found.append(float(near[np.argmin(np.abs(near - (start + offset)))]) - start)
        if found:
            offset = float(np.median(found))
        offsets.append(offset)
    return offsets


def _assign(items: list[Item], turns: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Turns (in the order they happened) to items (in the order they were said): the
    assignment in order that shares the most words (a monotonic alignment)."""
    def score(turn: dict[str, Any], item: Item) -> float:
        said = set(normalize_words(turn["user_text"]))
        ref = set(normalize_words(f"{item.question.text} {item.after}"))
        return len(said & ref) / max(1, len(said))

    n, k = len(turns), len(items)
    best = np.full((n + 1, k), -1e9)
    best[0, :] = 0.0
    back = np.zeros((n + 1, k), dtype=int)
    for i in range(1, n + 1):
        running, arg = -1e9, 0
        for j in range(k):
            if best[i - 1, j] > running:
                running, arg = best[i - 1, j], j
            best[i, j] = running + score(turns[i - 1], items[j])
            back[i, j] = arg
    out: dict[int, list[dict[str, Any]]] = {}
    j = int(np.argmax(best[n])) if n else 0
    for i in range(n, 0, -1):
        if score(turns[i - 1], items[j]) > 0.25:
            out.setdefault(j, []).insert(0, turns[i - 1])
        j = back[i, j]
    return out


def _onset_after(t: np.ndarray, level: np.ndarray, at: float, until: float) -> float | None:
    """The first sound after ``at`` that follows at least 250 ms of quiet (an answer's start,
    not the tail of something the character was already saying)."""
    quiet_since = None
    for i in np.flatnonzero((t >= at - 0.3) & (t < until)):
        if level[i] <= LEVEL:
            quiet_since = t[i] if quiet_since is None else quiet_since
        elif quiet_since is not None and t[i] - quiet_since >= 0.25 and t[i] >= at:
            return float(t[i])
        else:
            quiet_since = None
    return None


def _stop_after(t: np.ndarray, level: np.ndarray, at: float, quiet_s: float = 0.3) -> float | None:
    """The end of the last sound before ``quiet_s`` of silence, after ``at``."""
    idx = np.flatnonzero((t >= at) & (t < at + 10))
    last = at
    for i in idx:
        if level[i] > LEVEL:
            last = t[i]
        elif t[i] - last >= quiet_s:
            return last
    return None


def _alignment(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    """(edit distance, deletions) of ``hyp`` against ``ref``."""
    d = [[(j, 0) for j in range(len(hyp) + 1)]]
    for i in range(1, len(ref) + 1):
        row = [(i, i)]
        for j in range(1, len(hyp) + 1):
            sub = d[i - 1][j - 1][0] + (ref[i - 1] != hyp[j - 1])
            cands = [(sub, d[i - 1][j - 1][1]), (d[i - 1][j][0] + 1, d[i - 1][j][1] + 1),
                     (row[j - 1][0] + 1, row[j - 1][1])]  # fmt: skip
            row.append(min(cands))
        d.append(row)
    return d[-1][-1]


def analyse(items: list[Item], run: dict[str, Any]) -> dict[str, Any]:
    t, mic, remote = _blocks(run["data"])
    offsets = _locate(items, t, mic)
    events = run["events"]
    turns = [e for e in events if e.get("type") == "turn" and e.get("user_text")]
    finals = [e for e in events if e.get("type") == "transcript" and e.get("final")]
    felt = {m["turn"]: m for m in run["felt"] if not m.get("overlapped") and "turn" in m}
    owned = _assign(items, turns)
    heard: dict[int, list[str]] = {}
    as_turns = [{"user_text": e["text"], "i": n} for n, e in enumerate(finals)]
    for k, mine in _assign(items, as_turns).items():
        heard[k] = [finals[m["i"]]["text"] for m in mine]
    rows = []
    for k, item in enumerate(items):
        mine = owned.get(k, [])
        asked = [x for x in mine if not _is(item.after, x["user_text"])]
        ref = normalize_words(item.question.text)
        said_by_user = [w for text in heard.get(k, []) if not _is(item.after, text)
                        for w in normalize_words(text)]  # fmt: skip
        errors, _ = _alignment(ref, normalize_words(" ".join(x["user_text"] for x in asked)))
        _, lost = _alignment(ref, said_by_user)
        # A breath whose words (almost) all are missing was not heard at all, which is not
        # the same as a misheard word.
        heard_set = set(said_by_user)
        breaths_lost = sum(
            1 for part in item.question.parts
            if sum(w in heard_set for w in normalize_words(part)) < 0.3 * len(normalize_words(part))
        )  # fmt: skip
        row: dict[str, Any] = {
            "kind": item.kind, "question": item.question.text, "voice": item.voice[0],
            "turns": len(asked), "wer": round(errors / max(1, len(ref)), 3), "words": len(ref),
            "words_lost": lost, "breaths_lost": breaths_lost,
            "breaths": len(item.question.parts),
            "heard": " | ".join(x["user_text"] for x in asked),
            "answered": any(x["said"] and DONT_KNOW not in x["said"] for x in asked),
            "right": any(any(w in x["said"].lower() for w in item.question.answer_words)
                         for x in asked) if item.question.answer_words else None,
        }  # fmt: skip
        shift = offsets[k]
        end = item.end + shift
        onset = _onset_after(t, remote, end + 0.05, end + 8.0)
        row["browser_latency_ms"] = round(1000 * (onset - end)) if onset is not None else None
        first = asked[0] if asked else None
        if first is not None:
            latency = first["trace"].get("latency")
            row["server_latency_ms"] = round(1000 * latency) if latency else None
            page = felt.get(first["turn"])
            row["page_felt_ms"] = round(1000 * page["felt"]) if page else None
        if item.kind == "barge":
            at = item.after_at + shift
            stop = _stop_after(t, remote, at)
            row["barge_stop_ms"] = round(1000 * (stop - at)) if stop is not None else None
            row["barge_heard"] = any(_is(item.after, x["user_text"]) for x in mine)
            row["barge_cut"] = any(x["interrupted"] for x in asked)
        if item.kind == "backchannel":
            kept = [b for x in asked for b in x.get("backchannels", [])]
            row["backchannel_kept"] = bool(asked) and not any(x["interrupted"] for x in asked) \
                and bool(kept)  # fmt: skip
            row["backchannel_turns"] = sum(1 for x in mine if _is(item.after, x["user_text"]))
        rows.append(row)
    drift = round(offsets[-1] - offsets[0], 2) if offsets else None
    summary = summarise(rows)
    summary["answer_gaps"] = answer_gaps(run["events"])
    return {"clock_drift_s": drift, "items": rows, "summary": summary}


def answer_gaps(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Silences inside answers: a clause placed after the one before it had ended (its voice
    was not ready in time). From the server's ``reply`` events (start, duration)."""
    by_turn: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("type") == "reply" and e.get("duration"):
            by_turn.setdefault(int(e["turn"]), []).append(e)
    gaps = []
    for clauses in by_turn.values():
        clauses.sort(key=lambda e: e["start"])
        pairs = zip(clauses, clauses[1:], strict=False)
        gaps += [b["start"] - (a["start"] + a["duration"]) for a, b in pairs]
    if not gaps:
        return None
    late = [g for g in gaps if g > 0.05]
    return {"boundaries": len(gaps), "late": len(late),
            "late_ms_max": round(1000 * max(late)) if late else 0}  # fmt: skip


def _is(said: str, text: str) -> bool:
    """Is ``text`` (mostly) the words of ``said``?"""
    a, b = set(normalize_words(said)), set(normalize_words(text))
    return bool(a) and len(a & b) >= 0.6 * max(len(a), len(b))


def _pct(values: list[float], q: float) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.percentile(vals, q))) if vals else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def of(kind: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["kind"] == kind]

    asked = [r for r in rows if r["kind"] in ("multi", "one", "greeting")]
    multi, one = of("multi"), of("one")
    return {
        "multi_part_one_turn": f"{sum(r['turns'] == 1 for r in multi)}/{len(multi)}",
        "one_turn_share": round(sum(r["turns"] == 1 for r in asked) / max(1, len(asked)), 3),
        "median_wer": round(statistics.median([r["wer"] for r in asked]), 3) if asked else None,
        "words_lost": sum(r["words_lost"] for r in rows),
        "breaths_lost": sum(r["breaths_lost"] for r in rows),
        "breaths": sum(r["breaths"] for r in rows),
        "words": sum(r["words"] for r in rows),
        "answered": f"{sum(r['answered'] for r in asked)}/{len(asked)}",
        "answered_right": f"{sum(bool(r['right']) for r in asked)}/"
        f"{sum(r['right'] is not None for r in asked)}",
        "latency_multi_ms": {"p50": _pct([r["browser_latency_ms"] for r in multi], 50),
                             "p95": _pct([r["browser_latency_ms"] for r in multi], 95)},
        "latency_one_ms": {"p50": _pct([r["browser_latency_ms"] for r in one], 50),
                           "p95": _pct([r["browser_latency_ms"] for r in one], 95)},
        "page_felt_ms_p50": _pct([r.get("page_felt_ms") for r in asked], 50),
        "greeting_question_answered": all(r["answered"] for r in of("greeting")),
        "barge_stop_ms": [r.get("barge_stop_ms") for r in of("barge")],
        "barge_heard": f"{sum(bool(r.get('barge_heard')) for r in of('barge'))}/{len(of('barge'))}",
        "backchannels_kept": f"{sum(bool(r.get('backchannel_kept')) for r in of('backchannel'))}"
        f"/{len(of('backchannel'))}",
        "backchannel_turns": sum(r.get("backchannel_turns", 0) for r in of("backchannel")),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conditions", default="clean,noise,load")
    ap.add_argument("--quick", action="store_true", help="a few items of each kind (a smoke run)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "conversation.json")
    ap.add_argument("--reanalyse", type=Path, default=None, help="a saved *-raw.json: analyse it")
    ap.add_argument(
        "--brain", choices=("builtin", "local"), default="builtin",
        help="the character's brain: the built-in one (the answers the gaps were planned for) or "
        "the local LLM installed by make setup (what a default install answers with)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    os.environ["TALKIE_LOCAL_LLM"] = "1" if args.brain == "local" else "0"
    if args.brain == "local":
        from talkie.brain import local_llm_available

        if not local_llm_available():
            ap.error("--brain local: the local model is not installed (run make setup)")
    if args.reanalyse is not None:
        run = json.loads(args.reanalyse.read_text())
        saved = [Item(**{**i, "question": Question(**i["question"])}) for i in run["items"]]
        print(json.dumps(analyse(saved, run), indent=1))
        return 0
    items = script()
    if args.quick:
        seen: dict[str, int] = {}
        quick = []
        for item in items:
            if seen.get(item.kind, 0) < 3:
                quick.append(item)
                seen[item.kind] = seen.get(item.kind, 0) + 1
        items = quick
    print("planning answers (built-in brain + Piper)...", flush=True)
    plan(items)
    folder = Path(tempfile.mkdtemp(prefix="talkie-conversation-"))
    results: dict[str, Any] = {}
    for name in args.conditions.split(","):
        run = run_condition(name, items, folder)
        run["items"] = [asdict(i) for i in items]  # this condition's timings (re-analysable)
        (folder / f"{name}-raw.json").write_text(json.dumps(run))
        result = analyse(items, run)
        result.update(cpu_percent=run["cpu_percent"], machine=run["machine"])
        result["summary"]["video_at_browser"] = run["video"]  # frames the page showed per second
        results[name] = result
        print(f"[{name}] " + json.dumps(result["summary"]), flush=True)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "brain": args.brain,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "items": [asdict(i) for i in items],
        "conditions": results,
        "goal": {"one_turn_share": 0.95, "words_lost": 0, "latency_multi_p50_ms": 900,
                 "latency_multi_p95_ms": 1400, "latency_one_p50_ms": 800},
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print()
    print(f"{'condition':10} {'1 turn':>7} {'WER':>6} {'lost':>6} {'answered':>9} "
          f"{'multi p50/p95':>14} {'one p50/p95':>12} {'barge stop ms':>16} "
          f"{'bc kept':>8}")  # fmt: skip
    for name, r in results.items():
        s = r["summary"]
        print(f"{name:10} {s['one_turn_share']:>7.2f} {s['median_wer']:>6.3f} "
              f"{s['words_lost']:>3}/{s['words']:<3} {s['answered']:>9} "
              f"{s['latency_multi_ms']['p50']}/{s['latency_multi_ms']['p95']:>8} "
              f"{s['latency_one_ms']['p50']}/{s['latency_one_ms']['p95']:>6} "
              f"{str(s['barge_stop_ms']):>16} {s['backchannels_kept']:>8}")  # fmt: skip
    print(f"\nsaved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
