"""A scripted OpenAI-compatible speech server with a voice library, for tests (stdlib HTTP)."""

from __future__ import annotations

import io
import json
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from talkie.voice import PiperTTS


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class FakeSpeechServer:
    """Speaks the requested text with the bundled voice; records every request."""

    def __init__(self, voice: PiperTTS) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_speech = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                entry = {"path": self.path, "auth": self.headers.get("Authorization"),
                         "type": self.headers.get("Content-Type", ""), "body": body}  # fmt: skip
                server.requests.append(entry)
                if self.path == "/v1/voices":
                    self.send_response(201)
                    self.end_headers()
                    return
                if self.path != "/v1/audio/speech" or server.fail_speech:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"model crashed")
                    return
                text = json.loads(body)["input"]
                clip = voice.synthesize_clause(text)
                data = wav_bytes(clip.audio, clip.sample_rate)
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
