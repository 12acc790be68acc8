// Per-turn latency timeline: one bar per turn, one segment per stage, from `trace` events.
// Times are seconds after the end of the user's speech (the event's `relative` marks).

export const STAGES = [
  ["endpoint", "end of turn", "#9aa0ff"],
  ["asr_final", "transcript", "#6b8cff"],
  ["brain_first_token", "first word", "#b07cf0"],
  ["first_clause", "first clause", "#d16fd0"],
  ["tts_first_audio", "voice", "#f08a5d"],
  ["first_frame_sent", "first frame", "#f5b841"],
  ["answer_start", "answer plays", "#1f9d61"],
];

export class LatencyTimeline {
  constructor(container, legend, { maxTurns = 6 } = {}) {
    this.container = container;
    this.maxTurns = maxTurns;
    this.turns = [];
    legend.replaceChildren(...STAGES.map(([, label, color]) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "sw";
      swatch.style.background = color;
      li.append(swatch, label);
      return li;
    }));
  }

  add(trace) {
    const rel = trace.relative || {};
    if (!Object.keys(rel).length) return;
    this.turns.push(trace);
    if (this.turns.length > this.maxTurns) this.turns.shift();
    const longest = Math.max(1.5, ...this.turns.map((t) => Math.max(0, ...Object.values(t.relative || {}))));
    this.container.replaceChildren(...this.turns.map((t) => row(t, longest)));
  }
}

function row(trace, scale) {
  const rel = trace.relative || {};
  const div = document.createElement("div");
  div.className = "turn";
  const label = document.createElement("span");
  label.textContent = `turn ${trace.turn}`;
  const bar = document.createElement("div");
  bar.className = "bar";
  let prev = 0;
  const parts = [];
  for (const [key, name, color] of STAGES) {
    if (typeof rel[key] !== "number") continue;
    const t = Math.max(prev, rel[key]);
    const seg = document.createElement("span");
    seg.className = "seg";
    seg.style.left = `${(100 * prev) / scale}%`;
    seg.style.width = `${Math.max(0.6, (100 * (t - prev)) / scale)}%`;
    seg.style.background = color;
    seg.title = `${name}: ${t.toFixed(2)} s`;
    bar.append(seg);
    parts.push(`${name} ${t.toFixed(2)} s`);
    prev = t;
  }
  const total = document.createElement("span");
  total.className = "total";
  const latency = typeof trace.latency === "number" ? trace.latency : prev;
  total.textContent = `${latency.toFixed(2)} s`;
  if (trace.interrupted) total.textContent += " ✂";
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", `Turn ${trace.turn}: ${parts.join(", ")}`);
  div.append(label, bar, total);
  return div;
}
