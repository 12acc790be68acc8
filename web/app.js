// Talkie web client: pick a character, connect over WebRTC, talk.
//
// The page talks to the /v1 API with its publishable key (from /api/config; it only works from
// this origin). The connection itself (signalling, media, data channel, heartbeat) is
// live-session.js, which the embeddable widget uses too.
//
// For tests and tinkering: window.talkieEvents holds every event received from the server, and
// window.talkie exposes the current state and a few actions.
//
// Characters whose photo shows no usable face (a drawing, an animal) come back from the upload
// with status "needs_rig": the point editor (rig-editor.js) opens to place their face points.
//
// Tools: when the character calls a UI tool, the server sends {type: "tool_call", id, name,
// arguments}; the page runs the handler registered for that name (window.talkie.registerTool),
// else a built-in one (open_url, show_card, highlight), and always answers {type: "tool_result",
// id, ok, result}. The character hears the result and can talk about it.

import { Captions } from "./captions.js";
import { EmbedPanel } from "./embed-panel.js";
import { LatencyTimeline } from "./latency.js";
import { LiveSession, makeApi, openMicrophone, readJson, errorMessage } from "./live-session.js";
import { VoiceMeter } from "./meter.js";
import { RigEditor } from "./rig-editor.js";
import { UiTools } from "./tools.js";
import { VoicePanel } from "./voices.js";
import { Eyes } from "./vision.js";

const MAX_RECONNECTS = 3;
const LEAVE_LINE = "Leave the line";

const $ = (id) => document.getElementById(id);
const el = {
  cards: $("characters"),
  uploadForm: $("upload"),
  uploadFile: $("upload-file"),
  uploadName: $("upload-name"),
  uploadButton: $("upload-button"),
  uploadProgress: $("upload-progress"),
  uploadStatus: $("upload-status"),
  video: $("video"),
  overlay: $("overlay"),
  overlayText: $("overlay-text"),
  overlayButton: $("overlay-button"),
  state: $("state"),
  handsFree: $("hands-free"),
  ptt: $("ptt"),
  interrupt: $("interrupt"),
  hangup: $("hangup"),
  sayForm: $("say"),
  sayText: $("say-text"),
  sayButton: $("say-button"),
  note: $("note"),
  captions: $("captions"),
  timeline: $("timeline"),
  legend: document.querySelector(".legend"),
  camera: $("camera"),
  shareScreen: $("share-screen"),
  cameraBadge: $("camera-badge"),
  screenBadge: $("screen-badge"),
  selfView: $("self-view"),
};

const events = [];
window.talkieEvents = events;

const app = {
  characters: [],
  character: null, // the picked character {id, name, preview}
  live: null, // the LiveSession (live-session.js) while connecting or connected
  config: null, // /api/config: the page's publishable key, upload limit (ICE servers: per session)
  micStream: null,
  micDenied: false,
  wantConnected: false,
  reconnects: 0,
  connectSeq: 0, // bumps on every connect/hangup so stale async steps give up
  pttDown: false,
  convState: "offline",
  recoverTimer: null,
  endMessage: null, // set when the server ends the session on its own (idle, maximum length)
};

const captions = new Captions(el.captions, { characterName: () => app.character?.name || "Character" });
const timeline = new LatencyTimeline(el.timeline, el.legend);
// What the user felt, per turn: the first answer heard after their words (meter.js). A reply
// event names its turn, so an answer that starts is attributed to the latest one.
const felt = new Map();
let replyTurn = null;
const meter = new VoiceMeter({
  onAnswer: (m) => {
    if (replyTurn === null) return;
    m.turn = replyTurn;
    if (!felt.has(replyTurn)) felt.set(replyTurn, []);
    felt.get(replyTurn).push(m);
  },
});
function feltFor(turn) {
  const first = (felt.get(turn) || []).find((m) => !m.overlapped);
  return first ? first.felt : null;
}
const tools = new UiTools({ stage: el.video.parentElement });
const eyes = new Eyes({
  cameraButton: el.camera, screenButton: el.shareScreen, cameraBadge: el.cameraBadge,
  screenBadge: el.screenBadge, preview: el.selfView, send: (ev) => send(ev), note: (t) => showNote(t),
});
const rigEditor = new RigEditor({
  root: $("rig-editor"),
  api: (path, opts) => api(path, opts),
  onSaved: (character) => {
    replaceCharacter(character);
    setUploadStatus(`${character.name} is ready.`, "ok");
    pick(character);
  },
  onClose: () => setUploadStatus(""),
});

const embedPanel = new EmbedPanel({ root: $("embed"), api: (path, opts) => api(path, opts) });

const voicePanel = new VoicePanel({
  root: $("voices"),
  api: (path, opts) => api(path, opts),
  onChosen: (character) => {
    replaceCharacter(character);
    pick(character); // a new session: the voice is chosen when the session starts
  },
});

window.talkie = {
  get state() { return app.convState; },
  get sessionId() { return app.live?.id || null; },
  get connection() { return app.live ? app.live.connectionState : "none"; },
  get character() { return app.character; },
  get micStream() { return app.micStream; },
  // Browser-measured response times: {turn, felt (s), from: "voice"|"typed", overlapped}.
  get latencies() { return meter.measured.map((m) => ({ ...m })); },
  pick: (id) => pickById(id),
  send: (event) => send(event),
  hangup: () => hangup(),
  // registerTool("show_product", async (args) => ({ shown: args.sku })): the handler for a UI
  // tool the character may call (wins over a built-in of the same name). Return any JSON value
  // for the character to read; throw an Error to report a failure. Returns an unregister
  // function.
  registerTool: (name, handler) => tools.register(name, handler),
  get rigEditor() { return rigEditor.state; },
  get voices() { return voicePanel.state; },
  openRigEditor: (id) => rigEditor.open(app.characters.find((c) => c.id === id)),
  runTool: (name, args) => tools.run(name, args), // what a tool_call from the server runs
};

// ---------------------------------------------------------------- characters and uploads

async function serverConfig() {
  if (app.config) return app.config;
  const res = await fetch("/api/config");
  const body = await readJson(res);
  if (!res.ok || !body) throw new Error(errorMessage(body, res));
  app.config = body;
  el.cards.querySelector(".upload-slot").hidden = !body.uploads;
  return body;
}

// Every /v1 call carries a credential: the page's publishable key, or a session's token.
const api = makeApi("", async () => (await serverConfig()).api_key);

async function previewUrl(c) {
  // <img> cannot send an Authorization header: fetch the preview and show it as a blob.
  // The version in the query: a character whose points were just placed gets its new picture.
  const url = `${c.preview_url}?v=${encodeURIComponent(c.updated_at || "")}`;
  const res = await fetch(url, { headers: { Authorization: `Bearer ${(await serverConfig()).api_key}` } });
  if (!res.ok) return "";
  return URL.createObjectURL(await res.blob());
}

async function loadCharacters() {
  try {
    const body = await api("/v1/characters?limit=100");
    app.characters = body.characters || [];
  } catch (err) {
    setUploadStatus(`Could not load the characters: ${err.message}`, "error");
    app.characters = [];
  }
  renderCards();
  el.cards.setAttribute("aria-busy", "false");
}

function renderCards() {
  el.cards.querySelectorAll("li.character").forEach((li) => li.remove());
  const uploadSlot = el.cards.querySelector(".upload-slot");
  for (const c of app.characters) {
    const li = document.createElement("li");
    li.className = "card-slot character";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "card";
    button.dataset.characterId = c.id;
    button.setAttribute("aria-pressed", String(app.character?.id === c.id));
    button.setAttribute("aria-label", `Talk to ${c.name}`);
    const img = document.createElement("img");
    previewUrl(c).then((url) => { if (url) img.src = url; });
    img.alt = "";
    img.loading = "lazy";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name;
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = c.sample ? "Sample" : c.status === "needs_rig" ? "Needs its face points" : "Your upload";
    button.append(img, name, kind);
    button.addEventListener("click", () => (c.status === "needs_rig" ? editPoints(c) : pick(c)));
    li.append(button);
    el.cards.insertBefore(li, uploadSlot);
  }
}

function markPicked() {
  el.cards.querySelectorAll("button.card").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.characterId === app.character?.id));
  });
}

function setUploadStatus(text, kind = "") {
  el.uploadStatus.textContent = text;
  el.uploadStatus.className = `status ${kind}`;
}

el.uploadFile.addEventListener("change", () => {
  const file = el.uploadFile.files[0];
  $("upload-chosen").textContent = file ? file.name : "";
  if (file) setUploadStatus("");
});

el.uploadForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const file = el.uploadFile.files[0];
  if (!file) {
    setUploadStatus("Choose a photo first (JPEG, PNG or WebP).", "error");
    el.uploadFile.focus();
    return;
  }
  if (!/^image\/(jpeg|png|webp)$/.test(file.type)) {
    setUploadStatus(`${file.name} is not a JPEG, PNG or WebP image.`, "error");
    return;
  }
  upload(file, el.uploadName.value.trim());
});

function upload(file, name) {
  const form = new FormData();
  form.append("image", file);
  if (name) form.append("name", name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/characters");
  xhr.setRequestHeader("Authorization", `Bearer ${app.config.api_key}`);
  xhr.responseType = "text";
  el.uploadButton.disabled = true;
  el.uploadProgress.hidden = false;
  el.uploadProgress.value = 0;
  setUploadStatus("Uploading…");
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    const pct = Math.round((100 * e.loaded) / e.total);
    el.uploadProgress.value = pct;
    el.uploadProgress.textContent = `${pct}%`;
    setUploadStatus(pct < 100 ? `Uploading… ${pct}%` : "Finding the face and rigging it… (a few seconds)");
  };
  const done = () => {
    el.uploadButton.disabled = false;
    el.uploadProgress.hidden = true;
  };
  xhr.onerror = () => {
    done();
    setUploadStatus("The upload failed: the server could not be reached.", "error");
  };
  xhr.onload = () => {
    done();
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status >= 200 && xhr.status < 300 && body) {
      el.uploadForm.reset();
      $("upload-chosen").textContent = "";
      replaceCharacter(body);
      if (body.status === "needs_rig") {
        setUploadStatus(`${body.name} needs its face points: place them below.`, "warn");
        editPoints(body);
        return;
      }
      setUploadStatus(`${body.name} is ready.`, "ok");
      pick(body);
    } else {
      const msg = body?.error?.message || `the server answered ${xhr.status}`;
      setUploadStatus(`That photo did not work: ${msg}`, "error");
    }
  };
  xhr.send(form);
}

function replaceCharacter(character) {
  const at = app.characters.findIndex((c) => c.id === character.id);
  if (at >= 0) app.characters[at] = character;
  else app.characters.push(character);
  renderCards();
}

function editPoints(character) {
  rigEditor.open(character).catch((err) => setUploadStatus(`The point editor failed: ${err.message}`, "error"));
  $("rig-editor").scrollIntoView({ block: "start" });
}

function pickById(id) {
  const c = app.characters.find((x) => x.id === id);
  if (!c) throw new Error(`no character ${id}`);
  return pick(c);
}

async function pick(character) {
  app.character = character;
  voicePanel.setCharacter(character);
  embedPanel.setCharacter(character);
  app.reconnects = 0;
  markPicked();
  el.video.poster = character.preview;
  captions.clear();
  tools.clear();
  await connect();
}

// ---------------------------------------------------------------- connection

async function getMicrophone() {
  if (app.micStream || app.micDenied) return app.micStream;
  const { stream, problem, detail } = await openMicrophone();
  if (!stream) {
    app.micDenied = true;
    showNote(problem === "unavailable"
      ? "This browser gives no microphone access here (it needs https or localhost). You can type instead."
      : `Microphone ${problem === "denied" ? "access was denied" : detail || "unavailable"}: you can still watch and type your messages.`);
  }
  app.micStream = stream;
  return stream;
}

async function connect() {
  const seq = ++app.connectSeq;
  closePeer();
  app.wantConnected = true;
  app.endMessage = null;
  const character = app.character;
  setState("connecting");
  showOverlay(`Connecting to ${character.name}…`);
  const mic = await getMicrophone();
  if (seq !== app.connectSeq) return;

  const live = new LiveSession({
    api, characterId: character.id, mic,
    handlers: {
      track: (track, remote) => {
        if (el.video.srcObject !== remote) el.video.srcObject = remote;
        if (track.kind === "audio") meter.start(mic, remote).catch(() => { /* no Web Audio: no meter */ });
      },
      peer: (pc) => eyes.attach(pc), // the camera and screen m-lines, off until switched on
      open: () => {
        send({ type: "mode", hands_free: el.handsFree.checked });
        eyes.announce();
        setEnabled(true);
      },
      message: onServerMessage,
      closed: () => lost("The connection closed."),
      connection: (s) => connectionChanged(live, s),
      slow: () => {
        if (seq === app.connectSeq) showOverlay(`Getting ${character.name} ready… this takes up to half a minute when several people arrive at once.`);
      },
      queued: ({ position }) => {
        if (seq !== app.connectSeq) return;
        const ahead = position - 1;
        showOverlay(`${character.name} is talking with others right now. You are number ${position} in line`
          + (ahead ? ` (${ahead} ${ahead === 1 ? "person" : "people"} ahead of you)` : "") + "…",
          { button: LEAVE_LINE });
      },
    },
  });
  app.live = live;
  if (mic) applyMicGate();
  try {
    if (!(await live.start())) return;
  } catch (err) {
    if (seq !== app.connectSeq) return;
    closePeer();
    setState("offline");
    // 503 = busy or not ready: the user can retry; a 4xx is not going to fix itself.
    showOverlay(`Could not connect: ${err.message}`, { error: true, button: "Try again" });
    return;
  }
  el.hangup.disabled = false;
  playVideo(seq);
}

function connectionChanged(live, s) {
  if (s === "connected") {
    app.reconnects = 0;
    clearTimeout(app.recoverTimer);
  } else if (s === "disconnected") {
    showOverlay("The connection is unstable… trying to recover.");
    clearTimeout(app.recoverTimer);
    app.recoverTimer = setTimeout(() => {
      if (app.live === live && live.connectionState !== "connected") lost("The connection was lost.");
    }, 5000);
  } else if (s === "failed") {
    lost("The connection failed.");
  }
}

function playVideo(seq) {
  const onPlaying = () => {
    if (seq === app.connectSeq) hideOverlay();
  };
  el.video.addEventListener("playing", onPlaying, { once: true });
  el.video.play().catch(() => {
    // Autoplay with sound needs a click on some browsers: ask for one.
    if (seq === app.connectSeq) showOverlay(`${app.character.name} is ready.`, { button: "Start" });
  });
}

function lost(why) {
  if (app.endMessage) { ended(); return; }
  if (!app.wantConnected) return;
  closePeer();
  setState("offline");
  if (app.reconnects < MAX_RECONNECTS) {
    app.reconnects += 1;
    const delay = 1000 * app.reconnects;
    showOverlay(`${why} Reconnecting (${app.reconnects}/${MAX_RECONNECTS})…`, { error: true });
    const seq = ++app.connectSeq;
    setTimeout(() => { if (seq === app.connectSeq && app.wantConnected) connect(); }, delay);
  } else {
    showOverlay(`${why} Check that the Talkie server is running.`, { error: true, button: "Reconnect" });
  }
}

// The server ended the session on its own, after a goodbye: no reconnecting, say why.
function ended() {
  const why = app.endMessage;
  app.endMessage = null;
  eyes.stopAll();
  app.connectSeq += 1;
  closePeer();
  el.video.srcObject = null;
  setState("offline");
  const again = app.character ? ` Pick ${app.character.name} again to talk some more.` : "";
  showOverlay(`${why}${again}`, { button: "Talk again" });
}

function closePeer() {
  clearTimeout(app.recoverTimer);
  meter.stop();
  setEnabled(false);
  app.live?.close(); // ends the session on the server too
  app.live = null;
  eyes.detach();
  el.hangup.disabled = true;
}

function hangup(message = "") {
  app.wantConnected = false;
  eyes.stopAll(); // hanging up turns the camera and screen share off
  app.connectSeq += 1;
  closePeer();
  el.video.srcObject = null;
  setState("offline");
  showOverlay(message || (app.character ? `You hung up. Pick ${app.character.name} again to reconnect.` : "Pick a character to start talking."));
}

el.overlayButton.addEventListener("click", () => {
  if (el.overlayButton.textContent === LEAVE_LINE) {
    hangup(`You left the line. Pick ${app.character.name} again to queue again.`);
  } else if (app.live && el.overlayButton.textContent === "Start") {
    el.video.play().then(hideOverlay).catch(() => {});
  } else if (app.character) {
    app.reconnects = 0;
    connect();
  }
});
el.hangup.addEventListener("click", () => hangup());
window.addEventListener("pagehide", () => app.live?.deleteSession());

// ---------------------------------------------------------------- events from the server

function onServerMessage(ev) {
  ev.received_at = performance.now();
  events.push(ev);
  if (events.length > 5000) events.splice(0, 1000);
  switch (ev.type) {
    case "state": setState(ev.state); break;
    case "transcript": captions.transcript(ev); break;
    case "reply": captions.reply(ev); if (typeof ev.turn === "number") replyTurn = ev.turn; break;
    case "backchannel": captions.backchannel(ev.text); break;
    case "trace": timeline.add(ev, feltFor(ev.turn)); break;
    case "error": captions.error(ev.message || "Something went wrong."); break;
    case "interrupted": captions.interrupted(); break;
    case "vision": eyes.observed(ev); break;
    case "session_end":
      // The goodbye is still playing: hang up when the server closes the line, not before.
      app.wantConnected = false;
      app.endMessage = ev.message || "The session has ended.";
      break;
    case "tool_call":
      // Always answered (ok: false when no handler or it failed): the character waits for it.
      tools.run(ev.name, ev.arguments).then((reply) => send({ type: "tool_result", id: ev.id, ...reply }));
      break;
    default: break;
  }
}

function setState(state) {
  app.convState = state;
  el.state.dataset.state = state;
  el.state.textContent = state;
  el.interrupt.hidden = state !== "speaking";
}

// ---------------------------------------------------------------- talking

function send(event) {
  return app.live ? app.live.send(event) : false;
}

function applyMicGate() {
  // Hands-free: the microphone always streams. Otherwise only while talk is held (privacy).
  const track = app.micStream?.getAudioTracks()[0];
  if (track) track.enabled = el.handsFree.checked || app.pttDown;
}

function setPtt(down) {
  if (down === app.pttDown) return;
  app.pttDown = down;
  el.ptt.setAttribute("aria-pressed", String(down));
  el.ptt.textContent = down ? "Listening… release to send" : "Hold to talk";
  applyMicGate();
  send({ type: "ptt", down });
}

el.ptt.addEventListener("pointerdown", (e) => {
  if (el.ptt.disabled) return;
  el.ptt.setPointerCapture?.(e.pointerId);
  setPtt(true);
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  el.ptt.addEventListener(type, () => setPtt(false));
}
el.ptt.addEventListener("keydown", (e) => {
  if ((e.key === "Enter" || e.key === " ") && !e.repeat) { e.preventDefault(); setPtt(true); }
});
el.ptt.addEventListener("keyup", (e) => {
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); setPtt(false); }
});

function typingTarget(t) {
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT", "BUTTON"].includes(t.tagName));
}
document.addEventListener("keydown", (e) => {
  if (e.code !== "Space" || e.repeat || typingTarget(e.target) || !app.live) return;
  e.preventDefault();
  setPtt(true);
});
document.addEventListener("keyup", (e) => {
  if (e.code !== "Space" || !app.pttDown || e.target === el.ptt) return;
  e.preventDefault();
  setPtt(false);
});
window.addEventListener("blur", () => setPtt(false));

el.handsFree.addEventListener("change", () => {
  applyMicGate();
  send({ type: "mode", hands_free: el.handsFree.checked });
});
el.interrupt.addEventListener("click", () => send({ type: "interrupt" }));

el.sayForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = el.sayText.value.trim();
  if (!text) return;
  if (send({ type: "text", text })) {
    meter.typed();
    captions.typed(text);
    el.sayText.value = "";
  }
});

function setEnabled(on) {
  el.sayText.disabled = !on;
  el.sayButton.disabled = !on;
  el.ptt.disabled = !on || !app.micStream;
  el.interrupt.disabled = !on;
  eyes.enable(on);
}

// ---------------------------------------------------------------- helpers

function showOverlay(text, { error = false, button = "" } = {}) {
  el.overlayText.textContent = text;
  el.overlay.classList.remove("hidden");
  el.overlay.classList.toggle("error", error);
  el.overlayButton.hidden = !button;
  el.overlayButton.textContent = button || "Reconnect";
}

function hideOverlay() {
  el.overlay.classList.add("hidden");
  el.overlayButton.hidden = true;
}

function showNote(text) {
  el.note.textContent = text;
  el.note.hidden = !text;
}

setEnabled(false);
loadCharacters();
voicePanel.load().catch((err) => voicePanel.status(`Could not load the voices: ${err.message}`, "error"));
