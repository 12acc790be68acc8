// The meeting bot's init script (talkie.meet.bot): runs in the meeting page before the page's
// own scripts, in headless Chromium, and makes the character a participant.
//
// - Camera and microphone: navigator.mediaDevices.getUserMedia is answered with the character's
//   live video and voice. On the first call the page opens a WebRTC connection to Talkie (the
//   same offer/answer as web/live-session.js: complete offer, no trickle); the offer goes out
//   through window.__talkieOffer, a function the bot exposes from Python, so no Talkie
//   credential ever enters the meeting page (and no CORS rule of the meeting site applies).
// - Ears: RTCPeerConnection is wrapped; every remote audio track of the meeting's own
//   connections is mixed with WebAudio into one track, sent to Talkie as the microphone. The
//   character's connection uses the unwrapped constructor, so its voice is not in the mix.
// - The data channel switches the session to group mode (answer when addressed by name) and
//   keeps a heartbeat; the session's events go to Python through window.__talkieMeetEvent.
//
// A classic script (not a module): init scripts are evaluated as plain source, and meeting sites'
// content security policies would refuse loading a module from Talkie's origin. It runs once per
// top-level document; frames are left alone.
(() => {
  "use strict";
  const config = window.__talkieMeetConfig;
  if (!config || window.top !== window || window.__talkieMeet) return;

  const ICE_GATHER_TIMEOUT_MS = 3000;
  const HEARTBEAT_MS = 1000;
  const NativePeerConnection = window.RTCPeerConnection;
  const state = {
    status: "idle", // idle -> connecting -> live | failed
    error: "",
    heardTracks: 0,
    meetingPeers: [], // the meeting's own connections (for stats)
    events: [],
    character: null, // Promise<MediaStream>: the character's video + voice
    pc: null,
    dc: null,
  };
  window.__talkieMeet = state;

  let audio = null; // {ctx, mix, voice}: the WebAudio graph, made on first use

  function audioGraph() {
    if (!audio) {
      const ctx = new AudioContext({ sampleRate: 48000 });
      audio = { ctx, mix: ctx.createMediaStreamDestination(), voice: ctx.createMediaStreamDestination() };
      // A silent source keeps both tracks producing samples before anyone is heard (an idle
      // destination's track can send nothing, and the session would hear no microphone).
      const silence = ctx.createConstantSource();
      silence.offset.value = 0;
      silence.connect(audio.mix);
      silence.connect(audio.voice);
      silence.start();
    }
    if (audio.ctx.state === "suspended") audio.ctx.resume().catch(() => {});
    return audio;
  }

  // Chromium gives WebAudio the sound of a remote WebRTC track only while that track also
  // plays in a media element; a muted one is enough.
  function playMuted(stream) {
    const sink = new Audio();
    sink.muted = true;
    sink.srcObject = stream;
    sink.play().catch(() => {});
    return sink;
  }

  const heard = new Set();

  function hear(track) {
    if (track.kind !== "audio" || heard.has(track.id)) return;
    heard.add(track.id);
    state.heardTracks += 1;
    const stream = new MediaStream([track]);
    const sink = playMuted(stream);
    const { ctx, mix } = audioGraph();
    const source = ctx.createMediaStreamSource(stream);
    source.connect(mix);
    track.addEventListener("ended", () => {
      source.disconnect();
      sink.srcObject = null;
      heard.delete(track.id);
    });
  }

  class MeetingPeerConnection extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      state.meetingPeers.push(this);
      if (state.meetingPeers.length > 50) state.meetingPeers.shift();
      this.addEventListener("track", (e) => hear(e.track));
    }

    addTrack(track, ...streams) {
      const sender = super.addTrack(track, ...streams);
      keepFrameRate(sender, track);
      return sender;
    }

    addTransceiver(trackOrKind, init) {
      const transceiver = super.addTransceiver(trackOrKind, init);
      if (typeof trackOrKind !== "string") keepFrameRate(transceiver.sender, trackOrKind);
      return transceiver;
    }
  }

  // The character's lips need frames more than pixels: when the meeting's encoder is short of
  // bandwidth or CPU it should lower the resolution, not the frame rate.
  const characterTracks = new WeakSet();

  function keepFrameRate(sender, track) {
    if (!track || !characterTracks.has(track)) return;
    const apply = () => {
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) return;
      params.degradationPreference = "maintain-framerate";
      for (const encoding of params.encodings) encoding.maxFramerate = 24;
      sender.setParameters(params).catch(() => {});
    };
    // Encodings exist once the connection is negotiated.
    setTimeout(apply, 0);
    setTimeout(apply, 3000);
  }
  window.RTCPeerConnection = MeetingPeerConnection;
  if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = MeetingPeerConnection;

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS); // use what we have by then
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function report(event) {
    state.events.push(event);
    if (state.events.length > 500) state.events.shift();
    if (typeof window.__talkieMeetEvent === "function") window.__talkieMeetEvent(event).catch(() => {});
  }

  function send(event) {
    if (state.dc && state.dc.readyState === "open") state.dc.send(JSON.stringify(event));
  }

  async function connect() {
    state.status = "connecting";
    const { ctx, mix, voice } = audioGraph();
    const pc = new NativePeerConnection({ iceServers: config.iceServers || [] });
    state.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver(mix.stream.getAudioTracks()[0], { direction: "sendrecv", streams: [mix.stream] });
    const dc = pc.createDataChannel("events");
    state.dc = dc;
    let heartbeat = null;
    dc.onopen = () => {
      send({ type: "group", on: true, names: config.names || [] });
      heartbeat = setInterval(() => send({ type: "ping", t: performance.now() }), HEARTBEAT_MS);
    };
    dc.onclose = () => clearInterval(heartbeat);
    dc.onmessage = (e) => {
      let event;
      try { event = JSON.parse(e.data); } catch { return; }
      if (event.type !== "pong") report(event);
    };
    pc.onconnectionstatechange = () => report({ type: "connection", state: pc.connectionState });

    const video = new Promise((resolve) => {
      pc.addEventListener("track", (e) => {
        if (e.track.kind === "video") {
          resolve(e.track);
        } else {
          // The voice goes through WebAudio: a remote audio track sent on as it is can stay
          // silent in another connection, a WebAudio track always carries sound.
          const stream = new MediaStream([e.track]);
          playMuted(stream);
          ctx.createMediaStreamSource(stream).connect(voice);
        }
      });
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await window.__talkieOffer(pc.localDescription.sdp);
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    const stream = new MediaStream([await video, voice.stream.getAudioTracks()[0]]);
    state.status = "live";
    report({ type: "connection", state: "answered" });
    return stream;
  }

  function character() {
    if (!state.character) {
      state.character = connect().catch((err) => {
        state.status = "failed";
        state.error = String(err?.message || err);
        state.character = null;
        report({ type: "failed", message: state.error });
        throw err;
      });
    }
    return state.character;
  }

  const devices = navigator.mediaDevices;
  if (devices) {
    devices.getUserMedia = async (constraints = {}) => {
      const stream = await character();
      const tracks = [];
      // "motion": under load the meeting's encoder keeps the frame rate (lips) and gives up
      // resolution first.
      const video = stream.getVideoTracks().map((t) => Object.assign(t.clone(), { contentHint: "motion" }));
      video.forEach((t) => characterTracks.add(t));
      if (constraints.video) tracks.push(...video);
      if (constraints.audio) tracks.push(...stream.getAudioTracks().map((t) => t.clone()));
      if (!tracks.length) throw new DOMException("no audio or video was asked for", "TypeError");
      return new MediaStream(tracks);
    };
  }

  // For join scripts: start the character before the meeting asks (a preview), tell it who
  // speaks, and say what happened.
  state.start = () => character().then(() => true);
  state.speaker = (name) => send({ type: "speaker", name: String(name).slice(0, 60) });
  // Who is talking, for meetings whose page knows its participants: `participants()` gives
  // [{id, name, stream}]; the loudest one (over a floor) is told to the session as the speaker.
  state.watchSpeakers = (participants, { floor = 0.02, everyMs = 100 } = {}) => {
    const { ctx } = audioGraph();
    const meters = new Map();
    let current = "";
    return setInterval(() => {
      for (const p of participants()) {
        if (meters.has(p.id) || !p.stream || !p.stream.getAudioTracks().length) continue;
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 512;
        playMuted(p.stream);
        ctx.createMediaStreamSource(p.stream).connect(analyser);
        meters.set(p.id, { name: p.name, analyser, buf: new Float32Array(analyser.fftSize) });
      }
      let loudest = "";
      let level = floor;
      for (const m of meters.values()) {
        m.analyser.getFloatTimeDomainData(m.buf);
        let sum = 0;
        for (const x of m.buf) sum += x * x;
        const rms = Math.sqrt(sum / m.buf.length);
        if (rms > level) { level = rms; loudest = m.name; }
      }
      if (loudest && loudest !== current) {
        current = loudest;
        state.speaker(loudest);
      }
    }, everyMs);
  };
  // What the meeting's encoders do with the character's video: frames per second sent, size,
  // and what limits them ("cpu", "bandwidth"), per open connection.
  state.outbound = async () => {
    const out = [];
    if (state.pc) {
      (await state.pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          out.push({ from: "talkie", fps: s.framesPerSecond || 0, width: s.frameWidth || 0, height: s.frameHeight || 0 });
        }
      });
    }
    for (const pc of state.meetingPeers) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "outbound-rtp" && s.kind === "video") {
          out.push({
            fps: s.framesPerSecond || 0, width: s.frameWidth || 0, height: s.frameHeight || 0,
            framesSent: s.framesSent || 0, limitation: s.qualityLimitationReason || "",
          });
        }
      });
    }
    return out;
  };
  state.summary = () => ({
    status: state.status, error: state.error, heardTracks: state.heardTracks,
    connection: state.pc ? state.pc.connectionState : "none",
  });
})();
