// What the microphone hears while the page connects (the server's side and the protocol:
// src/talkie/transport/preroll.py). WebRTC carries the microphone only once the connection is
// up, about a second after the click (20-40 s when the server has to start a worker): words said
// before that were lost. So the page records from the moment it has the microphone, stops just
// after the connection is up, and sends the recording first thing on the events channel; the
// server hears it before the live audio (and cuts off what the live audio repeats of it).

export const PREROLL_RATE = 16000;
const MAX_SECONDS = 20; // the newest part is kept (the server takes up to 30 s)
const MESSAGE_SAMPLES = 16000; // one binary message: 1 s, 32 KB
const BLOCK = 320; // 20 ms: the unit of the leading-silence trim
const QUIET_PEAK = 0.004; // under -48 dBFS in a block: nothing said (noise suppression is on)
const KEEP_BEFORE = 0.3 * PREROLL_RATE; // quiet kept before the first sound: a soft onset
const FLUSH_TIMEOUT_MS = 300;

export class MicPreroll {
  /** Start recording `stream` (a MediaStream with an audio track); null when it cannot. */
  static async start(stream) {
    const track = stream?.getAudioTracks()[0];
    if (!track || typeof AudioWorkletNode === "undefined") return null;
    let context = null;
    try {
      context = new AudioContext({ sampleRate: PREROLL_RATE });
      await context.audioWorklet.addModule(new URL("./mic-preroll-worklet.js", import.meta.url));
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "talkie-preroll");
      source.connect(node);
      node.connect(context.destination); // pulls the node; it outputs nothing (silence)
      // Not awaited: without a user's gesture (a reconnect on its own) the browser may keep
      // the context suspended, and resume() pending, for good; it then records nothing.
      if (context.state === "suspended") context.resume().catch(() => {});
      return new MicPreroll(context, source, node);
    } catch {
      context?.close().catch(() => {});
      return null;
    }
  }

  constructor(context, source, node) {
    this.context = context;
    this.source = source;
    this.node = node;
    this.blocks = [];
    this.samples = 0;
    this.stopped = null;
    node.port.onmessage = (e) => {
      if (e.data === "flushed") { this.flushed?.(); return; }
      this.blocks.push(e.data);
      this.samples += e.data.length;
      while (this.samples - this.blocks[0].length >= MAX_SECONDS * PREROLL_RATE) {
        this.samples -= this.blocks.shift().length;
      }
    };
  }

  /** Stop and give what was heard as 16-bit PCM, leading silence trimmed (idempotent). */
  stop() {
    this.stopped ??= (async () => {
      await new Promise((done) => {
        this.flushed = done;
        setTimeout(done, FLUSH_TIMEOUT_MS);
        this.node.port.postMessage("flush");
      });
      this.close();
      return trimLeadingSilence(toInt16(this.blocks, this.samples));
    })();
    return this.stopped;
  }

  close() {
    this.node.port.onmessage = null;
    try { this.source.disconnect(); this.node.disconnect(); } catch { /* already */ }
    this.context.close().catch(() => {});
  }

  /** Send `pcm` (from stop()) on the open data channel `dc`: the header, then the samples. */
  static send(dc, pcm) {
    dc.send(JSON.stringify({ type: "preroll", sample_rate: PREROLL_RATE, samples: pcm.length }));
    for (let at = 0; at < pcm.length; at += MESSAGE_SAMPLES) {
      dc.send(pcm.subarray(at, Math.min(pcm.length, at + MESSAGE_SAMPLES)));
    }
  }
}

function toInt16(blocks, total) {
  const out = new Int16Array(total);
  let at = 0;
  for (const block of blocks) {
    for (let i = 0; i < block.length; i++) {
      const s = Math.max(-1, Math.min(1, block[i]));
      out[at++] = s < 0 ? s * 32768 : s * 32767;
    }
  }
  return out;
}

function trimLeadingSilence(pcm) {
  const quiet = QUIET_PEAK * 32768;
  for (let start = 0; start < pcm.length; start += BLOCK) {
    const end = Math.min(pcm.length, start + BLOCK);
    for (let i = start; i < end; i++) {
      if (Math.abs(pcm[i]) >= quiet) return pcm.subarray(Math.max(0, start - KEEP_BEFORE));
    }
  }
  return pcm.subarray(pcm.length); // nothing said: an empty preroll
}
