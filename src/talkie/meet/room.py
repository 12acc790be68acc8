"""A small WebRTC meeting room: a signalling server and a page where browsers form a mesh.

For tests of the meeting bot, and as a demo: ``python -m talkie.meet.room --port 8090`` then
open ``http://127.0.0.1:8090/?room=demo&name=Ada`` in two tabs. Every participant sends its
camera and microphone to every other one and shows what it receives (``web/meet-room.js``).

The server only relays messages between the participants of one room over a WebSocket
(``/ws``): ``join`` -> ``welcome`` (your id, who is there) and ``joined`` to the others;
``signal`` (SDP, addressed ``to`` one participant) is passed on with ``from``; a closed socket
is ``left``. It keeps nothing; it is not meant to face the internet (no accounts, no TURN).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
MAX_MESSAGE = 64_000  # an SDP with every candidate is a few kB
MAX_PARTICIPANTS = 8  # a mesh: every participant encodes once per other participant
MAX_NAME = 60


@dataclass
class _Participant:
    id: str
    name: str
    socket: WebSocket


@dataclass
class Rooms:
    """The rooms in memory: name -> participants by id."""

    rooms: dict[str, dict[str, _Participant]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def roster(self, room: str) -> list[dict[str, str]]:
        return [{"id": p.id, "name": p.name} for p in self.rooms.get(room, {}).values()]

    async def broadcast(self, room: str, message: dict[str, Any], *, skip: str = "") -> None:
        for p in list(self.rooms.get(room, {}).values()):
            if p.id != skip:
                try:
                    await p.socket.send_json(message)
                except Exception:  # closing: its own handler removes it
                    log.debug("could not reach %s", p.id)

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        room = (ws.query_params.get("room") or "lobby")[:MAX_NAME]
        me: _Participant | None = None
        try:
            while True:
                raw = await ws.receive_text()
                if len(raw) > MAX_MESSAGE:
                    await ws.send_json({"type": "error", "message": "message too large"})
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    await ws.send_json({"type": "error", "message": "not JSON"})
                    continue
                if not isinstance(msg, dict):
                    continue
                if msg.get("type") == "join" and me is None:
                    members = self.rooms.setdefault(room, {})
                    if len(members) >= MAX_PARTICIPANTS:
                        await ws.send_json({"type": "error", "message": "the room is full"})
                        continue
                    name = str(msg.get("name") or "guest")[:MAX_NAME]
                    me = _Participant(f"p{next(self._ids)}", name, ws)
                    await ws.send_json({"type": "welcome", "id": me.id, "peers": self.roster(room)})
                    members[me.id] = me
                    await self.broadcast(
                        room, {"type": "joined", "id": me.id, "name": name}, skip=me.id
                    )
                elif msg.get("type") == "signal" and me is not None:
                    target = self.rooms.get(room, {}).get(str(msg.get("to")))
                    if target is not None:
                        await target.socket.send_json(
                            {
                                "type": "signal",
                                "from": me.id,
                                "name": me.name,
                                "data": msg.get("data"),
                            }
                        )
        except WebSocketDisconnect:
            pass
        finally:
            if me is not None:
                members = self.rooms.get(room, {})
                members.pop(me.id, None)
                if not members:
                    self.rooms.pop(room, None)
                await self.broadcast(room, {"type": "left", "id": me.id})


def room_app(web_dir: Path = WEB_DIR) -> Starlette:
    """The room server as an ASGI app (run it with uvicorn)."""
    rooms = Rooms()

    async def page(request: Any) -> Response:
        return FileResponse(web_dir / "meet-room.html")

    async def script(request: Any) -> Response:
        return FileResponse(web_dir / "meet-room.js", media_type="text/javascript")

    async def state(request: Any) -> Response:
        room = request.query_params.get("room") or "lobby"
        return JSONResponse({"room": room, "participants": rooms.roster(room)})

    async def ws(websocket: WebSocket) -> None:
        await rooms.serve(websocket)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/meet-room.js", script),
            Route("/state", state),
            WebSocketRoute("/ws", ws),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="a small WebRTC meeting room (a mesh)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    print(f"room: http://{args.host}:{args.port}/?room=demo&name=Ada", flush=True)
    uvicorn.run(room_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
