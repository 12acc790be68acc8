"""Hostile HTTP requests from a raw socket (nothing buffered client-side), for the body-limit
tests and ``bench/hostile_requests.py``: send a huge or trickling body until the server answers,
and report its status and how many body bytes went out before it did."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass
class Outcome:
    status: int | None  # the status line's code, None if nothing came back
    sent: int  # body bytes the client managed to send before the answer (or the reset)


def hostile(
    port: int, method: str, path: str, *, headers: dict[str, str], total: int,
    chunked: bool = True, piece: int = MIB, pause: float = 0.0,
) -> Outcome:  # fmt: skip
    """Send up to ``total`` body bytes (chunked, or with Content-Length: ``total``) until the
    server answers; ``pause`` between pieces makes a trickle."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    sent = 0
    data = b"[" + b"1," * (piece // 2)  # JSON that never ends
    data = data[:piece]
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < total:
            readable, _, _ = select.select([sock], [], [], pause)
            if readable:
                break
            body = data[: total - sent]
            sock.sendall((b"%x\r\n" % len(body) + body + b"\r\n") if chunked else body)
            sent += len(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection after refusing: its answer is still readable
    try:
        answer = sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        answer = b""
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return Outcome(status, sent)


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (``VmHWM``: its peak); by default this one (a
    ``LiveServer`` runs in a thread of it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")
