// One live session with a character, shared by the bundled page (app.js) and the embeddable
// widget (widget-element.js): the /v1 calls, the microphone, and the WebRTC connection.
//
// Signalling: POST /v1/sessions (with a publishable key) gives a short-lived session token and
// the ICE servers to use; the browser waits for ICE gathering to finish (no trickle) and sends
// the complete offer with that token to the session's offer URL; the answer comes back complete.
// Media: the character's video and voice come in, the microphone goes out. The data channel
// "events" carries JSON both ways, with a ping every second: the server takes a few seconds of
// silence from a client that pings as a crash (closed tab, killed browser) and frees the slot.
// What the microphone hears while connecting goes first on that channel (mic-preroll.js).

import { MicPreroll, PREROLL_RATE } from "./mic-preroll.js";

const ICE_GATHER_TIMEOUT_MS = 3000;
const HEARTBEAT_MS = 1000;
// A busy server answers 503 with a place in line; the ticket keeps it when asking again sooner
// than twice the Retry-After, so the page asks again at most this often (seconds).
const QUEUE_RECHECK_MAX_S = 5;
// A started session answers in under a second; past this the user is told it is on its way.
const SLOW_START_MS = 5000;
const RECORDER_START_MS = 1000; // bound on starting the preroll recorder (mic-preroll.js)
// The recording goes on this long after the connection is up: when exactly the microphone's
// stream starts flowing is not known here, and a gap would lose syllables; the server cuts what
// the live audio repeats of it (talkie.transport.preroll).
const PREROLL_OVERLAP_MS = 300;

/** A refused /v1 call: `status` (HTTP), `code` (the server's error code), the server's words. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "", body = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * A /v1 caller: `api(path, {method, json, token, keepalive, raw})`. `base` is the server's
 * address ("" for this origin); `key()` gives the publishable key (may be async). Every call
 * carries a credential: that key, or a session's `token`.
 */
export function makeApi(base, key) {
  return async (path, { method = "GET", json, token, keepalive = false, raw = false, headers: extra = {} } = {}) => {
    const headers = { ...extra, Authorization: `Bearer ${token || (await key())}` };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(base + path, {
        method, headers, keepalive, body: json === undefined ? undefined : JSON.stringify(json),
      });
    } catch (err) {
      // fetch rejects only when nothing came back (server down, blocked, offline).
      throw new ApiError(`the server could not be reached (${err?.message || err})`, { code: "network" });
    }
    if (raw && res.ok) return res;
    const body = await readJson(res);
    if (!res.ok) {
      throw new ApiError(errorMessage(body, res), { status: res.status, code: body?.error?.code || "", body });
    }
    return body;
  };
}

export async function readJson(res) {
  try { return await res.json(); } catch { return null; }
}

export function errorMessage(body, res) {
  return body?.error?.message || `the server answered ${res.status} ${res.statusText}`;
}

/**
 * The microphone, with echo cancellation: `{stream}` or `{stream: null, problem}` where
 * `problem` is "unavailable" (no API here: it needs https or localhost), "denied" or "failed".
 */
export async function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) return { stream: null, problem: "unavailable", detail: "" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    return { stream, problem: "" };
  } catch (err) {
    const denied = err?.name === "NotAllowedError" || err?.name === "SecurityError";
    return { stream: null, problem: denied ? "denied" : "failed", detail: err?.message || err?.name || "" };
  }
}

/**
 * One WebRTC session. `start()` resolves true once the answer is applied (false if `close()`
 * came first) and rejects with an ApiError when the server refuses. Handlers (all optional):
 * `track(track, remoteStream)`, `message(event)` (parsed JSON, pongs dropped), `open()` (data
 * channel), `connection(state)` (the peer connection's state), `closed()` (the data channel
 * closed by the other side), `peer(pc)` (the RTCPeerConnection before the offer: more tracks),
 * `queued({position, message})` (the server is full: the user's place in line, while it waits).
 * With `preroll` (the default) what the microphone hears before the connection is up is recorded
 * and sent once it is (`prerollSeconds` says how much), so words said while connecting are heard.
 */
export class LiveSession {
  constructor({ api, characterId, mic = null, handlers = {}, preroll = true }) {
    this.api = api;
    this.characterId = characterId;
    this.mic = mic;
    this.recording = preroll && mic ? MicPreroll.start(mic) : Promise.resolve(null);
    this.prerollSeconds = null; // sent: how many seconds (null: none promised)
    this.handlers = handlers;
    this.pc = null;
    this.dc = null;
    this.session = null; // {id, token}
    this.remote = new MediaStream();
    this.heartbeat = null;
    this.closed = false;
    // ms after start() at which each step finished: where the time to the first frame goes.
    this.timings = {};
  }

  get id() { return this.session?.id || null; }

  /** POST /v1/sessions; when the server is full, wait in its line (null if closed meanwhile). */
  async createSession() {
    let ticket = null;
    for (;;) {
      try {
        return await this.api("/v1/sessions", {
          method: "POST",
          json: { character_id: this.characterId },
          headers: ticket ? { "Talkie-Queue-Ticket": ticket } : {},
        });
      } catch (err) {
        const queue = err?.body?.error?.queue;
        if (err?.status !== 503 || !queue?.ticket) throw err;
        ticket = queue.ticket;
        this.handlers.queued?.({ position: queue.position, message: err.message });
        const retry = Number(err.body.error.retry_after) || QUEUE_RECHECK_MAX_S;
        await new Promise((done) => { this.wake = done; setTimeout(done, 1000 * Math.min(retry, QUEUE_RECHECK_MAX_S)); });
        if (this.closed) return null;
      }
    }
  }

  get connectionState() { return this.pc ? this.pc.connectionState : "none"; }

  async start() {
    try {
      return await this.connect();
    } catch (err) {
      this.dropRecording(); // refused: nothing will carry what was recorded
      throw err;
    }
  }

  async connect() {
    const t0 = performance.now();
    const mark = (name) => { this.timings[name] = Math.round(performance.now() - t0); };
    const created = await this.createSession();
    if (!created) return false;
    mark("session");
    this.session = { id: created.session.id, token: created.token };
    if (this.closed) { this.deleteSession(); return false; }
    const pc = new RTCPeerConnection({ iceServers: created.ice_servers || [] });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    const track = this.mic?.getAudioTracks()[0];
    if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [this.mic] });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    const dc = pc.createDataChannel("events");
    this.dc = dc;
    pc.ontrack = (e) => {
      this.remote.addTrack(e.track);
      this.handlers.track?.(e.track, this.remote);
    };
    // The recorder starts in a few ms; a browser that takes longer gets no preroll.
    const recorder = await Promise.race([this.recording, sleep(RECORDER_START_MS, null)]);
    if (!recorder) this.dropRecording();
    // Recording stops once the microphone's own stream flows (shortly after the connection).
    let recorded = null;
    const stopRecording = () =>
      (recorded ??= sleep(PREROLL_OVERLAP_MS).then(() => recorder.stop()));
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected" && recorder) stopRecording();
    });
    dc.onopen = async () => {
      if (recorder) {
        const pcm = await stopRecording();
        if (dc.readyState !== "open") return;
        MicPreroll.send(dc, pcm);
        this.prerollSeconds = pcm.length / PREROLL_RATE;
        mark("preroll_sent");
      }
      const ping = () => this.send({ type: "ping", t: performance.now() });
      ping();
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(ping, HEARTBEAT_MS);
      this.handlers.open?.();
    };
    dc.onmessage = (e) => {
      let ev;
      try { ev = JSON.parse(e.data); } catch { return; }
      if (ev.type !== "pong") this.handlers.message?.(ev); // heartbeat answers: nothing to show
    };
    dc.onclose = () => this.handlers.closed?.();
    pc.onconnectionstatechange = () => this.handlers.connection?.(pc.connectionState);
    this.handlers.peer?.(pc);

    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc);
    mark("ice_gathered");
    if (this.closed) return false;
    // A session that needs a fresh worker (more visitors at once than the server keeps ready)
    // takes 20-40 s on 2 cores: say so instead of a bare "Connecting…".
    const slow = setTimeout(() => this.handlers.slow?.(), SLOW_START_MS);
    let body;
    try {
      body = await this.api(created.offer_url, {
        method: "POST", token: this.session.token,
        json: { sdp: pc.localDescription.sdp, type: pc.localDescription.type, preroll: Boolean(recorder) },
      });
    } finally {
      clearTimeout(slow);
    }
    if (this.closed) return false;
    mark("answer");
    await pc.setRemoteDescription({ type: body.type, sdp: body.sdp });
    return true;
  }

  /** Send a JSON event on the data channel; false when it is not open. */
  send(event) {
    if (!this.dc || this.dc.readyState !== "open") return false;
    this.dc.send(JSON.stringify(event));
    return true;
  }

  /** Hang up: close the connection and end the session on the server (idempotent). */
  close() {
    this.closed = true;
    this.handlers = {};
    this.wake?.(); // stop waiting in the server's line
    this.dropRecording();
    clearInterval(this.heartbeat);
    if (this.dc) { this.dc.onclose = null; this.dc.onmessage = null; try { this.dc.close(); } catch { /* closed */ } }
    if (this.pc) { this.pc.onconnectionstatechange = null; this.pc.ontrack = null; try { this.pc.close(); } catch { /* closed */ } }
    this.deleteSession();
    this.dc = null;
    this.pc = null;
  }

  dropRecording() {
    this.recording.then((recorder) => recorder?.close());
  }

  deleteSession() {
    const session = this.session;
    if (!session) return;
    this.session = null;
    // keepalive: the request outlives a page that is being closed.
    this.api(`/v1/sessions/${encodeURIComponent(session.id)}`, { method: "DELETE", token: session.token, keepalive: true })
      .catch(() => {});
  }
}

function sleep(ms, value) {
  return new Promise((done) => setTimeout(() => done(value), ms));
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ICE_GATHER_TIMEOUT_MS); // use what we have by then
    function finish() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === "complete") finish(); }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
