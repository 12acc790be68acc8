"""`talkie serve`: run the web server (the CLI calls ``add_serve_command``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvicorn

from talkie.errors import InvalidInputError

log = logging.getLogger(__name__)


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``talkie`` command's subparsers (``argparse`` sub-parser action)."""
    serve_parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the live character server (open the printed address in a browser)"
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_parser.add_argument("--port", default=8000, type=int, help="port (8000; 0 = any free)")
    serve_parser.add_argument(
        "--max-sessions", default=4, type=int, help="live conversations at once (4)"
    )
    serve_parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server for clients outside the LAN, e.g. stun:stun.example.org:3478 "
        "(repeatable; none by default)",
    )
    serve_parser.add_argument(
        "--certfile", help="TLS certificate (PEM): browsers only allow the microphone over https "
        "(or on localhost), so serving other machines on the LAN needs one",
    )  # fmt: skip
    serve_parser.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    serve_parser.add_argument(
        "--data-dir", type=Path, default=None,
        help="database, media and the first admin key ($TALKIE_DATA_DIR, else ~/.talkie)",
    )  # fmt: skip
    serve_parser.add_argument(
        "--database-url", default=None,
        help="any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/talkie "
        "($TALKIE_DATABASE_URL; default: SQLite in the data folder)",
    )  # fmt: skip
    serve_parser.add_argument(
        "--public-url", default=None, metavar="URL",
        help="where people open the page when it is not this server's own address, e.g. "
        "https://talkie.example.org behind a proxy ($TALKIE_PUBLIC_URL): the page's key works "
        "only from there and from the listening address, never from a request's Host header",
    )  # fmt: skip
    serve_parser.add_argument(
        "--max-session-minutes", default=60.0, type=float, metavar="MIN",
        help="a session says goodbye and ends after this long (60; 0 = no limit)",
    )  # fmt: skip
    serve_parser.add_argument(
        "--idle-minutes", default=5.0, type=float, metavar="MIN",
        help="a session says goodbye and ends after this long without the user speaking or "
        "typing (5; 0 = no limit)",
    )  # fmt: skip
    serve_parser.add_argument(
        "--no-web-uploads", action="store_true",
        help="the bundled web page may only start conversations, not create characters "
        "(for servers reachable by strangers)",
    )  # fmt: skip
    serve_parser.add_argument(
        "--renderer", default="",
        help="how characters are drawn: meshwarp (the CPU default), an installed renderer "
        "plug-in, or package.module:factory ($TALKIE_RENDERER)",
    )  # fmt: skip
    hosts = serve_parser.add_argument_group(
        "where sessions run",
        "Each live session runs in a worker process of its own by default (a crash or a slow "
        "render in one cannot stall another); a Ray cluster spreads them over machines.",
    )
    hosts.add_argument(
        "--host-kind", choices=("process", "inprocess", "ray"), default="process",
        help="process: one worker process per session (default); inprocess: all in the "
        "server's process (smallest); ray: Ray actors on a cluster (pip install 'talkie[ray]')",
    )  # fmt: skip
    hosts.add_argument(
        "--warm", default=1, type=int, metavar="N",
        help="session workers kept started ahead of time, so a new session answers at once "
        "(process host; 1)",
    )  # fmt: skip
    hosts.add_argument(
        "--no-preload-models", dest="preload_models", action="store_false",
        help="warm workers only import the code, and load the speech models and the local LLM "
        "when their session starts (less memory per idle worker, ~10 s slower first answer)",
    )  # fmt: skip
    hosts.add_argument(
        "--ray-address", default=None, metavar="ADDRESS",
        help="the Ray cluster for --host-kind ray, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS, "
        "else a single-node Ray started here)",
    )  # fmt: skip
    webhooks = serve_parser.add_argument_group(
        "webhook tools",
        "Characters' webhook tools may only reach public addresses unless allowed here "
        "(loopback, private networks and cloud metadata are refused: SSRF). Secrets for "
        "webhooks are read from this server's environment (each tool names its variable).",
    )
    webhooks.add_argument(
        "--webhook-allow-private", action="store_true",
        help="allow loopback, private (RFC 1918/ULA), link-local and CGNAT addresses, for a "
        "deployment calling its own services (cloud metadata stays refused; "
        "$TALKIE_WEBHOOK_ALLOW_PRIVATE=1)",
    )  # fmt: skip
    webhooks.add_argument(
        "--webhook-allow-host", action="append", default=[], metavar="HOST",
        help="a host name trusted to resolve anywhere, e.g. crm.internal or *.corp.example "
        "(repeatable; $TALKIE_WEBHOOK_ALLOW_HOSTS, comma-separated)",
    )  # fmt: skip
    webhooks.add_argument(
        "--webhook-allow-network", action="append", default=[], metavar="CIDR",
        help="a network always allowed, e.g. 10.1.2.0/24 (repeatable; "
        "$TALKIE_WEBHOOK_ALLOW_NETWORKS, comma-separated)",
    )  # fmt: skip
    serve_parser.set_defaults(handler=_cmd_serve)
    return serve_parser


def _cmd_serve(args: argparse.Namespace) -> int:
    options = serve_options(args)
    serve(
        host=args.host, port=args.port, options=options,
        certfile=args.certfile, keyfile=args.keyfile,
    )  # fmt: skip
    return 0


def serve_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """``ServerOptions`` from the ``serve`` flags (and the environment); raises
    ``InvalidInputError`` naming the flag that is wrong."""
    from talkie.server.app import ServerOptions
    from talkie.transport.lifetime import SessionLimits
    from talkie.transport.webrtc import IceServer, WebRtcOptions

    env = os.environ if environ is None else environ
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port {args.port}: use a port between 1 and 65535")
    if args.max_sessions < 1:
        raise InvalidInputError("--max-sessions must be at least 1")
    if not 0 <= args.warm <= 64:
        raise InvalidInputError(f"--warm {args.warm}: use 0 (no pool) up to 64 workers")
    if args.host_kind == "ray":
        from talkie.server.hosts.ray_host import import_ray

        import_ray()  # a missing extra is said now, not at the first session
    if bool(args.certfile) != bool(args.keyfile):
        raise InvalidInputError("--certfile and --keyfile go together")
    for path in (args.certfile, args.keyfile):
        if path and not Path(path).is_file():
            raise InvalidInputError(f"{path}: no such file")
    from talkie.render import renderer_factory

    renderer_factory(args.renderer)  # an unknown renderer is refused now, not at the first call
    for flag, minutes in (("--max-session-minutes", args.max_session_minutes),
                          ("--idle-minutes", args.idle_minutes)):  # fmt: skip
        if not 0 <= minutes <= 7 * 24 * 60:
            raise InvalidInputError(f"{flag} {minutes:g}: use 0 (no limit) up to a week")
    limits = SessionLimits(
        max_duration=args.max_session_minutes * 60 or None,
        idle_timeout=args.idle_minutes * 60 or None,
    )
    return ServerOptions(
        renderer=args.renderer,
        max_sessions=args.max_sessions,
        webrtc=WebRtcOptions(
            ice_servers=tuple(IceServer(u) for u in args.ice_server), limits=limits
        ),
        public_url=public_url(args.public_url or env.get("TALKIE_PUBLIC_URL")),
        data_dir=args.data_dir,
        database_url=args.database_url,
        web_client_scopes=("sessions",) if args.no_web_uploads else ("characters", "sessions"),
        webhook=webhook_options(args, env),
        host_kind=args.host_kind,
        warm=args.warm,
        preload_models=args.preload_models,
        ray_address=args.ray_address or env.get("RAY_ADDRESS") or None,
    )


def public_url(url: str | None) -> str | None:
    """``--public-url`` checked: an http(s) address (its path, if any, is not needed)."""
    if not url:
        return None
    from talkie.server.auth import normalize_origin
    from talkie.server.errors import ApiError

    try:
        normalize_origin(url, strict=False)
    except ApiError:
        raise InvalidInputError(
            f"--public-url {url[:100]!r}: use the page's address, e.g. https://talkie.example.org"
        ) from None
    return url


def webhook_options(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """The webhook network policy from the ``--webhook-*`` flags and the environment (both
    count: a flag adds to what the environment allows). Raises ``InvalidInputError`` for a
    malformed network."""
    from talkie.brain.tools import WebhookOptions

    env = os.environ if environ is None else environ

    def listed(name: str) -> list[str]:
        return [item.strip() for item in env.get(name, "").split(",") if item.strip()]

    allow_private = env.get("TALKIE_WEBHOOK_ALLOW_PRIVATE", "").strip().lower()
    if allow_private not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        raise InvalidInputError(f"TALKIE_WEBHOOK_ALLOW_PRIVATE={allow_private[:20]!r}: use 1 or 0")
    return WebhookOptions(
        allow_private_networks=bool(args.webhook_allow_private)
        or allow_private in ("1", "true", "yes", "on"),
        allowed_hosts=tuple(dict.fromkeys(
            [*listed("TALKIE_WEBHOOK_ALLOW_HOSTS"), *args.webhook_allow_host]
        )),
        allowed_networks=tuple(dict.fromkeys(
            [*listed("TALKIE_WEBHOOK_ALLOW_NETWORKS"), *args.webhook_allow_network]
        )),
    )  # fmt: skip


class _Server(uvicorn.Server):
    """uvicorn, announcing the address (with the real port when 0 was asked) once it listens."""

    def __init__(self, config: uvicorn.Config, *, announce: bool = True) -> None:
        super().__init__(config)
        self.announce = announce
        self.port: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        port = self.config.port  # set once: a caller may poll ``port`` as soon as it is set
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                port = int(sock.getsockname()[1])
                break
        self.port = port
        if self.announce:
            host = self.config.host
            shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
            scheme = "https" if self.config.ssl_certfile else "http"
            print(f"Talkie is live at {scheme}://{shown}:{self.port}", flush=True)


def make_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: Any = None,
    announce: bool = True,
    certfile: str | None = None,
    keyfile: str | None = None,
    **app_kwargs: Any,
) -> _Server:
    """A uvicorn server for the Talkie app (``run()``/``serve()`` it; ``should_exit`` stops it).

    ``app_kwargs`` go to ``create_app`` (``conversation_factory``)."""
    from talkie.server.app import create_app

    app = create_app(options=options, **app_kwargs)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", ws="none",
        timeout_graceful_shutdown=5, ssl_certfile=certfile, ssl_keyfile=keyfile,
    )  # fmt: skip
    return _Server(config, announce=announce)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: Any = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Run the server until Ctrl-C, printing ``Talkie is live at http://HOST:PORT``."""
    server = make_server(host=host, port=port, options=options, certfile=certfile, keyfile=keyfile)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised Ctrl-C
        print("Talkie stopped", flush=True)
    except (OSError, SystemExit) as exc:  # uvicorn exits when it cannot bind
        if server.started:
            raise
        raise InvalidInputError(
            f"cannot listen on {host}:{port} (in use, or not an address of this machine); "
            "pick another --port or --host"
        ) from exc
