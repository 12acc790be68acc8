"""Turn latency through the real browser: end of the user's speech -> the answer audible (and the
mouth moving) in headless Chromium, with the built-in brain.

Run from the repository root::

    .venv/bin/python bench/turn_latency.py [--turns 22] [--out bench/results/turn_latency.json]

One page session. Chromium's fake microphone plays ONE generated WAV once: a long silence (the
session starts and the greeting plays), then ``--turns`` different questions in several espeak-ng
voices and speeds, each followed by enough silence for its answer (the built-in brain's answer to
the question is synthesised with the character's own Piper voice beforehand to size the gap).
In the page an AudioWorklet meters the microphone (the local stream the page sends) and the
character's audio (the remote stream) on ONE AudioContext clock, every 128 samples (375 Hz at
48 kHz); ``requestVideoFrameCallback`` reads the mouth region of every video frame as it is
presented. Definitions: shared/DESIGN.md "Measuring"; bench/README.md describes every number.
"""

from __future__ import annotations

import os

# As `talkie serve` does (talkie/cli.py), before numpy loads: one thread per BLAS/OpenMP pool.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "live"))

from live_browser import CHROMIUM, TalkiePage, launch_chromium  # noqa: E402
from live_server import LiveServer  # noqa: E402

from talkie.server.app import ServerOptions  # noqa: E402
from talkie.session.trace import STAGES as TRACE_STAGES  # noqa: E402

CHARACTER = "astronaut"
RATE = 48_000
LEAD_S = 14.0  # silence before the first question: page start, session start, greeting
GAP_MARGIN_S = 3.5  # silence after a question beyond its (expected) answer
MIN_ANSWER_S = 4.0  # a misheard question may get a longer answer than planned
LEVEL = 0.01  # RMS (per 128-sample block) above which audio counts as sound (-40 dBFS)
MERGE_GAP_S = 0.6  # pauses shorter than this inside a question do not end it
MOUTH_MIN_DELTA = 5.0  # luma levels: the smallest mouth change counted as "moving"

# (question, espeak-ng voice, words per minute). All but the last three have an answer in the
# astronaut's knowledge or small talk; the last three are known gaps of the built-in brain
# (reported separately, their latency counts all the same: "I don't know" is an answer).
QUESTIONS: list[tuple[str, str, int]] = [
    ("How far away is the Moon?", "en-us+m3", 165),
    ("What's your name?", "en-us+f2", 160),
    ("How long is a day on Mars?", "en-gb+m1", 170),
    ("How far is the Sun from the Earth?", "en-us+f4", 155),
    ("What is Talkie?", "en-gb-x-rp+m2", 165),
    ("Do you need a graphics card?", "en-us+m5", 175),
    ("How does your face move?", "en-gb+f3", 160),
    ("How do astronauts train?", "en-us+m1", 150),
    ("Is Talkie open source?", "en-us+f1", 170),
    ("Which planet is Mars?", "en-gb+m3", 160),
    ("How do you listen to me?", "en-us+m7", 165),
    ("Who are you?", "en-gb-x-rp+f2", 155),
    ("What can you do?", "en-us+m2", 180),
    ("How are you today?", "en-us+f3", 165),
    ("Tell me the distance to the Moon, please.", "en-gb+m4", 160),
    ("How many processor cores does Talkie need?", "en-us+m3", 170),
    ("Thank you, that was helpful.", "en-gb+f2", 165),
    ("How long does a day last on Mars?", "en-us+m6", 160),
    ("What do astronauts learn?", "en-gb-x-rp+m3", 170),
    ("How high does the space station fly?", "en-us+f2", 165),
    ("Can I use my own photo?", "en-gb+m2", 160),
    ("How often does the space station go around the Earth?", "en-us+m4", 175),
]

# The meter: per render quantum, the RMS of input 0 (microphone) and input 1 (character).
WORKLET_JS = """
class BenchMeter extends AudioWorkletProcessor {
  constructor() { super(); this.buf = []; }
  process(inputs) {
    this.buf.push(currentTime);
    for (let k = 0; k < 2; k++) {
      const ch = inputs[k] && inputs[k][0];
      let s = 0;
      if (ch && ch.length) {
        for (let i = 0; i < ch.length; i++) s += ch[i] * ch[i];
        s = Math.sqrt(s / ch.length);
      }
      this.buf.push(s);
    }
    if (this.buf.length >= 3 * 32) { this.port.postMessage(this.buf); this.buf = []; }
    return true;
  }
}
registerProcessor("bench-meter", BenchMeter);
"""

INSTRUMENT_JS = """
async (cfg) => {
  if (window.__bench) return true;
  const video = document.getElementById("video");
  const mic = window.talkie && window.talkie.micStream;
  const remote = video.srcObject ? video.srcObject.getAudioTracks() : [];
  if (!mic || !remote.length || !video.videoWidth) return false;
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const url = URL.createObjectURL(new Blob([cfg.worklet], { type: "application/javascript" }));
  await ctx.audioWorklet.addModule(url);
  const node = new AudioWorkletNode(ctx, "bench-meter",
    { numberOfInputs: 2, numberOfOutputs: 1, outputChannelCount: [1] });
  ctx.createMediaStreamSource(mic).connect(node, 0, 0);
  ctx.createMediaStreamSource(new MediaStream(remote)).connect(node, 0, 1);
  const silent = ctx.createGain();
  silent.gain.value = 0;
  node.connect(silent).connect(ctx.destination);
  const b = { ctx, audio: [], frames: [], clock: [], sampleRate: ctx.sampleRate };
  node.port.onmessage = (e) => { for (const v of e.data) b.audio.push(v); };
  const stamp = () => {
    const ts = ctx.getOutputTimestamp();
    b.clock.push([performance.now(), ts.performanceTime || 0, ts.contextTime || 0,
                  ctx.currentTime, ctx.baseLatency || 0, ctx.outputLatency || 0]);
  };
  b.clockTimer = setInterval(stamp, 200);
  // Mouth: mean luma of the inner-lip box of every presented frame (video pixels).
  const box = cfg.box;
  const canvas = document.createElement("canvas");
  canvas.width = box[2]; canvas.height = box[3];
  const g = canvas.getContext("2d", { willReadFrequently: true });
  const onFrame = (now, meta) => {
    try {
      const sx = video.videoWidth / cfg.width;
      g.drawImage(video, box[0] * sx, box[1] * sx, box[2] * sx, box[3] * sx, 0, 0, box[2], box[3]);
      const d = g.getImageData(0, 0, box[2], box[3]).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) {
        sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      }
      b.frames.push([meta.presentationTime, meta.expectedDisplayTime, meta.rtpTimestamp || 0,
                     meta.receiveTime || 0, meta.presentedFrames, sum / (d.length / 4), now]);
    } catch (err) { b.error = String(err); }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  stamp();
  window.__bench = b;
  return true;
}
"""

# Keep the page's RTCPeerConnection reachable (for getStats) without touching the page's code.
PC_HOOK_JS = """
(() => {
  const Orig = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Orig {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();
"""

STATS_JS = """
async () => {
  const pc = (window.__pcs || []).filter((p) => p.connectionState === "connected").pop();
  if (!pc) return [];
  const out = [];
  (await pc.getStats()).forEach((r) => {
    if (["inbound-rtp", "outbound-rtp", "media-playout", "candidate-pair"].includes(r.type)) {
      out.push(r);
    }
  });
  return out;
}
"""

COLLECT_JS = """
() => { const b = window.__bench;
  return { audio: b.audio, frames: b.frames, clock: b.clock, sampleRate: b.sampleRate,
           error: b.error || null, state: b.ctx.state }; }
"""


# ---------------------------------------------------------------------------------- planning


@dataclass
class Planned:
    text: str
    voice: str
    wpm: int
    expected_answer: str
    answer_s: float
    answer_lead_ms: float  # silence at the start of the answer's first clip (Piper)
    onset_s: float = 0.0  # in the WAV: first and last sample above LEVEL
    end_s: float = 0.0


def plan_answers(questions: list[tuple[str, str, int]]) -> list[Planned]:
    """The built-in brain's answer to each question (with the history the session will have if
    every question is heard right) and how long the character's voice takes to say it."""
    from talkie.brain.base import Turn
    from talkie.brain.builtin import BuiltinBrain
    from talkie.session.character import CharacterLibrary
    from talkie.voice import load_tts

    character = asyncio.run(CharacterLibrary().get_async(CHARACTER))
    brain = BuiltinBrain(persona=character.persona)
    tts = load_tts(character.voice)
    history = [Turn("assistant", brain.greeting())]
    planned = []
    for text, voice, wpm in questions:
        answer = brain.answer(history, text)
        clips = list(tts.synthesize(answer))
        seconds = sum(len(c.audio) / c.sample_rate for c in clips)
        first = np.asarray(clips[0].audio, np.float32)
        block = max(1, round(128 * clips[0].sample_rate / RATE))
        loud = np.flatnonzero(_block_rms(first, block) > LEVEL)
        lead = 1000 * loud[0] * block / clips[0].sample_rate if loud.size else float("nan")
        planned.append(Planned(text, voice, wpm, answer, round(seconds, 2), round(lead, 1)))
        history += [Turn("user", text), Turn("assistant", answer)]
    return planned


def build_wav(planned: list[Planned], folder: Path) -> tuple[Path, float]:
    """One WAV: LEAD_S of silence, then each question followed by room for its answer."""
    parts = [np.zeros(int(LEAD_S * RATE), np.int16)]
    t = LEAD_S
    for i, q in enumerate(planned):
        pcm = _espeak(q.text, q.voice, q.wpm, folder / f"q{i}.wav")
        loud = np.flatnonzero(_block_rms(pcm.astype(np.float32) / 32768.0) > LEVEL)
        q.onset_s = round(t + loud[0] * 128 / RATE, 4)
        q.end_s = round(t + (loud[-1] + 1) * 128 / RATE, 4)
        gap = max(q.answer_s, MIN_ANSWER_S) + GAP_MARGIN_S
        parts += [pcm, np.zeros(int(gap * RATE), np.int16)]
        t += len(pcm) / RATE + gap
    path = folder / "questions.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(parts).tobytes())
    return path, t


def _espeak(text: str, voice: str, wpm: int, path: Path) -> np.ndarray:
    import subprocess

    from scipy.signal import resample_poly

    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), text], check=True, timeout=30
    )
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
    path.unlink()
    g = np.gcd(rate, RATE)
    out = resample_poly(pcm, RATE // g, rate // g)
    return np.clip(out, -32768, 32767).astype(np.int16)


def _block_rms(x: np.ndarray, block: int = 128) -> np.ndarray:
    n = len(x) // block
    return np.sqrt(np.mean(x[: n * block].reshape(n, block) ** 2, axis=1))


# ---------------------------------------------------------------------------------- machine


def wait_for_quiet(limit: float = 1.0, poll: float = 15.0, max_wait: float = 900.0) -> dict:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``limit``."""
    t0 = time.monotonic()
    while os.getloadavg()[0] >= limit and time.monotonic() - t0 < max_wait:
        print(f"  load {os.getloadavg()[0]:.2f} >= {limit}: waiting...", flush=True)
        time.sleep(poll)
    load = os.getloadavg()
    return {
        "waited_s": round(time.monotonic() - t0, 1),
        "quiet": load[0] < limit,
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class CpuMeter:
    """CPU seconds of this process (server + harness), its Python children (the model workers:
    TTS, ASR) and the browser (every chromium process under this one)."""

    def __init__(self) -> None:
        self.start = self.read()
        self.t0 = time.monotonic()

    def read(self) -> dict[str, float]:
        me = os.getpid()
        procs = _descendants(me)
        browser = [p for p in procs if "chrom" in _comm(p)]
        python = [p for p in procs if _comm(p).startswith("python")]
        return {
            "server_process": _cpu_seconds(me),
            "model_workers": sum(_cpu_seconds(p) for p in python),
            "browser": sum(_cpu_seconds(p) for p in browser),
        }

    def percent(self) -> dict[str, float]:
        now, wall = self.read(), time.monotonic() - self.t0
        return {k: round(100 * (now[k] - self.start.get(k, 0.0)) / wall, 1) for k in now}


# ---------------------------------------------------------------------------------- analysis


def _segments(t: np.ndarray, level: np.ndarray, merge: float) -> list[tuple[float, float]]:
    """Runs of blocks above LEVEL, merging pauses shorter than ``merge`` seconds."""
    idx = np.flatnonzero(level > LEVEL)
    if not idx.size:
        return []
    block = float(np.median(np.diff(t))) if len(t) > 1 else 128 / RATE
    segs: list[list[float]] = [[t[idx[0]], t[idx[0]] + block]]
    for i in idx[1:]:
        if t[i] - segs[-1][1] > merge:
            segs.append([t[i], t[i] + block])
        else:
            segs[-1][1] = t[i] + block
    return [(a, b) for a, b in segs if b - a > 0.1]


def _wer(ref: str, hyp: str) -> tuple[int, int]:
    from talkie.brain.knowledge import normalize

    r = re.findall(r"[a-z0-9]+", normalize(ref))
    h = re.findall(r"[a-z0-9]+", normalize(hyp))
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)], len(r)


def _pct(values: list[float], q: float) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.percentile(vals, q)), 1) if vals else None


def analyse(
    planned: list[Planned],
    data: dict[str, Any],
    events: list[dict[str, Any]],
    hearing: list[dict[str, Any]],
) -> dict[str, Any]:
    audio = np.asarray(data["audio"], np.float64).reshape(-1, 3)
    t_ctx, mic, rem = audio[:, 0], audio[:, 1], audio[:, 2]
    clock = np.asarray(data["clock"], np.float64).reshape(-1, 6)
    # page time (performance.now, ms) -> AudioContext output time (s), from getOutputTimestamp.
    good = clock[clock[:, 1] > 0]
    if len(good):
        perf_to_ctx = float(np.median(good[:, 2] - good[:, 1] / 1000.0))
        clock_source = "getOutputTimestamp"
    else:  # no output timestamp: currentTime is the render time, output is later by latencies
        perf_to_ctx = float(np.median(clock[:, 3] - clock[:, 0] / 1000.0 - clock[:, 4]))
        clock_source = "currentTime"
    # server media clock (s) -> page time (ms): the smallest event delay (data channel).
    offsets = [e["received_at"] - 1000 * e["t"] for e in events if "t" in e and "received_at" in e]
    server_to_perf = min(offsets) if offsets else float("nan")

    def server_to_ctx(t: float) -> float:
        return (server_to_perf + 1000 * t) / 1000.0 + perf_to_ctx

    frames = np.asarray(data["frames"], np.float64).reshape(-1, 7)
    f_ctx = frames[:, 0] / 1000.0 + perf_to_ctx if len(frames) else np.zeros(0)
    f_luma = frames[:, 5] if len(frames) else np.zeros(0)

    mic_segs = _segments(t_ctx, mic, MERGE_GAP_S)
    # Align the file's timeline to the page's: the first detected question onset.
    first = next((s for s in mic_segs if s[1] - s[0] > 0.3), None)
    shift = first[0] - planned[0].onset_s if first else float("nan")

    finals = [
        e for e in events if e.get("type") == "transcript" and e.get("final") and not e.get("typed")
    ]
    replies = [e for e in events if e.get("type") == "reply"]
    traces = [e for e in events if e.get("type") == "trace" and e.get("relative")]
    hearing_by_end = sorted(hearing, key=lambda h: h["speech_end_pts"])

    turns = []
    for i, q in enumerate(planned):
        exp_on, exp_end = q.onset_s + shift, q.end_s + shift
        nxt = planned[i + 1].onset_s + shift if i + 1 < len(planned) else t_ctx[-1]
        seg = next((s for s in mic_segs if abs(s[0] - exp_on) < 0.5), None)
        row: dict[str, Any] = {"i": i, "question": q.text, "voice": q.voice, "wpm": q.wpm}
        if seg is None:
            row["error"] = "question not found in the microphone levels"
            turns.append(row)
            continue
        speech_end = seg[1]
        row["mic_end_vs_file_ms"] = round(1000 * (speech_end - exp_end), 1)
        window = (t_ctx > speech_end) & (t_ctx < nxt)
        loud = np.flatnonzero(window & (rem > LEVEL))
        row["overlap"] = bool(np.any((t_ctx > exp_on) & (t_ctx < speech_end) & (rem > LEVEL)))
        answer_on = float(t_ctx[loud[0]]) if loud.size else float("nan")
        row["browser_latency_ms"] = round(1000 * (answer_on - speech_end), 1) if loud.size else None
        # Server side: the final transcript(s), the reply and the trace of this question.
        lo_perf = (speech_end - perf_to_ctx) * 1000 - 1500
        hi_perf = (nxt - perf_to_ctx) * 1000
        mine = [e for e in finals if lo_perf < e["received_at"] < hi_perf]
        row["transcript"] = " | ".join(e["text"] for e in mine)
        row["finals"] = len(mine)
        errors, words = _wer(q.text, " ".join(e["text"] for e in mine))
        row["word_errors"], row["words"] = errors, words
        said = [e["text"] for e in replies if lo_perf < e["received_at"] < hi_perf]
        row["answer"] = " ".join(said)
        row["answer_as_planned"] = _same(row["answer"], q.expected_answer)
        trace = next(
            (
                tr
                for tr in traces
                if abs(server_to_ctx(tr["marks"]["speech_end"]) - speech_end) < 1.0
            ),
            None,
        )
        if trace is not None:
            rel = trace["relative"]
            row["trace"] = {k: round(1000 * v, 1) for k, v in rel.items()}
            row["server_latency_ms"] = (
                round(1000 * trace["latency"], 1) if trace["latency"] else None
            )
            row["interrupted"] = trace["interrupted"]
            row["server_speech_end_vs_browser_ms"] = round(
                1000 * (server_to_ctx(trace["marks"]["speech_end"]) - speech_end), 1
            )
            if loud.size and "answer_start" in trace["marks"]:
                # answer_start on the server clock -> heard in the page (audio downlink + jitter
                # buffer + playout; minus the data channel's smallest one-way delay).
                row["downlink_ms"] = round(
                    1000 * (answer_on - server_to_ctx(trace["marks"]["answer_start"])), 1
                )
            h = next(
                (
                    h
                    for h in hearing_by_end
                    if abs(h["speech_end_pts"] - trace["marks"]["speech_end"]) < 0.05
                ),
                None,
            )
            if h is not None:
                row["hearing"] = {
                    "endpoint_ms": round(1000 * (h["endpoint_pts"] - h["speech_end_pts"]), 1),
                    "final_ms": round(1000 * h["latency_s"], 1),
                    "asr_ms": round(h["asr_ms"], 1),
                    "asr_audio_s": round(h["audio_s"], 2),
                    "speculative": h["speculative"],
                    "partials": h["partials"],
                }
        # Video: the mouth's inner box starts changing (first frame) around the audio onset.
        if loud.size and len(f_ctx):
            row.update(_mouth(f_ctx, f_luma, answer_on))
            if "mouth_gap_ms" in row and row["answer_as_planned"]:
                # The clip starts with a little silence: the first word is later than its start.
                row["mouth_vs_clip_start_ms"] = round(row["mouth_gap_ms"] + q.answer_lead_ms, 1)
        turns.append(row)

    lat = [r["browser_latency_ms"] for r in turns if r.get("browser_latency_ms") is not None]
    srv = [r["server_latency_ms"] for r in turns if r.get("server_latency_ms") is not None]
    stages = tuple(s for s in TRACE_STAGES if s != "speech_end")  # relative to speech_end
    stage_median = {}
    step_median = {}
    prev = None
    for s in stages:
        vals = [r["trace"][s] for r in turns if s in r.get("trace", {})]
        stage_median[s] = round(statistics.median(vals), 1) if vals else None
        if prev is not None:
            steps = [
                r["trace"][s] - r["trace"][prev]
                for r in turns
                if s in r.get("trace", {}) and prev in r.get("trace", {})
            ]
            step_median[f"{prev}->{s}"] = round(statistics.median(steps), 1) if steps else None
        else:
            step_median[f"speech_end->{s}"] = stage_median[s]
        prev = s
    hear = [r["hearing"] for r in turns if "hearing" in r]

    def med(key: str, rows: list[dict[str, Any]]) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(vals), 1) if vals else None

    gaps = [r["mouth_gap_ms"] for r in turns if r.get("mouth_gap_ms") is not None]
    vs_clip = [r["mouth_vs_clip_start_ms"] for r in turns if "mouth_vs_clip_start_ms" in r]
    summary = {
        "turns": len(planned),
        "answered": len(lat),
        "browser_latency_ms": {
            "p50": _pct(lat, 50),
            "p95": _pct(lat, 95),
            "max": round(max(lat), 1) if lat else None,
            "min": round(min(lat), 1) if lat else None,
            "mean": round(float(np.mean(lat)), 1) if lat else None,
        },
        "server_latency_ms": {
            "p50": _pct(srv, 50),
            "p95": _pct(srv, 95),
            "max": round(max(srv), 1) if srv else None,
        },
        "goal": {"p50_ms": 900, "p95_ms": 1400},
        "stage_median_ms": stage_median,
        "step_median_ms": step_median,
        "hearing_median_ms": {
            k: round(statistics.median([h[k] for h in hear]), 1) if hear else None
            for k in ("endpoint_ms", "final_ms", "asr_ms")
        },
        "downlink_median_ms": med("downlink_ms", turns),
        "server_speech_end_vs_browser_median_ms": med("server_speech_end_vs_browser_ms", turns),
        "mic_end_vs_file_median_ms": med("mic_end_vs_file_ms", turns),
        "mouth_moved": sum(1 for r in turns if r.get("mouth_moved")),
        "mouth_gap_ms": {
            "median": _pct(gaps, 50),
            "min": _pct(gaps, 0),
            "max": _pct(gaps, 100),
            "measured": len(gaps),
            "vs_clip_start_median": _pct(vs_clip, 50),
            "answer_lead_median": _pct([q.answer_lead_ms for q in planned], 50),
        },
        "transcripts_exact": sum(1 for r in turns if r.get("words") and r["word_errors"] == 0),
        "word_error_rate": round(
            sum(r.get("word_errors", 0) for r in turns)
            / max(1, sum(r.get("words", 0) for r in turns)),
            3,
        ),
        "answers_as_planned": sum(1 for r in turns if r.get("answer_as_planned")),
        "overlaps": sum(1 for r in turns if r.get("overlap")),
        "split_questions": sum(1 for r in turns if r.get("finals", 0) > 1),
        "clock_source": clock_source,
        "video_frames_sampled": len(frames),
        "video_fps_sampled": round((len(frames) - 1) / ((frames[-1, 0] - frames[0, 0]) / 1000.0), 2)
        if len(frames) > 1
        else None,
    }
    return {"summary": summary, "turns": turns}


def _mouth(f_ctx: np.ndarray, luma: np.ndarray, onset: float) -> dict[str, Any]:
    """First presented frame whose inner-mouth luma departs from the frames just before the
    answer (its baseline: 0.8 .. 0.3 s before the audio onset) by more than max(5, 4 sigma)."""
    base = luma[(f_ctx > onset - 0.8) & (f_ctx < onset - 0.3)]
    if len(base) < 5:
        return {}
    ref, sigma = float(np.median(base)), float(np.std(base))
    thr = max(MOUTH_MIN_DELTA, 4 * sigma)
    after = np.flatnonzero((f_ctx >= onset - 0.3) & (f_ctx < onset + 2.0))
    moved = after[np.abs(luma[after] - ref) > thr]
    out: dict[str, Any] = {
        "mouth_threshold": round(thr, 1),
        "mouth_peak_delta": round(float(np.max(np.abs(luma[after] - ref))), 1)
        if after.size
        else None,
    }
    out["mouth_moved"] = bool(moved.size)
    if moved.size:
        out["mouth_gap_ms"] = round(1000 * (f_ctx[moved[0]] - onset), 1)
    return out


# The built-in brain varies how it opens an answer with the turn number ("Sure.", "Here is what
# I know:"); what it answers is the rest.
_LEAD_IN = re.compile(r"^(hi again|hi|sure|here is what i know) ")


def _same(a: str, b: str) -> bool:
    def core(text: str) -> str:
        return _LEAD_IN.sub("", re.sub(r"[^a-z0-9]+", " ", text.lower()).strip())

    return bool(a) and core(a) == core(b)


# ---------------------------------------------------------------------------------- run


def run(turns: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if turns > len(QUESTIONS):
        raise SystemExit(f"--turns: at most {len(QUESTIONS)} different questions are defined")
    print("planning answers (built-in brain + Piper)...", flush=True)
    planned = plan_answers(QUESTIONS[:turns])
    folder = Path(tempfile.mkdtemp(prefix="talkie-turns-"))
    wav, wav_s = build_wav(planned, folder)
    print(f"questions WAV: {wav_s:.0f} s, {len(planned)} questions ({wav})", flush=True)

    machine = wait_for_quiet()
    print(f"load {machine['loadavg_at_start']}", flush=True)
    server = LiveServer(options=ServerOptions(max_sessions=2)).start()
    try:
        box = server.call(lambda: _mouth_box(server.app.state.services.characters), timeout=60)
        with sync_playwright() as pw:
            browser = launch_chromium(pw, fake_audio=wav)
            page = TalkiePage(browser, server.url)
            page.context.add_init_script(PC_HOOK_JS)
            page.open(timeout=30)
            cpu = CpuMeter()
            t_click = time.monotonic()
            page.pick(CHARACTER)
            page.wait_playing(timeout=60, frames=5)
            playing_s = time.monotonic() - t_click
            page.page.wait_for_function(
                INSTRUMENT_JS,
                arg={"worklet": WORKLET_JS, "box": box, "width": 1280},
                timeout=20_000,
            )
            print(f"playing {playing_s:.1f} s after the click; measuring...", flush=True)
            # The WAV started at the click (getUserMedia); wait for it, then for the last trace.
            deadline = t_click + wav_s + 25
            rtc_series: list[list[Any]] = []
            while time.monotonic() < deadline:
                time.sleep(2.0)
                n = page.page.evaluate(
                    "() => (window.talkieEvents || []).filter(e => e.type === 'trace' "
                    "&& e.relative && 'speech_end' in e.relative).length"
                )
                rtc_series.append([round(time.monotonic() - t_click, 1), *_rtc_brief(page)])
                if time.monotonic() > t_click + wav_s and n >= len(planned):
                    break
            time.sleep(1.0)
            cpu_pct = cpu.percent()
            # Chromium's stats first: moving the page's big arrays to Python loads the machine.
            rtc_stats = page.page.evaluate(STATS_JS)
            data = page.page.evaluate(COLLECT_JS)
            events = page.events()
            hearing = server.call(lambda: _hearing_traces(server))
            sessions = [p.stats() for p in server.registry.peers()]
            counters = server.call(lambda: _counters(server))
            page.close()
            browser.close()
    finally:
        server.stop()
    raw = folder / "raw.json"
    raw.write_text(
        json.dumps(
            {
                "planned": [vars(q) for q in planned],
                "data": data,
                "events": events,
                "hearing": hearing,
            }
        )
    )
    print(f"raw page data: {raw}", flush=True)
    result = analyse(planned, data, events, hearing)
    result["run"] = {
        "playing_after_click_s": round(playing_s, 2),
        "wav_s": round(wav_s, 1),
        "cpu_percent": cpu_pct,
        "session": sessions[0] if sessions else None,
        "conversation": counters[0] if counters else None,
        "audio_context": {
            "sampleRate": data["sampleRate"],
            "state": data["state"],
            "error": data["error"],
        },
        "mouth_box": box,
        "webrtc": _rtc_summary(rtc_stats),
        "webrtc_series": rtc_series,  # [s after the click, audio jitter ms, concealed, freezes]
        "git": _git_state(),
    }
    result["machine"] = {
        **machine,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "chromium": CHROMIUM,
    }
    result["planned"] = [vars(q) for q in planned]
    result["events"] = [
        e
        for e in events
        if e.get("type") in ("trace", "transcript", "reply", "interrupted", "error")
    ]
    result["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["definitions"] = (
        "browser latency: last microphone block (128 samples) above -40 dBFS RMS of the "
        "question -> first block of the character's audio above -40 dBFS after it, both "
        "metered in one AudioWorklet on one AudioContext clock; mouth gap: first presented "
        "frame whose inner-mouth mean luma departs from its pre-answer baseline, minus the "
        "audio onset (page time mapped to the AudioContext output clock)."
    )
    return result


def _rtc_brief(page: TalkiePage) -> list[Any]:
    audio = video = {}
    for r in page.page.evaluate(STATS_JS):
        if r["type"] == "inbound-rtp":
            if r.get("kind") == "audio":
                audio = r
            elif r.get("kind") == "video":
                video = r
    return [
        round(1000 * audio.get("jitter", 0.0), 1),
        audio.get("concealedSamples"),
        video.get("freezeCount"),
    ]


def _git_state() -> dict[str, Any]:
    import subprocess

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "-s", "src")),
    }


def _rtc_summary(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Chromium's own view: jitter buffer delays, decode time, freezes, playout delay."""
    out: dict[str, Any] = {}

    def avg_ms(r: dict[str, Any], total: str, count: str) -> float | None:
        n = r.get(count) or 0
        return round(1000 * r[total] / n, 1) if n and total in r else None

    for r in stats:
        kind = r.get("kind", "")
        if r["type"] == "inbound-rtp" and kind == "audio":
            out["audio_in"] = {
                "jitter_buffer_ms": avg_ms(r, "jitterBufferDelay", "jitterBufferEmittedCount"),
                "jitter_buffer_target_ms": avg_ms(
                    r, "jitterBufferTargetDelay", "jitterBufferEmittedCount"
                ),
                "jitter_buffer_minimum_ms": avg_ms(
                    r, "jitterBufferMinimumDelay", "jitterBufferEmittedCount"
                ),
                "concealed_samples": r.get("concealedSamples"),
                "total_samples": r.get("totalSamplesReceived"),
                "packets_lost": r.get("packetsLost"),
                "jitter_ms": round(1000 * r.get("jitter", 0.0), 1),
            }
        elif r["type"] == "inbound-rtp" and kind == "video":
            out["video_in"] = {
                "frames_received": r.get("framesReceived"),
                "frames_decoded": r.get("framesDecoded"),
                "frames_dropped": r.get("framesDropped"),
                "freezes": r.get("freezeCount"),
                "freeze_s": r.get("totalFreezesDuration"),
                "jitter_buffer_ms": avg_ms(r, "jitterBufferDelay", "jitterBufferEmittedCount"),
                "jitter_buffer_target_ms": avg_ms(
                    r, "jitterBufferTargetDelay", "jitterBufferEmittedCount"
                ),
                "decode_ms": avg_ms(r, "totalDecodeTime", "framesDecoded"),
                "processing_ms": avg_ms(r, "totalProcessingDelay", "framesDecoded"),
                "decoder": r.get("decoderImplementation"),
                "packets_lost": r.get("packetsLost"),
                "nacks": r.get("nackCount"),
                "plis": r.get("pliCount"),
            }
        elif r["type"] == "media-playout":
            out["audio_playout_ms"] = avg_ms(r, "totalPlayoutDelay", "totalSamplesCount")
        elif r["type"] == "candidate-pair" and r.get("nominated"):
            out["rtt_ms"] = round(1000 * r.get("currentRoundTripTime", 0.0), 1)
    return out


async def _mouth_box(characters: Any) -> list[int]:
    """The inner-lip box in the 1280x720 output (x, y, w, h), from the character's rig."""
    from talkie.render.framing import frame_rig

    character = await characters.load_async(CHARACTER)
    stage = frame_rig(character.rig, (1280, 720))
    pts = stage.to_output(character.rig.face.points)[:, :2]
    left, right, top, bottom = pts[78], pts[308], pts[13], pts[14]
    pad = 0.12 * (right[0] - left[0])
    x0, x1 = int(left[0] + pad), int(right[0] - pad)
    y0, y1 = int(top[1] - 4), int(bottom[1] + 4)
    return [x0, y0, x1 - x0, y1 - y0]


async def _hearing_traces(server: LiveServer) -> list[dict[str, Any]]:
    out = []
    for peer in server.registry.peers():
        for h in peer.conversation.hearing.traces:
            out.append({**dataclasses.asdict(h), "latency_s": h.latency_s})
    return out


async def _counters(server: LiveServer) -> list[dict[str, Any]]:
    return [
        {"frames_sent": p.conversation.frames_sent, "late_frames": p.conversation.late_frames}
        for p in server.registry.peers()
    ]


# ---------------------------------------------------------------------------------- report


def report(result: dict[str, Any]) -> None:
    s = result["summary"]
    print()
    print(
        f"{'#':>2} {'question':42} {'voice':14} {'browser':>8} {'server':>7} {'down':>6} "
        f"{'mouth':>6}  transcript"
    )
    for r in result["turns"]:

        def f(v: Any) -> str:
            return f"{v:.0f}" if isinstance(v, (int, float)) else "-"

        flag = " OVERLAP" if r.get("overlap") else ""
        flag += " SPLIT" if r.get("finals", 0) > 1 else ""
        flag += "" if r.get("answer_as_planned") else " (answer differs)"
        print(
            f"{r['i']:>2} {r['question'][:42]:42} {r['voice']:14} "
            f"{f(r.get('browser_latency_ms')):>8} {f(r.get('server_latency_ms')):>7} "
            f"{f(r.get('downlink_ms')):>6} {f(r.get('mouth_gap_ms')):>6}  "
            f"{r.get('transcript', r.get('error', ''))!r}{flag}"
        )
    b = s["browser_latency_ms"]
    print()
    print(
        f"browser turn latency (ms): p50 {b['p50']}  p95 {b['p95']}  max {b['max']}  "
        f"min {b['min']}  over {s['answered']}/{s['turns']} turns  "
        f"(goal p50 <= 900, p95 <= 1400)"
    )
    v = s["server_latency_ms"]
    print(
        f"server trace latency speech_end->answer_start (ms): p50 {v['p50']}  p95 {v['p95']}  "
        f"max {v['max']}"
    )
    print(
        "per-stage medians (ms after speech_end): "
        + ", ".join(f"{k} {v}" for k, v in s["stage_median_ms"].items())
    )
    print("per-step medians (ms): " + ", ".join(f"{k} {v}" for k, v in s["step_median_ms"].items()))
    print(
        f"hearing medians (ms): {s['hearing_median_ms']}; audio downlink (server answer_start "
        f"-> heard) median {s['downlink_median_ms']}; server speech_end - browser speech end "
        f"median {s['server_speech_end_vs_browser_median_ms']}"
    )
    m = s["mouth_gap_ms"]
    print(
        f"mouth moved at the answer: {s['mouth_moved']}/{s['answered']}; first changed mouth "
        f"frame - audio onset (ms): median {m['median']} min {m['min']} max {m['max']} "
        f"({m['measured']} turns); video sampled {s['video_fps_sampled']} fps"
    )
    print(
        f"  (the answer clips start with {m['answer_lead_median']} ms of silence: first changed "
        f"mouth frame - clip start median {m['vs_clip_start_median']} ms)"
    )
    print(f"Chromium WebRTC stats: {result['run']['webrtc']}")
    print(
        f"transcripts exact: {s['transcripts_exact']}/{s['turns']}, WER {s['word_error_rate']}; "
        f"answers as planned {s['answers_as_planned']}/{s['turns']}; overlaps {s['overlaps']}; "
        f"split questions {s['split_questions']}"
    )
    run_ = result["run"]
    print(f"CPU % (of one core): {run_['cpu_percent']}; load {result['machine']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--turns", type=int, default=len(QUESTIONS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "turn_latency.json")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is not installed", file=sys.stderr)
        return 2
    result = run(args.turns)
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
