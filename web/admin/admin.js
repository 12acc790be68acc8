// The operations page: polls /v1/admin/ops every 2 s with the admin key (kept in this tab's
// session storage, sent only in the Authorization header) and draws three plots on canvases:
// capacity (sessions live vs. the admission limit), frame pacing (late frames) and response
// time per turn. No chart library: the page must work on a server without internet.

const KEY = "talkie-admin-key";
const POLL_MS = 2000;
const WINDOW_S = 600; // the plots show at most the last ten minutes
const MIN_WINDOW_S = 60;
const COLORS = {
  live: "#6b4de6", talking: "#f08a5d", limit: "#c62f3d", late: "#c77700", turn: "#1f9d61",
  median: "#1d1b26", grid: "#e2deee", ink: "#5f5a70",
};

const $ = (id) => document.getElementById(id);
let timer = null;
let updates = 0;

function showLogin(message = "") {
  clearTimeout(timer);
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("admin-key").focus();
}

async function poll() {
  const key = sessionStorage.getItem(KEY);
  if (!key) return showLogin();
  let data;
  try {
    const r = await fetch("/v1/admin/ops", { headers: { Authorization: `Bearer ${key}` } });
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem(KEY);
      const body = await r.json().catch(() => ({}));
      return showLogin(body?.error?.message || "This key may not see the operations page.");
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    data = await r.json();
  } catch (err) {
    $("updated").textContent = `Cannot reach the server (${err.message}); retrying…`;
    timer = setTimeout(poll, POLL_MS);
    return;
  }
  $("login").hidden = true;
  $("board").hidden = false;
  render(data);
  updates += 1;
  document.body.dataset.updates = String(updates);
  timer = setTimeout(poll, POLL_MS);
}

function pct(x) {
  return x == null ? "–" : `${(100 * x).toFixed(x < 0.1 ? 1 : 0)} %`;
}

function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function render(d) {
  const cap = d.capacity;
  $("f-capacity").textContent = `${cap.live} / ${cap.limit}`;
  const adm = cap.admission;
  $("f-admission").textContent = adm.admitted
    ? `new sessions admitted (cap ${cap.max})`
    : `refusing new sessions: ${adm.reason.replaceAll("_", " ")}`;
  $("f-admission").className = adm.admitted ? "sub" : "sub refused";
  $("f-late").textContent = pct(d.pacing.late_ratio);
  // repeated: shown again because the renderer was behind (on time, at a reduced frame rate)
  const repeated = d.pacing.repeat_ratio == null ? "" : `, ${pct(d.pacing.repeat_ratio)} repeated`;
  $("f-frames").textContent = `${d.pacing.frames} frames judged${repeated}`;
  const latencies = d.turns.map((t) => t.latency).filter((x) => x != null);
  const p50 = quantile(latencies, 0.5);
  const p95 = quantile(latencies, 0.95);
  $("f-latency").textContent = p50 == null ? "–" : `${p50.toFixed(2)} / ${p95.toFixed(2)} s`;
  $("f-turns").textContent = `${latencies.length} recent turns`;
  const c = d.cost;
  const cores = (x) => (x == null ? "?" : x.toFixed(2));
  $("f-cost").textContent = `${cores(c.idle_session_cores)} / ${cores(c.talking_session_cores)}`;
  const last = d.samples[d.samples.length - 1];
  $("f-cpu").textContent = `cores; server alone ${cores(c.server_cores)}; now ${
    last ? last.cpu_cores.toFixed(2) : "?"} of ${c.cores}`;
  renderSessions(d.sessions);
  $("updated").textContent = `Updated ${new Date(d.now * 1000).toLocaleTimeString()}`;

  // From the first sample (a server that just started fills the width) up to ten minutes.
  const t1 = d.now;
  const first = d.samples.length ? d.samples[0].at : t1;
  const t0 = t1 - Math.min(WINDOW_S, Math.max(MIN_WINDOW_S, (t1 - first) * 1.05));
  const at = (s) => s.at;
  const ymaxCap = Math.max(1, cap.max, ...d.samples.map((s) => Math.max(s.live, s.limit))) + 0.5;
  drawChart($("c-capacity"), {
    t0, t1, yMax: ymaxCap, unit: "", integer: true,
    series: [
      { points: d.samples.map((s) => [at(s), s.talking]), color: COLORS.talking, fill: true, step: true },
      { points: d.samples.map((s) => [at(s), s.live]), color: COLORS.live, width: 2.5, step: true },
      { points: d.samples.map((s) => [at(s), s.limit]), color: COLORS.limit, dash: [6, 4], step: true },
    ],
  });
  const late = d.samples.filter((s) => s.late_ratio != null);
  const yMaxLate = niceCeiling(Math.max(0.1, ...late.map((s) => s.late_ratio)) * 1.05);
  drawChart($("c-pacing"), {
    t0, t1, yMax: yMaxLate, unit: "%", scale: 100,
    series: [
      { points: late.map((s) => [at(s), s.late_ratio]), color: COLORS.late, width: 2, fill: true },
      { points: [[t0, 0.05], [t1, 0.05]], color: COLORS.limit, dash: [3, 4] },
    ],
  });
  const turns = d.turns.filter((t) => t.latency != null);
  const yMaxLat = niceCeiling(Math.max(2, ...turns.map((t) => t.latency)) * 1.05);
  drawChart($("c-latency"), {
    t0, t1, yMax: yMaxLat, unit: "s",
    series: [
      { points: turns.map((t) => [t.at, t.latency]), color: COLORS.turn, dots: true },
      ...(p50 == null ? [] : [{ points: [[t0, p50], [t1, p50]], color: COLORS.median, dash: [2, 3] }]),
    ],
  });
}

function renderSessions(sessions) {
  const rows = sessions.map((s) => {
    const tr = document.createElement("tr");
    const total = s.frames + s.late_frames;
    const cells = [
      s.session_id, s.talking ? "in a turn" : "idle", String(s.frames),
      `${s.late_frames} (${total ? ((100 * s.late_frames) / total).toFixed(1) : "0.0"} %)`,
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 4;
    td.className = "none";
    td.textContent = "No live session.";
    tr.append(td);
    rows.push(tr);
  }
  $("sessions").replaceChildren(...rows);
}

function niceCeiling(x) {
  const power = 10 ** Math.floor(Math.log10(x));
  const step = [1, 2, 2.5, 4, 5, 10].find((m) => m * power >= x);
  return step * power;
}

function niceStep(x) {
  const power = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 2.5, 5, 10].find((m) => m * power >= x - 1e-12) * power;
}

function ago(seconds) {
  return seconds >= 120 ? `-${Math.round(seconds / 60)} min` : `-${Math.round(seconds)} s`;
}

function drawChart(canvas, { t0, t1, yMax, unit, series, scale = 1, integer = false }) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 44, right = 8, top = 8, bottom = 22;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (w - left - right);
  const y = (v) => top + (1 - Math.min(v, yMax) / yMax) * (h - top - bottom);
  // grid and axes
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = COLORS.ink;
  g.strokeStyle = COLORS.grid;
  g.lineWidth = 1;
  // round steps (0.5 s, 5 %, one session) so the labels read as plain numbers
  const step = integer ? Math.max(1, Math.ceil(Math.floor(yMax) / 6)) : niceStep(yMax / 5);
  const ticks = Math.floor((integer ? Math.floor(yMax) : yMax) / step + 1e-9);
  for (let i = 0; i <= ticks; i += 1) {
    const v = i * step;
    g.beginPath();
    g.moveTo(left, y(v));
    g.lineTo(w - right, y(v));
    g.stroke();
    const shown = v * scale;
    const label = integer || Number.isInteger(Math.round(shown * 1e6) / 1e6)
      ? String(Math.round(shown)) : String(Number(shown.toFixed(2)));
    g.fillText(`${label}${unit ? ` ${unit}` : ""}`, 2, y(v) + 4);
  }
  for (let i = 0; i <= 5; i += 1) {
    const back = ((t1 - t0) * i) / 5;
    g.fillText(i === 0 ? "now" : ago(back), x(t1 - back) - (i === 0 ? 22 : 16), h - 6);
  }
  // series
  for (const s of series) {
    const pts = s.points.filter(([t]) => t >= t0);
    if (!pts.length) continue;
    g.strokeStyle = s.color;
    g.fillStyle = s.color;
    g.lineWidth = s.width || 1.5;
    g.setLineDash(s.dash || []);
    if (s.dots) {
      for (const [t, v] of pts) {
        g.beginPath();
        g.arc(x(t), y(v), 4.5, 0, 2 * Math.PI);
        g.fill();
      }
      continue;
    }
    g.beginPath();
    pts.forEach(([t, v], i) => {
      if (i === 0) g.moveTo(x(t), y(v));
      else {
        if (s.step) g.lineTo(x(t), y(pts[i - 1][1]));
        g.lineTo(x(t), y(v));
      }
    });
    if (pts.length === 1) g.lineTo(x(t1), y(pts[0][1]));
    g.stroke();
    if (s.fill) {
      const lastT = pts.length === 1 ? t1 : pts[pts.length - 1][0];
      g.lineTo(x(lastT), y(0));
      g.lineTo(x(pts[0][0]), y(0));
      g.closePath();
      g.globalAlpha = 0.18;
      g.fill();
      g.globalAlpha = 1;
    }
  }
  g.setLineDash([]);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("admin-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("admin-key").value = "";
  poll();
});
$("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showLogin();
});
poll();
