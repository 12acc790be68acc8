"""The HTTP side of Talkie: the /v1 REST API, WebRTC signalling, API docs and the web client.

- ``/v1/...``        the API (``routes_*.py``); OpenAPI at ``/openapi.json``, docs at ``/docs``
- ``/api/config``    what the bundled web client needs: ICE servers, limits, its publishable key
- ``/``              the web client (``web/``)

Errors are always JSON: ``{"error": {"code": ..., "message": ...}}``. State lives in the database
(SQLite in the data folder by default, or any SQLAlchemy URL) and the media folder beside it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from talkie import __version__
from talkie.brain.tools import WebhookOptions
from talkie.errors import InvalidInputError, NoFaceFoundError, TalkieError
from talkie.heap import trim_heap_forever
from talkie.server import (
    routes_admin,
    routes_characters,
    routes_chat,
    routes_documents,
    routes_embed,
    routes_meetings,
    routes_memory,
    routes_rig,
    routes_sessions,
    routes_voices,
)
from talkie.server.auth import Authenticator, create_key, normalize_origin
from talkie.server.characters import CharacterService
from talkie.server.context import Services
from talkie.server.errors import ApiError, describe_validation, error_response, errors
from talkie.server.guard import BodyTooLarge, BodyTooSlow, RequestGuard
from talkie.server.hosts import HostKind, make_host
from talkie.server.ops import HttpMetrics, Ops, OpsOptions
from talkie.server.ops import routes as routes_ops
from talkie.server.ratelimit import RateLimiter
from talkie.server.sessions import SessionLimitError, SessionRegistry
from talkie.server.voices import VoiceService
from talkie.session.character import SAMPLES_DIR
from talkie.session.contract import LiveConversation
from talkie.store import ADMIN_TENANT, MediaStore, Store
from talkie.transport.webrtc import WebRtcOptions

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
MIB = 1024 * 1024
ADMIN_KEY_FILE = "admin.key"
PENDING_SWEEP_SECONDS = 30.0

ConversationFactory = Callable[[Any], LiveConversation]


@dataclass(frozen=True)
class ServerOptions:
    """Server settings (the conversation factory is a ``create_app`` argument so tests can swap
    it). ``data_dir``: database, media and the first admin key (``$TALKIE_DATA_DIR`` or
    ``~/.talkie``); ``database_url``: any SQLAlchemy URL instead of the SQLite file
    (``$TALKIE_DATABASE_URL``). ``webhook``: where characters' webhook tools may connect (the
    SSRF policy; public addresses only by default) and their limits. Secrets for webhooks come
    from this server's environment (each tool names its variable), never from the API."""

    max_sessions: int = 4
    max_upload_bytes: int = 15 * MIB
    max_concurrent_uploads: int = 2  # rigging is CPU-heavy; more uploads wait their turn
    # offer -> answer (includes starting the conversation). A visitor beyond the warm pool
    # waits for a worker to load: 31-57 s on 2 cores beside a live session
    # (bench/session_hosts.py --hosts process-burst), so 30 s turned such visitors away.
    answer_timeout: float = 90.0
    shutdown_timeout: float = 10.0
    webrtc: WebRtcOptions = field(default_factory=WebRtcOptions)
    web_dir: Path = WEB_DIR
    data_dir: Path | None = None
    database_url: str | None = None
    samples_dir: Path | None = SAMPLES_DIR
    renderer: str = ""  # talkie.render.load_renderer spec ("": $TALKIE_RENDERER or meshwarp)
    # What the bundled web page may do (its publishable key): creating characters from the page
    # is on by default; `talkie serve --no-web-uploads` turns it off for public deployments.
    web_client_scopes: tuple[str, ...] = ("characters", "sessions")
    # Rate limits (429 with Retry-After): API requests per key or session token, and typed
    # messages per live session.
    requests_per_minute: int = 600
    request_burst: int = 60
    messages_per_minute: int = 20
    message_burst: int = 5
    webhook: WebhookOptions = field(default_factory=WebhookOptions)
    # Where people open the bundled page (e.g. https://talkie.example.org behind a proxy): its
    # key works from there and from the address the server listens on, never from whatever a
    # request's Host header claims.
    public_url: str | None = None
    # Meetings (/v1/meetings): each is a headless Chromium on this server. Addresses that are
    # not public are refused unless allowed (a local test room): the meeting page's scripts run
    # on this server's network.
    max_meetings: int = 2
    meetings_allow_private: bool = False
    # Seconds a request body may take to arrive, plus one second per 64 KiB (slow clients are
    # cut off with 408 rather than holding a request open).
    body_timeout: float = 30.0
    # Metrics, OpenTelemetry and admission by measured headroom (talkie.server.ops).
    ops: OpsOptions = field(default_factory=OpsOptions.from_env)
    # Where live sessions run (talkie.server.hosts): "inprocess" (this process: tests, tiny
    # installs), "process" (a worker process per session; `talkie serve`'s default) or "ray"
    # (actors on the Ray cluster at ray_address, else $RAY_ADDRESS). ``warm``: session workers
    # kept started ahead of time (process host); ``preload_models``: they also load the speech
    # models before their session.
    host_kind: HostKind = "inprocess"
    warm: int = 1
    ray_address: str | None = None
    preload_models: bool = False


def resolve_data_dir(configured: Path | None) -> Path:
    if configured is not None:
        return Path(configured)
    env = os.environ.get("TALKIE_DATA_DIR")
    return Path(env) if env else Path.home() / ".talkie"


def create_app(
    *,
    options: ServerOptions | None = None,
    conversation_factory: ConversationFactory | None = None,
) -> FastAPI:
    """Build the FastAPI app (opening the database and applying migrations). Default sessions
    run the real ``talkie.session.conversation.Conversation``."""
    opts = options or ServerOptions()
    data_dir = resolve_data_dir(opts.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url = opts.database_url or os.environ.get("TALKIE_DATABASE_URL")
    store = Store(url) if url else Store.in_folder(data_dir)
    media = MediaStore(data_dir / "media")
    characters = CharacterService(
        store=store, media=media, samples_dir=opts.samples_dir,
        max_concurrent_rigs=opts.max_concurrent_uploads, renderer=opts.renderer,
    )  # fmt: skip
    characters.seed_samples()
    stale = store.end_stale_sessions("server restarted")
    if stale:
        log.info("marked %d sessions of a previous run as ended", stale)
    svc = Services(
        store=store, media=media, characters=characters, auth=Authenticator(store),
        registry=SessionRegistry(max_sessions=opts.max_sessions), options=opts,
        conversation_factory=conversation_factory or RealConversations(opts.webhook),
        host=make_host(
            opts.host_kind, warm=opts.warm, ray_address=opts.ray_address,
            knowledge_path=data_dir / "knowledge.db", preload_models=opts.preload_models,
        ),
        limiter=RateLimiter(per_minute=opts.requests_per_minute, burst=opts.request_burst),
        message_limiter=RateLimiter(per_minute=opts.messages_per_minute, burst=opts.message_burst),
        knowledge_path=data_dir / "knowledge.db",
    )  # fmt: skip
    characters.knowledge = svc.knowledge
    svc.ops = Ops(
        store=store, registry=svc.registry, max_sessions=lambda: svc.registry.max_sessions,
        options=opts.ops,
    )  # fmt: skip
    voices = VoiceService(store=store, media=media)
    characters.voice_resolver = voices.resolve
    _ensure_admin_key(store, data_dir)
    svc.web_client_key = _web_client_key(
        store, frozenset(opts.web_client_scopes), public_url=opts.public_url
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start_local_llm()
        sweeper = asyncio.create_task(_expire_pending(svc), name="talkie-pending-sweep")
        # sessions of the in-process host free big buffers here (talkie.heap)
        trimmer = asyncio.create_task(trim_heap_forever(), name="talkie-heap-trim")
        svc.ops.start()
        await svc.host.prepare()  # e.g. start the warm pool of session workers
        try:
            yield
        finally:
            sweeper.cancel()
            trimmer.cancel()
            await svc.ops.stop()
            # Graceful drain: every session hangs up with a reason, then the host's workers stop.
            meetings = getattr(app.state, "meetings", None)
            if meetings is not None:  # the bots hang up before their sessions close
                await meetings.close_all()
            await svc.registry.close_all("server shutdown", timeout=opts.shutdown_timeout)
            await svc.host.close("server shutdown", timeout=opts.shutdown_timeout)
            await asyncio.to_thread(svc.close)
            await asyncio.to_thread(voices.close)

    app = FastAPI(
        title="Talkie", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Characters from one photo, live sessions over WebRTC, transcripts and "
        "traces. Authenticate with `Authorization: Bearer <key>` (see /v1/keys).",
    )  # fmt: skip
    app.state.services = svc
    app.state.registry = svc.registry
    app.state.host = svc.host
    app.state.options = opts
    # Credentials and body limits are checked before any route reads a body.
    app.add_middleware(RequestGuard, services=svc)
    app.add_middleware(HttpMetrics, metrics=svc.ops.metrics)
    app.state.voices = voices
    # Credentials travel in headers, never cookies, so any origin may call the API; publishable
    # keys are checked against their own allowed origins. Outermost, so refusals carry CORS
    # headers the page can read.
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "Talkie-Queue-Ticket"],
        max_age=600,
    )  # fmt: skip
    _install_error_handlers(app)
    app.include_router(routes_admin.router)
    app.include_router(routes_characters.router)
    app.include_router(routes_embed.router)
    app.include_router(routes_rig.router)
    app.include_router(routes_sessions.router)
    app.include_router(routes_documents.router)
    app.include_router(routes_memory.router)
    app.include_router(routes_voices.router)
    app.include_router(routes_voices.character_router)
    app.include_router(routes_chat.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_meetings.router)
    _mount_docs(app)
    _document_errors_as_served(app)

    @app.get("/api/config", include_in_schema=False)
    async def client_config() -> dict[str, Any]:
        """What the bundled web client needs (its key is publishable: bound to this origin)."""
        return {
            "ice_servers": routes_sessions.ice_servers(svc),
            "max_upload_bytes": opts.max_upload_bytes,
            "api_key": svc.web_client_key,
            "uploads": "characters" in opts.web_client_scopes,
        }

    web_dir = Path(opts.web_dir)
    if web_dir.is_dir():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    else:
        log.warning("web client folder %s not found; serving the API only", web_dir)
    return app


def start_local_llm() -> None:
    """Start loading the local LLM now, in the background, when it will be the brain: the first
    visitors should not get the built-in brain only because the model was still loading."""
    from talkie.brain import local_llm_available

    if os.environ.get("TALKIE_LLM_BASE_URL", "").strip() or not local_llm_available():
        return
    from talkie.brain.local.brain import shared_engine

    try:
        shared_engine()
    except TalkieError as exc:
        log.warning("the local LLM will not be used: %s", exc)


@dataclass(frozen=True)
class RealConversations:
    """The real ``Conversation``, with the server's settings for it (a picklable factory: the
    process and Ray hosts build conversations in other processes)."""

    webhook: WebhookOptions

    def __call__(self, character: Any) -> LiveConversation:
        from talkie.render.budget import video_budget_from_env
        from talkie.session.conversation import Conversation, SessionOptions

        # With TALKIE_VIDEO_BUDGET=1, a session started on a busy machine gets smaller or fewer
        # frames. Read where the session runs: a worker measures its own machine.
        options = SessionOptions(webhook=self.webhook, video_budget=video_budget_from_env())
        conversation: LiveConversation = Conversation(character=character, options=options)
        return conversation


def _ensure_admin_key(store: Store, data_dir: Path) -> None:
    """On first start (no admin key yet), create one and save it where only this user can read
    it, so `talkie keys ...` and the other CLI verbs work on this machine right away."""
    if any("admin" in k.scopes and k.kind == "secret" for k in store.list_keys()):
        return
    new = create_key(store, name="admin (first start)", scopes={"admin"})
    path = data_dir / ADMIN_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new.secret + "\n")
    log.warning("created the first admin API key (id %s); it is in %s", new.record.id, path)


def _web_client_key(store: Store, scopes: frozenset[str], *, public_url: str | None) -> str:
    """The bundled page's publishable key (the admin tenant's: the operator's characters).
    Publishable keys are public by design (they work only from their origins and cannot manage
    anything), so keeping the full key in the settings table is safe; it is rotated when the
    configured scopes or public URL change. Besides the public URL it works from the server's
    own listening address (see ``auth.server_origins``)."""
    origins = (normalize_origin(public_url, strict=False),) if public_url else ()
    saved = store.setting("web_client_key", "")
    key_id = saved.split("_")[1] if saved.count("_") >= 2 else ""
    record = store.get_key(key_id) if key_id else None
    if (
        record is not None and record.active and record.builtin and record.scopes == scopes
        and record.origins == origins and record.tenant == ADMIN_TENANT
    ):  # fmt: skip
        return saved
    if record is not None and record.active:
        store.revoke_key(record.id)
    new = create_key(
        store, name="bundled web client", scopes=set(scopes), publishable=True,
        origins=origins, builtin=True, tenant=ADMIN_TENANT,
    )  # fmt: skip
    store.set_setting("web_client_key", new.secret)
    return new.secret


async def _expire_pending(svc: Services) -> None:
    """Sessions whose token expired before the browser connected are ended."""
    from talkie.server.auth import SESSION_TOKEN_TTL

    while True:
        await asyncio.sleep(PENDING_SWEEP_SECONDS)
        try:
            await asyncio.to_thread(svc.store.expire_pending, SESSION_TOKEN_TTL)
        except Exception:
            log.exception("expiring pending sessions failed")


def _document_errors_as_served(app: FastAPI) -> None:
    """FastAPI documents request validation errors as 422 ``HTTPValidationError``; Talkie
    answers them with 400 and its own error body (422 means "photo without a face"). Make the
    published document say what the server does."""
    from fastapi.openapi.utils import get_openapi

    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    served = {
        status: {"description": entry["description"], "content": error_ref}
        for status, entry in errors(401, 403, 408, 413, 429).items()
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            for path in spec.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    ref = str(responses.get("422", {}).get("content", {}))
                    if "HTTPValidationError" in ref:
                        del responses["422"]
                    if operation.get("security"):  # every authenticated call can get these
                        for status in (401, 403, 429):
                            responses.setdefault(str(status), served[status])
                    if operation.get("requestBody"):  # RequestGuard: too large, too slow
                        for status in (408, 413):
                            responses.setdefault(str(status), served[status])
            for name in ("HTTPValidationError", "ValidationError"):
                spec.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from the bundled package (no CDN: the server may have no internet)."""
    try:
        import swagger_ui_bundle

        assets = Path(swagger_ui_bundle.swagger_ui_path)
    except ImportError:  # pragma: no cover - it is a dependency
        return
    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Talkie API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )  # fmt: skip


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BodyTooLarge)
    @app.exception_handler(BodyTooSlow)
    async def body_refused(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The rest of the body is still on its way: close rather than read it to the end.
        code = "too_large" if isinstance(exc, BodyTooLarge) else "body_timeout"
        return error_response(exc.status_code, code, str(exc.detail), {"Connection": "close"})

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.details)

    @app.exception_handler(SessionLimitError)
    async def busy(request: Request, exc: SessionLimitError) -> JSONResponse:
        return error_response(503, "busy", str(exc), {"Retry-After": "10"})

    @app.exception_handler(TalkieError)
    async def talkie_error(request: Request, exc: TalkieError) -> JSONResponse:
        if isinstance(exc, NoFaceFoundError):
            return error_response(422, "no_face", str(exc))
        if isinstance(exc, InvalidInputError):
            return error_response(400, "invalid_input", str(exc))
        log.error("request failed: %s", exc)
        return error_response(503, "engine_error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal server error (see the server log)")
