"""Drive the Talkie web page in headless Debian Chromium (Playwright, sync API).

``launch_chromium(playwright, fake_audio=WAV)`` starts Chromium with a fake microphone that plays
the WAV once; ``TalkiePage`` wraps one tab: open, pick a character, wait for live video, grab
frames as PNG/arrays, meter and record the character's audio, read the data-channel events.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def launch_chromium(
    playwright: Any,
    *,
    fake_audio: Path | None = None,
    mic: bool = True,
    fake_video: Path | None = None,
) -> Any:
    """Headless Chromium. ``fake_audio``: a WAV the fake microphone plays once (then silence);
    ``mic=False``: getUserMedia is refused (no fake UI), as when a user denies the microphone;
    ``fake_video``: a Y4M file the fake camera plays (looping; ``write_y4m``)."""
    args = list(BASE_ARGS)
    if fake_video is not None:
        args.append(f"--use-file-for-fake-video-capture={fake_video}")
    if not mic:
        args.remove("--use-fake-ui-for-media-stream")
        args.append("--deny-permission-prompts")
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}%noloop")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def make_question_wav(
    path: Path,
    text: str | list[tuple[str, float]] = "What is your name?",
    *,
    voice: str = "en-us+m3",
    before: float = 1.5,
    after: float = 2.0,
    rate: int = 48_000,
) -> Path:
    """Speak ``text`` with espeak-ng (a voice unlike the character's), pad it with silence and
    write a mono 16-bit WAV at ``rate``. ``text`` may be parts, each with the pause after it
    (a question in several breaths). Returns ``path``."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    parts = [(text, 0.0)] if isinstance(text, str) else text
    pieces = [np.zeros(int(before * rate))]
    for part, pause in parts:
        pieces += [_espeak(part, voice, rate, path), np.zeros(int(pause * rate))]
    out = np.concatenate([*pieces, np.zeros(int(after * rate))]).astype(np.float32)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(out, -32768, 32767).astype(np.int16).tobytes())
    return path


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 5) -> Path:
    """RGB frames (all one size, even sides) -> an uncompressed Y4M clip for the fake camera."""
    import cv2

    h, w = frames[0].shape[:2]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _espeak(text: str, voice: str, rate: int, near: Path) -> np.ndarray:
    raw = near.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=30)
    with wave.open(str(raw), "rb") as w:
        src_rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1)
    raw.unlink()
    if src_rate != rate:
        from scipy.signal import resample_poly

        g = np.gcd(src_rate, rate)
        pcm = resample_poly(pcm, rate // g, src_rate // g)
    return pcm


_METER_JS = """
() => {
  if (window.__talkieMeter) return true;
  const video = document.getElementById("video");
  const tracks = video.srcObject ? video.srcObject.getAudioTracks() : [];
  if (!tracks.length) return false;
  const ctx = new AudioContext();
  const meter = (stream) => {
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(stream).connect(analyser);
    return { analyser, buf: new Float32Array(analyser.fftSize), levels: [] };
  };
  const meters = { remote: meter(new MediaStream(tracks)) };
  const mic = window.talkie && window.talkie.micStream;
  if (mic) meters.mic = meter(mic);
  const timer = setInterval(() => {
    const now = performance.now();
    for (const m of Object.values(meters)) {
      m.analyser.getFloatTimeDomainData(m.buf);
      let sum = 0;
      for (let i = 0; i < m.buf.length; i++) sum += m.buf[i] * m.buf[i];
      m.levels.push([now, Math.sqrt(sum / m.buf.length)]);
      if (m.levels.length > 30000) m.levels.shift();
    }
  }, 10);
  window.__talkieMeter = { ctx, meters, timer };
  return true;
}
"""

_RECORD_START_JS = """
() => {
  const video = document.getElementById("video");
  const stream = new MediaStream(video.srcObject.getAudioTracks());
  const chunks = [];
  const rec = new MediaRecorder(stream, { mimeType: "audio/webm;codecs=opus" });
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.start(250);
  window.__talkieRec = { rec, chunks, t0: performance.now() };
  return window.__talkieRec.t0;
}
"""

_RECORD_STOP_JS = """
async () => {
  const r = window.__talkieRec;
  await new Promise((resolve) => { r.rec.onstop = resolve; r.rec.stop(); });
  const blob = new Blob(r.chunks, { type: "audio/webm" });
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
"""

_FRAME_JS = """
() => {
  const v = document.getElementById("video");
  if (!v.videoWidth) return null;
  const c = document.createElement("canvas");
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  return { png: c.toDataURL("image/png"), t: performance.now(), currentTime: v.currentTime };
}
"""


class TalkiePage:
    """One browser tab on the Talkie page."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.base_url = base_url
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def open(self, timeout: float = 15.0) -> TalkiePage:
        self.page.goto(self.base_url + "/", timeout=timeout * 1000)
        self.page.wait_for_selector("button.card[data-character-id]", timeout=timeout * 1000)
        return self

    def card_ids(self) -> list[str]:
        ids: list[str] = self.page.eval_on_selector_all(
            "button.card[data-character-id]", "els => els.map(e => e.dataset.characterId)"
        )
        return ids

    def pick(self, character_id: str) -> None:
        self.page.click(f'button.card[data-character-id="{character_id}"]')

    def wait_playing(self, timeout: float = 30.0, frames: int = 10) -> float:
        """Wait until the video shows live frames; returns the seconds it took."""
        t0 = time.monotonic()
        self.page.wait_for_function(
            """(n) => { const v = document.getElementById("video");
                 return v && v.readyState >= 2 && !v.paused && v.videoWidth > 0 &&
                        v.getVideoPlaybackQuality().totalVideoFrames >= n; }""",
            arg=frames,
            timeout=timeout * 1000,
        )
        return time.monotonic() - t0

    def video_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.page.evaluate(
            """() => { const v = document.getElementById("video");
                 const q = v.getVideoPlaybackQuality();
                 return { width: v.videoWidth, height: v.videoHeight, currentTime: v.currentTime,
                          paused: v.paused, frames: q.totalVideoFrames,
                          dropped: q.droppedVideoFrames }; }"""
        )
        return info

    def frame(self, save: Path | None = None) -> np.ndarray:
        """The video's current frame (RGB uint8), optionally saved as PNG."""
        result = self.page.evaluate(_FRAME_JS)
        if result is None:
            raise RuntimeError("the video has no frame yet")
        data = base64.b64decode(result["png"].split(",", 1)[1])
        if save is not None:
            save.write_bytes(data)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)

    # -- events -------------------------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.page.evaluate("() => window.talkieEvents || []")
        return events

    def wait_event(self, js_predicate: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for an event matching ``js_predicate`` (JS expression over ``e``), return it."""
        handle = self.page.wait_for_function(
            f"() => (window.talkieEvents || []).find((e) => {js_predicate})",
            timeout=timeout * 1000,
        )
        event: dict[str, Any] = handle.json_value()
        return event

    def send(self, event: dict[str, Any]) -> bool:
        sent: bool = self.page.evaluate("(e) => window.talkie.send(e)", event)
        return sent

    def say(self, text: str) -> None:
        """Type a message in the page's text box and send it."""
        self.page.fill("#say-text", text)
        self.page.press("#say-text", "Enter")

    # -- audio --------------------------------------------------------------------------------

    def start_meter(self) -> None:
        """Sample the audio levels (RMS) of the character and of the microphone in the page."""
        self.page.wait_for_function(_METER_JS, timeout=10_000)

    def levels(self, which: str = "remote") -> np.ndarray:
        """(N, 2): page time in ms and RMS level, every 10 ms, of the character's audio
        (``remote``) or of the local microphone as sent (``mic``), since ``start_meter``."""
        data = self.page.evaluate(
            "(w) => { const m = window.__talkieMeter && window.__talkieMeter.meters[w];"
            " return m ? m.levels : []; }",
            which,
        )
        return np.asarray(data, dtype=np.float64).reshape(-1, 2)

    def now_ms(self) -> float:
        t: float = self.page.evaluate("() => performance.now()")
        return t

    def start_recording(self) -> float:
        """Record the received audio (webm/opus) with MediaRecorder; returns the page time."""
        t0: float = self.page.evaluate(_RECORD_START_JS)
        return t0

    def stop_recording(self) -> bytes:
        return base64.b64decode(self.page.evaluate(_RECORD_STOP_JS))

    def close(self) -> None:
        self.context.close()


def decode_webm_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Recorded webm/opus -> mono float32 samples and their rate."""
    import av

    chunks: list[np.ndarray] = []
    rate = 48_000
    with av.open(io.BytesIO(data), mode="r", format="webm") as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            arr = frame.to_ndarray().astype(np.float32)
            if frame.format.is_planar:
                arr = arr.mean(axis=0)
            else:
                arr = arr.reshape(-1, len(frame.layout.channels)).mean(axis=1)
            chunks.append(arr)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return samples, rate


def turn_latency_ms(mic: np.ndarray, remote: np.ndarray, *, threshold: float = 0.02) -> float:
    """Browser-side turn latency: the end of the user's speech (last loud microphone sample)
    to the first loud sample of the character's audio after it, in ms (NaN if none)."""
    loud_mic = mic[mic[:, 1] > threshold]
    if not loud_mic.size:
        return float("nan")
    speech_end = loud_mic[-1, 0]
    after = remote[(remote[:, 0] > speech_end) & (remote[:, 1] > threshold)]
    return float(after[0, 0] - speech_end) if after.size else float("nan")
