"""The meeting room (``talkie.meet.room``) in a background thread, and a person in it.

``RoomServer`` runs the room's signalling server on a free 127.0.0.1 port; ``RoomPerson`` is
one Chromium tab that joins a room with its (fake) camera and microphone and can read what it
receives from another participant: frames, getStats, audio levels.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import threading
import time
from typing import Any

import numpy as np
import uvicorn
from PIL import Image

from talkie.meet.room import room_app


class RoomServer:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(room_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="room", daemon=True
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RoomServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the room server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def room_url(self, room: str) -> str:
        return f"{self.url}/?room={room}"


_FRAME_OF = """
(name) => {
  const v = document.querySelector(`video[data-peer-name="${name}"]`);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement("canvas");
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  return c.toDataURL("image/png");
}
"""

# Levels (RMS every 10 ms) of what this person hears from `name` and of its own microphone.
_METER = """
(name) => {
  if (window.__meter) return true;
  const remote = window.room.streamOf(name);
  if (!remote || !remote.getAudioTracks().length || !window.room.local) return false;
  const ctx = new AudioContext();
  const meter = (stream) => {
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(stream).connect(analyser);
    return { analyser, buf: new Float32Array(analyser.fftSize), levels: [] };
  };
  const meters = { remote: meter(remote), mic: meter(window.room.local) };
  // Remote WebRTC audio reaches WebAudio only while it plays in a media element.
  const sink = new Audio(); sink.muted = true; sink.srcObject = remote; sink.play();
  setInterval(() => {
    const now = performance.now();
    for (const m of Object.values(meters)) {
      m.analyser.getFloatTimeDomainData(m.buf);
      let sum = 0;
      for (let i = 0; i < m.buf.length; i++) sum += m.buf[i] * m.buf[i];
      m.levels.push([now, Math.sqrt(sum / m.buf.length)]);
    }
  }, 10);
  window.__meter = meters;
  return true;
}
"""


class RoomPerson:
    """One person in the room: a tab of ``browser`` (launched with its fake microphone)."""

    def __init__(self, browser: Any, room_url: str, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.goto(f"{room_url}&name={name}")
        self.name = name

    def join(self) -> None:
        self.page.click("#join")
        self.page.wait_for_function("() => window.room.joined", timeout=20_000)

    def wait_for(self, name: str, timeout: float = 60.0, frames: int = 10) -> None:
        """Until ``name``'s video plays here (``frames`` decoded)."""
        self.page.wait_for_function(
            """([name, n]) => { const v = document.querySelector(`video[data-peer-name="${name}"]`);
                 return v && v.videoWidth > 0 &&
                   v.getVideoPlaybackQuality().totalVideoFrames >= n; }""",
            arg=[name, frames],
            timeout=timeout * 1000,
        )

    def frame_of(self, name: str) -> tuple[np.ndarray, bytes]:
        data = self.page.evaluate(_FRAME_OF, name)
        if data is None:
            raise RuntimeError(f"no frame from {name} yet")
        png = base64.b64decode(data.split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), png

    def inbound(self, name: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.page.evaluate("(n) => window.room.statsOf(n)", name)
        return stats

    def start_meter(self, name: str) -> None:
        self.page.wait_for_function(_METER, arg=name, timeout=10_000)

    def levels(self, which: str) -> np.ndarray:
        data = self.page.evaluate("(w) => window.__meter[w].levels", which)
        return np.asarray(data, dtype=np.float64).reshape(-1, 2)

    def close(self) -> None:
        self.context.close()
