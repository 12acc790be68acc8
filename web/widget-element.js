// <talkie-character>: a live character on any web page (widget.js loads this module).
//
//   <talkie-character character="ID" key="pk_..."></talkie-character>       inline, fills its width
//   <talkie-character launcher character="ID" key="pk_..."></talkie-character>  a bubble in the corner
//
// Everything lives in a shadow root: the host page's CSS cannot restyle it (except through the
// --talkie-* custom properties and ::part()) and its CSS never reaches the page; the module adds
// no globals. It uses only publishable keys: a secret key (tk_...) is refused before it is sent.
//
// API: start(), end(), mute(on?), say(text), registerTool(name, fn); properties state,
// sessionId, muted, labels; events (CustomEvent, `detail`): state, transcript, reply,
// toolcall, error ({code, message}), latency ({turn, felt, server, stages}), live ({firstFrameMs}),
// ended ({reason}).

import { Captions } from "./captions.js";
import { LiveSession, makeApi, openMicrophone } from "./live-session.js";
import { VoiceMeter } from "./meter.js";
import { UiTools } from "./tools.js";
import { WIDGET_CSS } from "./widget-style.js";

// The words the widget shows; `labels` (attribute JSON or property) replaces any of them, e.g.
// for another language. {name}, {origin}, {server}, {character}, {detail} are filled in.
export const LABELS = {
  open: "Talk to {name}",
  close: "Close",
  start: "Start talking",
  end: "End",
  mute: "Mute",
  unmute: "Unmute",
  send: "Send",
  typeMessage: "Type a message",
  placeholder: "Type a message…",
  captions: "Conversation with {name}",
  video: "{name}, live",
  controls: "Call controls",
  ready: "Talk to {name}: start, then just speak.",
  connecting: "Connecting to {name}…",
  slow: "Getting {name} ready… this takes up to half a minute when several people arrive at once.",
  tapToPlay: "{name} is ready.",
  play: "Play",
  ended: "The conversation has ended.",
  again: "Talk again",
  retry: "Try again",
  lost: "The connection was lost.",
  you: "You",
  problem: "Problem",
  empty: "What you say and what {name} answers appears here.",
  offline: "offline", listening: "listening", thinking: "thinking", speaking: "speaking",
  micDenied: "Microphone access was denied: you can still type your messages.",
  micUnavailable: "No microphone here (it needs https): you can still type your messages.",
  micFailed: "The microphone could not be opened ({detail}): you can still type.",
  invalidKey: "This site's Talkie key is not valid (it may have been revoked).",
  originNotAllowed: "This Talkie key is not allowed on this website ({origin}).",
  secretKey: "This page holds a secret Talkie key: only publishable keys (pk_…) belong in a web page. It was not sent.",
  notFound: "The character \u201c{character}\u201d was not found for this key.",
  busy: "{name} is busy right now. Try again in a moment.",
  queued: "{name} is talking with others right now. You are number {position} in line…",
  leaveLine: "Leave the line",
  network: "Could not reach the Talkie server ({server}).",
  config: "The widget needs a character and a publishable key (character=\u2026 key=\u2026).",
  failed: "Could not connect: {detail}",
};

const ERROR_LABELS = {
  invalid_key: "invalidKey", revoked_key: "invalidKey", unauthorized: "invalidKey",
  origin_not_allowed: "originNotAllowed", unknown_character: "notFound", not_found: "notFound", busy: "busy", network: "network",
};

const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));

export class TalkieCharacter extends HTMLElement {
  static observedAttributes = ["labels", "open"];

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    this.customLabels = {};
    this.info = null; // the character: {id, name, preview_url, ...}
    this.live = null;
    this.mic = null;
    this.micProblem = "";
    this.isMuted = false;
    this.convState = "offline";
    this.connectSeq = 0;
    this.calling = false;
    this.startedAt = 0;
    this.meter = new VoiceMeter({ onAnswer: (m) => { if (this.replyTurn !== null) this.felt.set(this.replyTurn, m.felt); } });
    this.felt = new Map();
    this.replyTurn = null;
    this.build();
  }

  // -------------------------------------------------------------- public API

  get state() { return this.convState; }
  get sessionId() { return this.live?.id || null; }
  get muted() { return this.isMuted; }
  get character() { return this.info ? { id: this.info.id, name: this.info.name } : null; }
  get labels() { return { ...LABELS, ...this.customLabels }; }
  set labels(value) {
    this.customLabels = value && typeof value === "object" ? { ...value } : {};
    this.relabel();
  }

  /** Connect (asks for the microphone). Resolves true once the call is set up. */
  async start() {
    const seq = ++this.connectSeq;
    this.startedAt = performance.now(); // the first frame's wait counts from here
    this.closeLive();
    this.calling = true; // from now until end() or a failure: the call button hangs up
    this.setOpen(true);
    this.setState("connecting");
    const problem = this.configProblem();
    if (problem) return this.fail(problem.code, problem.message);
    this.showOverlay(this.t("connecting"));
    this.setCallButton();
    try {
      await this.loadCharacter();
    } catch (err) {
      return seq === this.connectSeq ? this.failFromApi(err) : false;
    }
    this.relabel(); // its name, now that it is known (attributes may have come after connecting)
    if (!this.mic && !this.micProblem) {
      const { stream, problem: micProblem, detail } = await openMicrophone();
      this.mic = stream;
      this.micProblem = micProblem;
      if (micProblem) {
        const key = { denied: "micDenied", unavailable: "micUnavailable" }[micProblem] || "micFailed";
        this.note(this.t(key, { detail }));
        this.emit("error", { code: `microphone_${micProblem}`, message: this.t(key, { detail }), fatal: false });
      }
    }
    if (seq !== this.connectSeq) return false;
    this.applyMute();
    const live = new LiveSession({
      api: this.api, characterId: this.info.id, mic: this.mic,
      handlers: {
        track: (track, remote) => {
          if (this.el.video.srcObject !== remote) this.el.video.srcObject = remote;
          if (track.kind === "audio") this.meter.start(this.mic, remote).catch(() => { /* no Web Audio */ });
        },
        open: () => { live.send({ type: "mode", hands_free: true }); this.setEnabled(true); },
        message: (ev) => this.onServerMessage(ev),
        closed: () => this.lost(),
        connection: (s) => { if (s === "failed") this.lost(); },
        slow: () => { if (seq === this.connectSeq) this.showOverlay(this.t("slow")); },
        queued: ({ position }) => {
          if (seq !== this.connectSeq) return;
          this.showOverlay(this.t("queued", { position }), { button: this.t("leaveLine"), action: "leave" });
          this.emit("queued", { position });
        },
      },
    });
    this.live = live;
    try {
      if (!(await live.start())) return false;
    } catch (err) {
      return seq === this.connectSeq ? this.failFromApi(err) : false;
    }
    this.playVideo(seq);
    return true;
  }

  /** Hang up (the session ends on the server too). */
  end(reason = "ended by the user") {
    this.connectSeq += 1;
    const wasLive = Boolean(this.live);
    this.closeLive();
    this.el.video.srcObject = null;
    this.setState("offline");
    this.showOverlay(this.t("ended"), { button: this.t("again") });
    if (wasLive) this.emit("ended", { reason });
  }

  /** Mute or unmute the microphone (toggles without an argument); returns the new state. */
  mute(on = !this.isMuted) {
    this.isMuted = Boolean(on);
    this.applyMute();
    return this.isMuted;
  }

  /** Send a typed message; false when not connected. */
  say(text) {
    const message = String(text ?? "").trim().slice(0, 500);
    if (!message || !this.live?.send({ type: "text", text: message })) return false;
    this.meter.typed();
    this.captions.typed(message);
    return true;
  }

  /** `registerTool(name, async (args) => result)`: a UI tool the character may call here (wins
   * over a built-in: open_url, show_card, highlight). Returns a function that unregisters it. */
  registerTool(name, handler) { return this.tools.register(name, handler); }

  // -------------------------------------------------------------- element lifecycle

  connectedCallback() {
    // A closed tab ends its session at once (keepalive request), not after the heartbeat.
    this.onPageHide ||= () => this.live?.deleteSession();
    window.addEventListener("pagehide", this.onPageHide);
    if (this.hasAttribute("launcher")) this.el.panel.setAttribute("role", "dialog");
    this.relabel();
    this.loadCharacter().then(() => this.relabel(), () => { /* reported on start() */ });
    if (this.hasAttribute("autostart")) this.start();
  }

  disconnectedCallback() {
    window.removeEventListener("pagehide", this.onPageHide);
    this.connectSeq += 1;
    this.closeLive();
  }

  attributeChangedCallback(name, _old, value) {
    if (name === "labels") {
      try { this.customLabels = value ? JSON.parse(value) : {}; } catch { this.customLabels = {}; }
      this.relabel();
    } else if (name === "open") {
      this.el.bubble.setAttribute("aria-expanded", String(value !== null));
    }
  }

  // -------------------------------------------------------------- building the shadow tree

  build() {
    const style = document.createElement("style");
    style.textContent = WIDGET_CSS;
    const h = (tag, attrs = {}, ...children) => {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      node.append(...children);
      return node;
    };
    const el = {};
    el.bubble = h("button", { type: "button", class: "bubble", part: "bubble", "aria-expanded": "false", "aria-controls": "panel" });
    el.bubbleImg = h("img", { alt: "" });
    el.bubbleInitial = h("span", { class: "initial", "aria-hidden": "true" });
    el.bubble.append(el.bubbleInitial);
    el.name = h("span", { class: "name" });
    el.pill = h("span", { class: "pill", "data-state": "offline", "aria-live": "polite" });
    el.close = h("button", { type: "button", class: "close", part: "close" }, "×");
    el.video = h("video", { playsinline: "", autoplay: "", part: "video" });
    el.overlayText = h("p");
    el.overlayDetail = h("p", { class: "detail" });
    el.overlayButton = h("button", { type: "button", class: "primary" });
    el.overlay = h("div", { class: "overlay", role: "status", "aria-live": "polite" }, el.overlayText, el.overlayDetail, el.overlayButton);
    el.stage = h("div", { class: "stage", part: "stage" }, el.video, el.overlay);
    el.captions = h("div", { class: "captions", role: "log", "aria-live": "polite", part: "captions" });
    el.note = h("p", { class: "note", role: "status", hidden: "" });
    el.call = h("button", { type: "button", class: "call" });
    el.mute = h("button", { type: "button", class: "mute secondary", "aria-pressed": "false" });
    el.sayLabel = h("label", { class: "vh", for: "say-text" });
    el.sayText = h("input", { id: "say-text", type: "text", maxlength: "500", autocomplete: "off" });
    el.sayButton = h("button", { type: "submit" });
    el.say = h("form", { class: "say" }, el.sayLabel, el.sayText, el.sayButton);
    el.bar = h("div", { class: "bar", role: "group", part: "controls" }, el.call, el.mute, el.say);
    el.panel = h("section", { class: "panel", id: "panel", part: "panel" },
      h("div", { class: "head" }, el.name, el.pill, el.close), el.stage, el.captions, el.note, el.bar);
    this.root.append(style, el.bubble, el.panel);
    this.el = el;

    this.captions = new Captions(el.captions, { characterName: () => this.displayName() });
    this.tools = new UiTools({ stage: el.stage, mark: outline });
    el.bubble.addEventListener("click", () => (this.hasAttribute("open") ? this.collapse() : this.start()));
    el.close.addEventListener("click", () => this.collapse());
    el.call.addEventListener("click", () => (this.calling ? this.end() : this.start()));
    el.mute.addEventListener("click", () => this.mute());
    el.overlayButton.addEventListener("click", () => {
      const action = el.overlayButton.dataset.action;
      if (this.live && action === "play") this.el.video.play().then(() => this.hideOverlay(), () => {});
      else if (action === "leave") this.end("left the line");
      else this.start();
    });
    el.say.addEventListener("submit", (e) => {
      e.preventDefault();
      if (this.say(el.sayText.value)) el.sayText.value = "";
    });
    el.panel.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.hasAttribute("launcher")) { e.stopPropagation(); this.collapse(); }
    });
    el.video.addEventListener("playing", () => this.hideOverlay());
    this.setEnabled(false);
    this.showOverlay("", { button: "" });
  }

  relabel() {
    const el = this.el;
    const name = this.displayName();
    el.bubble.setAttribute("aria-label", this.t("open"));
    el.bubbleInitial.textContent = name.slice(0, 1).toUpperCase();
    el.name.textContent = name;
    el.close.setAttribute("aria-label", this.t("close"));
    el.close.hidden = !this.hasAttribute("launcher");
    el.video.setAttribute("aria-label", this.t("video"));
    el.captions.setAttribute("aria-label", this.t("captions"));
    el.bar.setAttribute("aria-label", this.t("controls"));
    el.sayLabel.textContent = this.t("typeMessage");
    el.sayText.placeholder = this.t("placeholder");
    el.sayButton.textContent = this.t("send");
    el.mute.textContent = this.isMuted ? this.t("unmute") : this.t("mute");
    el.panel.setAttribute("aria-label", this.t("video"));
    this.captions.labels = { you: this.t("you"), problem: this.t("problem"), empty: this.t("empty") };
    if (!el.captions.querySelector(".line")) this.captions.clear();
    this.setCallButton();
    el.pill.textContent = this.t(this.convState === "connecting" ? "offline" : this.convState) || this.convState;
    if (this.connectSeq === 0) { // nothing started yet: invite to start
      this.showOverlay(this.t("ready"), { button: this.t("start") });
    }
  }

  // -------------------------------------------------------------- the session

  get server() {
    // The server is where this module came from, unless the element names another.
    return (this.getAttribute("server") || new URL("./", import.meta.url).href).replace(/\/+$/, "");
  }

  get api() {
    return makeApi(this.server, () => this.getAttribute("key") || "");
  }

  configProblem() {
    const key = (this.getAttribute("key") || "").trim();
    if (key.startsWith("tk_")) return { code: "secret_key", message: this.t("secretKey") };
    if (!key || !this.getAttribute("character")) return { code: "config", message: this.t("config") };
    return null;
  }

  async loadCharacter() {
    const id = this.getAttribute("character");
    if (this.info?.id === id || this.configProblem()) return this.info;
    const info = await this.api(`/v1/characters/${encodeURIComponent(id)}`);
    this.info = info;
    // <img> cannot send the key: fetch the preview and show it as a blob.
    this.api(info.preview_url, { raw: true }).then(async (res) => {
      const url = URL.createObjectURL(await res.blob());
      this.el.video.poster = url;
      this.el.bubbleImg.src = url;
      this.el.bubble.replaceChildren(this.el.bubbleImg);
    }).catch(() => { /* the initial stays */ });
    return info;
  }

  playVideo(seq) {
    this.el.video.addEventListener("playing", () => {
      if (seq !== this.connectSeq) return;
      const firstFrameMs = Math.round(performance.now() - this.startedAt);
      this.emit("live", { firstFrameMs, sessionId: this.sessionId, steps: { ...this.live?.timings } });
    }, { once: true });
    this.el.video.play().catch(() => {
      // Autoplay with sound needs a click on some browsers: ask for one.
      if (seq === this.connectSeq) this.showOverlay(this.t("tapToPlay"), { button: this.t("play"), action: "play" });
    });
  }

  onServerMessage(ev) {
    switch (ev.type) {
      case "state": this.setState(ev.state); break;
      case "transcript":
        this.captions.transcript(ev);
        this.emit("transcript", { text: ev.text, final: Boolean(ev.final), typed: Boolean(ev.typed) });
        break;
      case "reply":
        this.captions.reply(ev);
        if (typeof ev.turn === "number") this.replyTurn = ev.turn;
        this.emit("reply", { text: ev.text, turn: ev.turn ?? null, final: Boolean(ev.final) });
        break;
      case "backchannel": this.captions.backchannel(ev.text); break;
      case "interrupted": this.captions.interrupted(); break;
      case "trace":
        if (!ev.relative || !Object.keys(ev.relative).length) break; // a turn without an answer
        this.emit("latency", {
          turn: ev.turn, server: ev.latency ?? null, felt: this.felt.get(ev.turn) ?? null, stages: ev.relative || {},
        });
        break;
      case "error":
        this.captions.error(ev.message || "");
        this.emit("error", { code: "session", message: ev.message || "", fatal: false });
        break;
      case "session_end":
        // The goodbye is still playing: hang up when the server closes the line.
        this.endMessage = ev.message || this.t("ended");
        break;
      case "tool_call": {
        this.emit("toolcall", { id: ev.id, name: ev.name, arguments: ev.arguments });
        // Always answered (ok: false when no handler or it failed): the character waits for it.
        const live = this.live;
        this.tools.run(ev.name, ev.arguments).then((reply) => live?.send({ type: "tool_result", id: ev.id, ...reply }));
        break;
      }
      default: break;
    }
  }

  lost() {
    const why = this.endMessage;
    this.endMessage = null;
    this.connectSeq += 1;
    this.closeLive();
    this.el.video.srcObject = null;
    this.setState("offline");
    this.showOverlay(why || this.t("lost"), { button: this.t("again"), error: !why });
    this.emit("ended", { reason: why || "connection lost" });
  }

  closeLive() {
    this.meter.stop();
    this.live?.close();
    this.live = null;
    this.tools.clear();
    this.setEnabled(false);
    this.calling = false;
    this.setCallButton();
  }

  collapse() {
    this.end();
    this.setOpen(false);
    if (this.hasAttribute("launcher")) this.el.bubble.focus();
  }

  setOpen(on) {
    if (!this.hasAttribute("launcher")) return;
    this.toggleAttribute("open", on);
    if (on) requestAnimationFrame(() => this.el.call.focus());
  }

  // -------------------------------------------------------------- errors

  failFromApi(err) {
    const key = ERROR_LABELS[err?.code] || (err?.status === 503 ? "busy" : "failed");
    return this.fail(err?.code || "failed", this.t(key, { detail: err?.message || String(err) }), err?.message || "");
  }

  fail(code, message, detail = "") {
    this.closeLive();
    this.setState("offline");
    this.showOverlay(message, { error: true, button: this.t("retry"), detail: code === "config" || code === "secret_key" ? "" : detail });
    // The site's developer gets the server's own words in the console.
    console.warn(`talkie-character: ${message}${detail ? ` (server: ${detail})` : ""}`);
    this.emit("error", { code, message, detail, fatal: true });
    return false;
  }

  // -------------------------------------------------------------- small helpers

  t(key, vars = {}) {
    const text = this.labels[key];
    if (typeof text !== "string") return "";
    return fill(text, {
      name: this.displayName(), origin: location.origin, server: this.server,
      character: this.getAttribute("character") || "", detail: "", ...vars,
    });
  }

  displayName() { return this.info?.name || this.getAttribute("name") || "Character"; }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  setState(state) {
    const changed = state !== this.convState;
    this.convState = state;
    this.el.pill.dataset.state = state;
    this.el.pill.textContent = this.t(state === "connecting" ? "offline" : state) || state;
    if (state === "connecting") this.el.pill.textContent = "…";
    if (changed) this.emit("state", { state });
  }

  setEnabled(on) {
    this.el.sayText.disabled = !on;
    this.el.sayButton.disabled = !on;
    this.el.mute.disabled = !on || !this.mic;
  }

  setCallButton() {
    this.el.call.textContent = this.calling ? this.t("end") : this.t("start");
    this.el.call.classList.toggle("secondary", Boolean(this.calling));
  }

  applyMute() {
    const track = this.mic?.getAudioTracks()[0];
    if (track) track.enabled = !this.isMuted; // a muted microphone sends silence
    this.el.mute.setAttribute("aria-pressed", String(this.isMuted));
    this.el.mute.textContent = this.isMuted ? this.t("unmute") : this.t("mute");
  }

  showOverlay(text, { error = false, button = "", detail = "", action = "" } = {}) {
    const el = this.el;
    el.overlayText.textContent = text;
    el.overlayDetail.textContent = detail;
    el.overlayDetail.hidden = !detail;
    el.overlay.classList.remove("hidden");
    el.overlay.classList.toggle("error", error);
    el.overlayButton.hidden = !button;
    el.overlayButton.textContent = button;
    el.overlayButton.dataset.action = action;
  }

  hideOverlay() {
    this.el.overlay.classList.add("hidden");
  }

  note(text) {
    this.el.note.textContent = text;
    this.el.note.hidden = !text;
  }
}

// The widget must not depend on (or add to) the host page's CSS: an element the character
// highlights gets an outline of its own for a few seconds, then its own style back.
const saved = new WeakMap();
function outline(target, on) {
  if (on) {
    if (!saved.has(target)) saved.set(target, [target.style.outline, target.style.outlineOffset]);
    target.style.outline = "3px solid #6b4de6";
    target.style.outlineOffset = "3px";
  } else if (saved.has(target)) {
    [target.style.outline, target.style.outlineOffset] = saved.get(target);
    saved.delete(target);
  }
}

if (!customElements.get("talkie-character")) customElements.define("talkie-character", TalkieCharacter);
