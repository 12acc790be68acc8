// The meeting room page (talkie.meet.room): every participant sends its camera and microphone to
// every other one (a mesh) and shows what it receives.
//
// Signalling goes through the room's WebSocket (/ws?room=NAME). The newcomer makes the offers:
// it gets the roster in "welcome" and calls everyone there; the others answer. Offers and answers
// are sent complete (ICE gathered first, no trickle), as Talkie's own page does.
//
// For tests, window.room exposes the participants: room.peers (id -> {name, pc, stream}),
// room.streamOf(name) and room.statsOf(name) (inbound video/audio from getStats).

const ICE_GATHER_TIMEOUT_MS = 3000;
const params = new URLSearchParams(location.search);
const roomName = params.get("room") || "lobby";
const nameInput = document.getElementById("name");
const joinButton = document.getElementById("join");
const muteButton = document.getElementById("mute");
const statusLine = document.getElementById("status");
const grid = document.getElementById("grid");
nameInput.value = params.get("name") || "";

const room = { id: null, peers: new Map(), local: null, joined: false };
window.room = room;

room.streamOf = (name) => {
  for (const peer of room.peers.values()) if (peer.name === name) return peer.stream;
  return null;
};

room.statsOf = async (name) => {
  for (const peer of room.peers.values()) {
    if (peer.name !== name) continue;
    const out = {};
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp") out[s.kind] = s;
    });
    return out;
  }
  return null;
};

function setStatus(text) { statusLine.textContent = text; }

function tile(peer) {
  const figure = document.createElement("figure");
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = peer.stream;
  video.dataset.peerName = peer.name;
  const caption = document.createElement("figcaption");
  caption.textContent = peer.name;
  figure.append(video, caption);
  grid.append(figure);
  peer.figure = figure;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

function peerFor(id, name, socket) {
  let peer = room.peers.get(id);
  if (peer) return peer;
  const pc = new RTCPeerConnection({ iceServers: [] });
  peer = { id, name, pc, stream: new MediaStream() };
  room.peers.set(id, peer);
  for (const track of room.local.getTracks()) pc.addTrack(track, room.local);
  pc.ontrack = (e) => peer.stream.addTrack(e.track);
  pc.onconnectionstatechange = () => { peer.state = pc.connectionState; };
  peer.send = (data) => socket.send(JSON.stringify({ type: "signal", to: id, data }));
  tile(peer);
  return peer;
}

async function call(peer) {
  await peer.pc.setLocalDescription(await peer.pc.createOffer());
  await gathered(peer.pc);
  peer.send({ type: "offer", sdp: peer.pc.localDescription.sdp });
}

async function onSignal(msg, socket) {
  const peer = peerFor(msg.from, msg.name, socket);
  const data = msg.data || {};
  if (data.type === "offer") {
    await peer.pc.setRemoteDescription({ type: "offer", sdp: data.sdp });
    await peer.pc.setLocalDescription(await peer.pc.createAnswer());
    await gathered(peer.pc);
    peer.send({ type: "answer", sdp: peer.pc.localDescription.sdp });
  } else if (data.type === "answer") {
    await peer.pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
  }
}

function leave(id) {
  const peer = room.peers.get(id);
  if (!peer) return;
  peer.pc.close();
  peer.figure?.remove();
  room.peers.delete(id);
}

async function join() {
  const name = nameInput.value.trim() || "guest";
  joinButton.disabled = true;
  setStatus("opening camera and microphone…");
  try {
    room.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  } catch (err) {
    setStatus(`no camera or microphone: ${err?.message || err}`);
    joinButton.disabled = false;
    return;
  }
  const url = new URL(`ws${location.protocol === "https:" ? "s" : ""}://${location.host}/ws`);
  url.searchParams.set("room", roomName);
  const socket = new WebSocket(url);
  socket.onopen = () => socket.send(JSON.stringify({ type: "join", name }));
  socket.onclose = () => setStatus("disconnected");
  socket.onmessage = async (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === "welcome") {
      room.id = msg.id;
      room.joined = true;
      muteButton.disabled = false;
      setStatus(`in room ${roomName} as ${name}`);
      for (const p of msg.peers) await call(peerFor(p.id, p.name, socket));
    } else if (msg.type === "joined") {
      setStatus(`${msg.name} joined`);
    } else if (msg.type === "signal") {
      await onSignal(msg, socket);
    } else if (msg.type === "left") {
      leave(msg.id);
    } else if (msg.type === "error") {
      setStatus(msg.message);
    }
  };
}

joinButton.addEventListener("click", join);
muteButton.addEventListener("click", () => {
  const track = room.local?.getAudioTracks()[0];
  if (!track) return;
  track.enabled = !track.enabled;
  muteButton.textContent = track.enabled ? "Mute" : "Unmute";
  muteButton.setAttribute("aria-pressed", String(!track.enabled));
});
