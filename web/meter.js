// What the user felt: the time from the end of their speech to the first sound of the answer,
// measured here, in the browser, on ONE audio clock (the server's traces only see its own
// part: it cannot see the network, the jitter buffer or the speakers).
//
// An AudioWorklet meters the microphone as sent (after echo cancellation) and the character's
// voice as received, every 128 samples (2.7 ms at 48 kHz). The end of the user's speech is the
// last moment the microphone was above its speech threshold (the room's noise floor + 12 dB,
// at least -50 dBFS) before the answer began; the answer begins when the character's audio
// rises above -45 dBFS after at least 250 ms of quiet. A typed message counts from its sending.

const WORKLET = `
class TalkieMeter extends AudioWorkletProcessor {
  constructor() { super(); this.buf = []; }
  process(inputs) {
    const out = [currentTime];
    for (let k = 0; k < 2; k++) {
      const ch = inputs[k] && inputs[k][0];
      let s = 0;
      if (ch && ch.length) { for (let i = 0; i < ch.length; i++) s += ch[i] * ch[i]; s = Math.sqrt(s / ch.length); }
      out.push(s);
    }
    this.buf.push(...out);
    if (this.buf.length >= 3 * 16) { this.port.postMessage(this.buf); this.buf = []; }
    return true;
  }
}
registerProcessor("talkie-meter", TalkieMeter);
`;

const ANSWER_ON_DB = -45; // the character's audio counts as sound above this
const ANSWER_QUIET_S = 0.25; // ... after this much quiet: a new answer (not a word gap)
const MIC_MARGIN_DB = 12; // speech: this far above the microphone's noise floor
const MIC_MIN_DB = -50;
const MAX_WAIT_S = 10; // an answer more than this after the user's words is not "the answer"
const MIN_WAIT_S = 0.15; // the user was still talking: not an answer to what they said
const OVERLAP_S = 1.0; // the user talks within this of an answer's start: a false start

const db = (rms) => 20 * Math.log10(Math.max(rms, 1e-7));

export class VoiceMeter {
  constructor({ onAnswer } = {}) {
    this.onAnswer = onAnswer || (() => {});
    this.ctx = null;
    this.node = null;
    this.sources = [];
    this.noiseDb = -70; // the microphone's floor (a slow minimum follower)
    this.lastUserVoice = -Infinity; // AudioContext time of the latest speech from the user
    this.typedAt = -Infinity;
    this.answerLoud = false;
    this.answerQuietSince = 0;
    this.measured = []; // every answer: {felt, at, from: "voice"|"typed"}
  }

  /** Start metering ``mic`` (a MediaStream or null) and ``remote`` (the character's stream). */
  async start(mic, remote) {
    this.stop();
    const ctx = new AudioContext({ latencyHint: "interactive" });
    this.ctx = ctx;
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "application/javascript" }));
    try {
      await ctx.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    if (this.ctx !== ctx) return; // stopped meanwhile
    const node = new AudioWorkletNode(ctx, "talkie-meter", { numberOfInputs: 2, numberOfOutputs: 1 });
    node.port.onmessage = (e) => this.feed(e.data);
    const silent = ctx.createGain();
    silent.gain.value = 0; // keep the graph pulled without playing anything twice
    node.connect(silent).connect(ctx.destination);
    if (mic && mic.getAudioTracks().length) {
      const src = ctx.createMediaStreamSource(mic);
      src.connect(node, 0, 0);
      this.sources.push(src);
    }
    if (remote && remote.getAudioTracks().length) {
      const src = ctx.createMediaStreamSource(new MediaStream(remote.getAudioTracks()));
      src.connect(node, 0, 1);
      this.sources.push(src);
    }
    this.node = node;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
  }

  stop() {
    for (const s of this.sources) { try { s.disconnect(); } catch { /* gone */ } }
    this.sources = [];
    if (this.node) { this.node.port.onmessage = null; this.node.disconnect(); }
    this.node = null;
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }

  /** A typed message was sent now: its answer's wait counts from here. */
  typed() {
    if (this.ctx) this.typedAt = this.ctx.currentTime;
  }

  feed(buf) {
    for (let i = 0; i + 2 < buf.length; i += 3) {
      const t = buf[i];
      const mic = db(buf[i + 1]);
      const answer = db(buf[i + 2]);
      // The floor follows quiet moments quickly and loud ones slowly (speech does not raise it).
      this.noiseDb = mic < this.noiseDb ? mic : this.noiseDb + 0.0005;
      if (mic > Math.max(MIC_MIN_DB, this.noiseDb + MIC_MARGIN_DB)) {
        this.lastUserVoice = t;
        const last = this.measured[this.measured.length - 1];
        // The user went on talking right after an answer began: it was a false start (the
        // session drops it and answers the whole question), not what they waited for.
        if (last && !last.overlapped && t > last.at && t - last.at < OVERLAP_S) last.overlapped = true;
      }
      if (answer > ANSWER_ON_DB) {
        if (!this.answerLoud && t - this.answerQuietSince >= ANSWER_QUIET_S) this.answerStarted(t);
        this.answerLoud = true;
      } else if (this.answerLoud) {
        this.answerLoud = false;
        this.answerQuietSince = t;
      }
    }
  }

  answerStarted(t) {
    const from = Math.max(this.lastUserVoice, this.typedAt);
    if (!(t - from >= MIN_WAIT_S && t - from < MAX_WAIT_S)) return; // not an answer to anything said
    const from_ = this.typedAt > this.lastUserVoice ? "typed" : "voice";
    const m = { felt: t - from, at: t, from: from_, overlapped: false };
    this.measured.push(m);
    if (this.measured.length > 200) this.measured.shift();
    this.lastUserVoice = -Infinity; // one answer per thing said
    this.typedAt = -Infinity;
    this.onAnswer(m);
  }
}
