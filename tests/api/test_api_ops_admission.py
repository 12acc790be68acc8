"""A full server refuses with 503 and Retry-After at both doors: creating a session (admission,
with the reason and the numbers) and sending an offer for a session created before it filled
(the registry's slots)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.server.app import ServerOptions, create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from client_harness import offer_sdp  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402


def test_a_full_server_says_when_to_come_back(tmp_path: Path) -> None:
    app = create_app(
        options=ServerOptions(data_dir=tmp_path, max_sessions=1),
        conversation_factory=FakeConversation,
    )
    key = (tmp_path / "admin.key").read_text().strip()
    sdp = offer_sdp()
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as admin:
        first, second = (
            admin.post("/v1/sessions", json={"character_id": "astronaut"}).json() for _ in range(2)
        )

        def offer(created: dict[str, str]) -> Any:
            return admin.post(
                created["offer_url"], json={"sdp": sdp, "type": "offer"},
                headers={"Authorization": f"Bearer {created['token']}"},
            )  # fmt: skip

        answered = offer(first)
        assert answered.status_code == 200, answered.text
        # a new session: refused by admission, with the reason and the numbers
        refused = admin.post("/v1/sessions", json={"character_id": "astronaut"})
        error_of(refused, 503, "busy")
        assert refused.headers["Retry-After"] == "10"
        assert refused.json()["error"] | {"message": ""} == {
            "code": "busy", "message": "", "reason": "max_sessions", "live": 1, "limit": 1,
            "retry_after": 10,
        }  # fmt: skip
        # a session created before the server filled: its offer is refused the same way
        late = offer(second)
        error_of(late, 503, "busy")
        assert late.headers["Retry-After"] == "10"
        ops = admin.get("/v1/admin/ops").json()
        assert ops["capacity"]["admission"]["admitted"] is False
        assert ops["capacity"]["live"] == 1 and ops["capacity"]["max"] == 1
