// The character's eyes, on the page's side: camera and screen-share toggles.
//
// Both are OFF until the user switches them on. The connection offers two send-only video
// m-lines from the start (camera, then screen: the server reads them in that order) with no
// track; switching one on puts a track on its sender (replaceTrack: no renegotiation) and tells
// the server {type: "vision", camera|screen: bool}. While one is on, its button is pressed and a
// red "camera on" / "sharing screen" badge sits on the video; the camera shows a small mirrored
// preview of what it sends. The browser sends at most 5 frames a second (the server looks at
// about 3), at 640x480 for the camera and up to 1920 px wide for a screen (text must stay
// legible).
//
// What the server notices comes back as {type: "vision", source, what} events: shown in the
// badge ("sees you", "reading 6 lines").

const CAMERA = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 5, max: 10 } };
const SCREEN = { width: { max: 1920 }, height: { max: 1080 }, frameRate: { ideal: 5, max: 5 } };
const MAX_FPS = 5;

export class Eyes {
  constructor({ cameraButton, screenButton, cameraBadge, screenBadge, preview, send, note }) {
    this.buttons = { camera: cameraButton, screen: screenButton };
    this.badges = { camera: cameraBadge, screen: screenBadge };
    this.preview = preview;
    this.send = send;
    this.note = note;
    this.tracks = { camera: null, screen: null };
    this.senders = { camera: null, screen: null };
    cameraButton.addEventListener("click", () => this.toggle("camera"));
    screenButton.addEventListener("click", () => this.toggle("screen"));
    this.enable(false);
  }

  // A new connection: offer the two input m-lines, with the tracks already on (after a
  // reconnect) put straight back on them.
  attach(pc) {
    for (const source of ["camera", "screen"]) {
      const transceiver = pc.addTransceiver("video", { direction: "sendonly" });
      this.senders[source] = transceiver.sender;
      if (this.tracks[source]) this.useTrack(source, this.tracks[source]);
    }
  }

  // The data channel is open: tell the server what is on.
  announce() {
    this.send({ type: "vision", camera: !!this.tracks.camera, screen: !!this.tracks.screen });
  }

  detach() {
    this.senders = { camera: null, screen: null };
  }

  enable(on) {
    const can = !!navigator.mediaDevices;
    this.buttons.camera.disabled = !on || !can || !navigator.mediaDevices.getUserMedia;
    this.buttons.screen.disabled = !on || !can || !navigator.mediaDevices.getDisplayMedia;
  }

  async toggle(source) {
    if (this.tracks[source]) { this.stop(source); return; }
    let stream;
    try {
      stream = source === "camera"
        ? await navigator.mediaDevices.getUserMedia({ video: CAMERA, audio: false })
        : await navigator.mediaDevices.getDisplayMedia({ video: SCREEN, audio: false });
    } catch (err) {
      const why = err?.name === "NotAllowedError" ? "access was denied" : (err?.message || err?.name || "unavailable");
      this.note(`${source === "camera" ? "Camera" : "Screen sharing"}: ${why}.`);
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    if (source === "screen") track.contentHint = "text"; // keep text sharp rather than smooth
    // The user can stop sharing from the browser's own bar: follow it.
    track.addEventListener("ended", () => { if (this.tracks[source] === track) this.stop(source); });
    this.tracks[source] = track;
    await this.useTrack(source, track);
    this.show(source, true);
    this.send({ type: "vision", [source]: true });
  }

  async useTrack(source, track) {
    const sender = this.senders[source];
    if (!sender) return;
    await sender.replaceTrack(track);
    try {
      const params = sender.getParameters();
      params.encodings = params.encodings?.length ? params.encodings : [{}];
      params.encodings[0].maxFramerate = MAX_FPS;
      await sender.setParameters(params);
    } catch { /* a browser without per-sender limits: the capture constraints still hold */ }
  }

  stop(source) {
    const track = this.tracks[source];
    this.tracks[source] = null;
    if (track) track.stop();
    const sender = this.senders[source];
    if (sender) sender.replaceTrack(null).catch(() => {});
    this.show(source, false);
    this.send({ type: "vision", [source]: false });
  }

  stopAll() {
    for (const source of ["camera", "screen"]) if (this.tracks[source]) this.stop(source);
  }

  show(source, on) {
    const button = this.buttons[source];
    button.setAttribute("aria-pressed", String(on));
    button.classList.toggle("on", on);
    const label = source === "camera" ? "Camera" : "Share screen";
    button.textContent = on ? (source === "camera" ? "Camera off" : "Stop sharing") : label;
    const badge = this.badges[source];
    badge.hidden = !on;
    badge.textContent = source === "camera" ? "camera on" : "sharing screen";
    if (source === "camera") {
      this.preview.hidden = !on;
      this.preview.srcObject = on ? new MediaStream([this.tracks.camera]) : null;
    }
  }

  // {type: "vision", source, what, faces, lines} from the server.
  observed(ev) {
    const badge = this.badges[ev.source];
    if (!badge || badge.hidden) return;
    if (ev.source === "camera") {
      const seen = { appeared: "sees you", looking: "sees you", looked_away: "sees you look away", left: "nobody in view", hand_raised: "sees your hand" }[ev.what];
      if (seen) badge.textContent = `camera on · ${seen}`;
    } else if (ev.what === "screen_text") {
      badge.textContent = `sharing screen · ${ev.lines ? `reads ${ev.lines} line${ev.lines > 1 ? "s" : ""}` : "no text"}`;
    }
  }
}
