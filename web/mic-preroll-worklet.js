// The audio thread's half of mic-preroll.js: copies the microphone's samples out in blocks.
// Loaded with audioWorklet.addModule (it runs in the AudioWorkletGlobalScope, not the page).

const BLOCK = 2048; // samples per message to the page (128 ms at 16 kHz)

class PrerollRecorder extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK);
    this.filled = 0;
    this.port.onmessage = (e) => {
      if (e.data !== "flush") return;
      if (this.filled) this.port.postMessage(this.block.slice(0, this.filled));
      this.filled = 0;
      this.port.postMessage("flushed");
    };
  }

  process(inputs) {
    const samples = inputs[0]?.[0]; // first channel: the microphone is mono
    if (samples) {
      let at = 0;
      while (at < samples.length) {
        const n = Math.min(samples.length - at, BLOCK - this.filled);
        this.block.set(samples.subarray(at, at + n), this.filled);
        this.filled += n;
        at += n;
        if (this.filled === BLOCK) {
          this.port.postMessage(this.block.slice());
          this.filled = 0;
        }
      }
    }
    return true; // keep running until the page disconnects the node
  }
}

registerProcessor("talkie-preroll", PrerollRecorder);
