"""A small real HTTP server on 127.0.0.1 for the webhook tests (one thread per request).

Routes (any method):
  /echo            JSON {method, path, query, headers, body} of the request
  /text            text/plain reply
  /list            a JSON array
  /fail            500 with a JSON error body
  /missing         404 with a text body
  /badjson         application/json that is not JSON
  /slow?s=2        waits, then 200
  /big?n=100000    n bytes of text (Content-Length set; written in chunks until the client goes)
  /bomb?n=...      gzip-encoded zeros: small on the wire, n bytes decompressed
  /redirect?to=URL&code=302
  /loop            redirects to itself
  /leak            echoes the Authorization header back, as JSON and text
  /image.png       a small PNG picture (a product photo for UI tests)
"""

from __future__ import annotations

import gzip
import io
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeouts, cut responses) is expected here; anything else is a
        # bug in this helper and is printed.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _picture() -> bytes:
    """A 320x200 "product photo": a shoe-like shape on a soft gradient."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 200))
    draw = ImageDraw.Draw(image)
    for y in range(200):
        draw.line([(0, y), (320, y)], fill=(236 - y // 6, 231 - y // 8, 255 - y // 10))
    draw.rounded_rectangle((60, 95, 270, 150), radius=26, fill=(107, 77, 230))
    draw.polygon([(60, 120), (95, 60), (150, 60), (160, 100)], fill=(107, 77, 230))
    draw.rectangle((55, 145, 275, 160), fill=(40, 34, 60))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class HookServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

            def _handle(self) -> None:
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                record = {
                    "method": self.command,
                    "path": split.path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                with outer._lock:
                    outer.requests.append(record)
                route = getattr(
                    self, "route_" + split.path.strip("/").replace("-", "_").replace(".", "_"), None
                )
                if route is None:
                    self._send(404, "text/plain", b"no such route")
                else:
                    route(query, record)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def _send(
                self, status: int, ctype: str, data: bytes, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, "application/json", json.dumps(value).encode())

            def route_echo(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._json(200, record)

            def route_text(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._send(200, "text/plain; charset=utf-8", b"Your order is on its way.")

            def route_list(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._json(200, [1, 2, 3])

            def route_fail(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._json(500, {"error": "boom"})

            def route_missing(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._send(404, "text/plain", b"no such order")

            def route_badjson(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._send(200, "application/json", b"{not json")

            def route_slow(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                time.sleep(float(query.get("s", ["2"])[0]))
                self._json(200, {"slow": True})

            def route_big(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                n = int(query.get("n", ["100000"])[0])
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(n))
                self.end_headers()
                sent = 0
                try:
                    while sent < n:
                        chunk = b"x" * min(16384, n - sent)
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except OSError:
                    pass  # the client stopped reading: that is the point
                with outer._lock:
                    outer.big_sent = sent

            def route_bomb(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                n = int(query.get("n", ["10000000"])[0])
                data = gzip.compress(b"0" * n)
                self._send(200, "text/plain", data, {"Content-Encoding": "gzip"})

            def route_redirect(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                code = int(query.get("code", ["302"])[0])
                self._send(code, "text/plain", b"", {"Location": query["to"][0]})

            def route_loop(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._send(302, "text/plain", b"", {"Location": "/loop"})

            def route_image_png(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                self._send(200, "image/png", _picture())

            def route_leak(self, query: dict[str, list[str]], record: dict[str, Any]) -> None:
                auth = self.headers.get("Authorization", "")
                if query.get("as") == ["text"]:
                    self._send(200, "text/plain", f"you sent {auth}".encode())
                else:
                    self._json(200, {"you_sent": auth, "token": auth.removeprefix("Bearer ")})

        self.big_sent = 0
        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            # The TLS handshake happens when the handler's thread first reads, not in accept().
            self.server.socket = tls.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
