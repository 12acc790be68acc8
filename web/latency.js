// Per-turn response time: one row per turn. The headline number is what the user felt: measured
// here in the browser (meter.js) from the end of their speech to the first sound of the answer.
// The bar shows the server's stages (from `trace` events, seconds after the end of the speech
// as the server heard it) in the order they happened, and a marker where the answer was heard.

export const STAGES = [
  ["asr_final", "transcript", "#6b8cff"],
  ["brain_first_token", "first word", "#b07cf0"],
  ["first_clause", "first clause", "#d16fd0"],
  ["tts_first_audio", "voice", "#f08a5d"],
  ["endpoint", "you were done", "#9aa0ff"],
  ["first_frame_sent", "first frame", "#f5b841"],
  ["answer_start", "answer plays", "#1f9d61"],
];
const HEARD = ["heard", "answer heard (browser)", "#111"];

export class LatencyTimeline {
  constructor(container, legend, { maxTurns = 6 } = {}) {
    this.container = container;
    this.maxTurns = maxTurns;
    this.turns = [];
    legend.replaceChildren(...[...STAGES, HEARD].map(([, label, color]) => {
      const li = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "sw";
      swatch.style.background = color;
      li.append(swatch, label);
      return li;
    }));
  }

  /** ``trace``: the server's trace event; ``felt``: seconds measured in the page, or null. */
  add(trace, felt = null) {
    const rel = trace.relative || {};
    if (!Object.keys(rel).length) return;
    this.turns.push({ trace, felt });
    if (this.turns.length > this.maxTurns) this.turns.shift();
    const ends = this.turns.map((t) => Math.max(t.felt || 0, ...Object.values(t.trace.relative || {})));
    const longest = Math.max(1.5, ...ends);
    this.container.replaceChildren(...this.turns.map((t) => row(t.trace, t.felt, longest)));
  }
}

function row(trace, felt, scale) {
  const rel = trace.relative || {};
  const div = document.createElement("div");
  div.className = "turn";
  const label = document.createElement("span");
  label.textContent = `turn ${trace.turn}`;
  const bar = document.createElement("div");
  bar.className = "bar";
  const stages = STAGES.filter(([key]) => typeof rel[key] === "number")
    .sort((a, b) => rel[a[0]] - rel[b[0]]);
  let prev = 0;
  const parts = [];
  for (const [key, name, color] of stages) {
    const t = Math.max(prev, rel[key]);
    const seg = document.createElement("span");
    seg.className = "seg";
    seg.style.left = `${(100 * prev) / scale}%`;
    seg.style.width = `${Math.max(0.6, (100 * (t - prev)) / scale)}%`;
    seg.style.background = color;
    seg.title = `${name}: ${t.toFixed(2)} s (server)`;
    bar.append(seg);
    parts.push(`${name} ${t.toFixed(2)} s`);
    prev = t;
  }
  if (typeof felt === "number") {
    const mark = document.createElement("span");
    mark.className = "heard";
    mark.style.left = `${Math.min(100, (100 * felt) / scale)}%`;
    mark.title = `${HEARD[1]}: ${felt.toFixed(2)} s`;
    bar.append(mark);
    parts.push(`heard in the browser ${felt.toFixed(2)} s`);
  }
  const total = document.createElement("span");
  total.className = "total";
  const server = typeof trace.latency === "number" ? trace.latency : prev;
  total.textContent = `${(typeof felt === "number" ? felt : server).toFixed(2)} s`;
  total.title = typeof felt === "number"
    ? `you waited ${felt.toFixed(2)} s; the server's part was ${server.toFixed(2)} s`
    : `server: ${server.toFixed(2)} s (nothing measured in this browser)`;
  if (typeof felt !== "number") total.classList.add("server-only");
  if (trace.interrupted) total.textContent += " ✂";
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", `Turn ${trace.turn}: ${parts.join(", ")}`);
  div.append(label, bar, total);
  div.dataset.felt = typeof felt === "number" ? felt.toFixed(3) : "";
  div.dataset.server = server.toFixed(3);
  return div;
}
