"""The HTTP side of Talkie: REST API, WebRTC signalling, and the web client.

Endpoints (errors are always JSON: ``{"error": {"code": ..., "message": ...}}``):

- ``GET  /api/health``                          liveness and the live session count
- ``GET  /api/config``                          ICE servers and limits for the web client
- ``GET  /api/characters``                      sample and uploaded characters (id, name, preview)
- ``GET  /api/characters/{id}/preview.jpg``     the character's still, framed 16:9 like the video
- ``POST /api/characters``                      upload a photo (multipart: ``image``, ``name``)
- ``POST /api/sessions``                        ``{character_id, sdp, type}`` (a WebRTC offer)
                                                -> ``{sdp, type, session_id}`` (the answer)
- ``GET  /api/sessions``                        live sessions (small stats)
- ``DELETE /api/sessions/{id}``                 hang up
- ``/``                                          the web client (``web/``)
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from talkie import __version__
from talkie.errors import InvalidInputError, NoFaceFoundError, TalkieError
from talkie.server.errors import ApiError
from talkie.server.sessions import SessionLimitError, SessionRegistry
from talkie.server.uploads import read_upload
from talkie.session.contract import LiveConversation
from talkie.transport.webrtc import WebRtcOptions, WebRtcPeer, check_offer

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
MIB = 1024 * 1024
PREVIEW_SIZE = (640, 360)


class CharacterSource(Protocol):
    """What the server needs from a character library (``talkie.session.character``)."""

    def list(self) -> list[dict[str, object]]: ...

    def has(self, character_id: str) -> bool: ...

    async def get_async(self, character_id: str) -> Any: ...

    async def add_upload(self, data: bytes, *, name: str = "") -> Any: ...


ConversationFactory = Callable[[Any], LiveConversation]


@dataclass(frozen=True)
class ServerOptions:
    """Server settings (the character library and conversation factory are ``create_app``
    arguments so tests can swap them)."""

    max_sessions: int = 4
    max_upload_bytes: int = 15 * MIB
    max_concurrent_uploads: int = 2  # rigging is CPU-heavy; more uploads wait their turn
    answer_timeout: float = 30.0  # offer -> answer (includes starting the conversation)
    shutdown_timeout: float = 10.0
    webrtc: WebRtcOptions = field(default_factory=WebRtcOptions)
    web_dir: Path = WEB_DIR


class SessionRequest(BaseModel):
    character_id: str = Field(min_length=1, max_length=200)
    sdp: str = Field(min_length=1, max_length=100_000)
    type: str = Field(min_length=1, max_length=20)


def create_app(
    *,
    options: ServerOptions | None = None,
    library: CharacterSource | None = None,
    conversation_factory: ConversationFactory | None = None,
) -> FastAPI:
    """Build the FastAPI app. Defaults: the bundled character library and the real
    ``talkie.session.conversation.Conversation``."""
    opts = options or ServerOptions()
    registry = SessionRegistry(max_sessions=opts.max_sessions)
    previews: OrderedDict[str, bytes] = OrderedDict()
    upload_slots = asyncio.Semaphore(opts.max_concurrent_uploads)
    state: dict[str, Any] = {"library": library, "factory": conversation_factory}

    def get_library() -> CharacterSource:
        if state["library"] is None:
            from talkie.session.character import CharacterLibrary

            state["library"] = CharacterLibrary()
        lib: CharacterSource = state["library"]
        return lib

    def get_factory() -> ConversationFactory:
        if state["factory"] is None:
            state["factory"] = _default_conversation_factory
        factory: ConversationFactory = state["factory"]
        return factory

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.close_all("server shutdown", timeout=opts.shutdown_timeout)

    app = FastAPI(title="Talkie", version=__version__, lifespan=lifespan)
    app.state.registry = registry
    app.state.options = opts
    app.state.get_library = get_library
    _install_error_handlers(app)

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "sessions": len(registry),
            "max_sessions": opts.max_sessions,
        }

    @app.get("/api/config")
    async def client_config() -> dict[str, Any]:
        """What the web client needs to connect (ICE servers for clients outside the LAN)."""
        servers = [
            {k: v for k, v in vars(server).items() if v is not None}
            for server in opts.webrtc.ice_servers
        ]
        return {"ice_servers": servers, "max_upload_bytes": opts.max_upload_bytes}

    @app.get("/api/characters")
    async def list_characters() -> dict[str, Any]:
        items = [_character_json(c) for c in get_library().list()]
        return {"characters": items}

    @app.get("/api/characters/{character_id}/preview.jpg")
    async def preview(character_id: str) -> Response:
        data = previews.get(character_id)
        if data is None:
            lib = get_library()
            if not lib.has(character_id):
                raise ApiError(404, "unknown_character", f"no character with id {character_id!r}")
            character = await lib.get_async(character_id)
            data = await asyncio.to_thread(_framed_jpeg, character)
            previews[character_id] = data
            while len(previews) > 256:
                previews.popitem(last=False)
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"}
        )

    @app.post("/api/characters", status_code=201)
    async def upload_character(request: Request) -> dict[str, Any]:
        upload = await read_upload(request, max_bytes=opts.max_upload_bytes)
        async with upload_slots:
            character = await get_library().add_upload(upload.data, name=upload.name)
        log.info("uploaded character %s", character.id)
        return _character_json({"id": character.id, "name": character.name, "sample": False})

    @app.post("/api/sessions", status_code=201)
    async def create_session(body: SessionRequest) -> dict[str, Any]:
        lib = get_library()
        if not lib.has(body.character_id):
            raise ApiError(404, "unknown_character", f"no character with id {body.character_id!r}")
        check_offer(body.sdp, body.type)  # InvalidInputError -> 400, before any work
        with registry.reserve() as slot:  # SessionLimitError -> 503
            character = await lib.get_async(body.character_id)
            conversation = get_factory()(character)
            peer = WebRtcPeer(conversation, options=opts.webrtc, on_closed=registry.discard)
            registry.add(peer, slot)
            try:
                answer = await asyncio.wait_for(
                    peer.answer(body.sdp, body.type), timeout=opts.answer_timeout
                )
            except TimeoutError:
                await peer.close("answer timeout")
                raise ApiError(
                    503, "timeout", "the session could not start in time; try again"
                ) from None
        return {"sdp": answer.sdp, "type": answer.type, "session_id": peer.session_id}

    @app.get("/api/sessions")
    async def list_sessions() -> dict[str, Any]:
        return {"sessions": [p.stats() for p in registry.peers()]}

    @app.delete("/api/sessions/{session_id}", status_code=204)
    async def delete_session(session_id: str) -> Response:
        peer = registry.get(session_id)
        if peer is None:
            raise ApiError(404, "unknown_session", f"no live session {session_id!r}")
        await peer.close("client hung up")
        return Response(status_code=204)

    web_dir = Path(opts.web_dir)
    if web_dir.is_dir():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    else:
        log.warning("web client folder %s not found; serving the API only", web_dir)
    return app


def _default_conversation_factory(character: Any) -> LiveConversation:
    from talkie.session.conversation import Conversation, SessionOptions

    conversation: LiveConversation = Conversation(character=character, options=SessionOptions())
    return conversation


def _character_json(item: dict[str, object]) -> dict[str, Any]:
    cid = str(item["id"])
    return {
        "id": cid,
        "name": str(item.get("name") or cid),
        "sample": bool(item.get("sample", False)),
        "preview": f"/api/characters/{cid}/preview.jpg",
    }


def _framed_jpeg(character: Any) -> bytes:
    """The character as the video frames it (16:9), small, as JPEG."""
    from talkie.render.framing import frame_rig

    canvas = frame_rig(character.rig, PREVIEW_SIZE).canvas
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:  # pragma: no cover - only for invalid arrays
        raise RuntimeError("could not encode the preview")
    return bytes(data.tobytes())


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(SessionLimitError)
    async def busy(request: Request, exc: SessionLimitError) -> JSONResponse:
        return _error(503, "busy", str(exc))

    @app.exception_handler(TalkieError)
    async def talkie_error(request: Request, exc: TalkieError) -> JSONResponse:
        if isinstance(exc, NoFaceFoundError):
            return _error(422, "no_face", str(exc))
        if isinstance(exc, InvalidInputError):
            return _error(400, "invalid_input", str(exc))
        log.error("request failed: %s", exc)
        return _error(503, "engine_error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return _error(400, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal server error (see the server log)")
