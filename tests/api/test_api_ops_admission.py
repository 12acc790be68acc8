"""A full server refuses with 503 and Retry-After at both doors: creating a session (admission,
with the reason, the numbers and a place in the line) and sending an offer for a session created
before it filled (the registry's slots). Then the line: first come, first served, places kept
with the ticket, a slot held for the one admitted while it sends its offer."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.server.app import ServerOptions, create_app
from talkie.server.ops import AdmissionOptions, OpsOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from client_harness import offer_sdp  # noqa: E402
from live_fakes import FakeConversation  # noqa: E402


def test_a_full_server_says_when_to_come_back(tmp_path: Path) -> None:
    app = create_app(
        options=ServerOptions(
            data_dir=tmp_path,
            max_sessions=1,
            ops=OpsOptions(admission=AdmissionOptions(queue_hold=1.0)),
        ),  # fmt: skip
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
        error = refused.json()["error"]
        ticket1 = error["queue"]["ticket"]
        assert error | {"message": "", "queue": {}} == {
            "code": "busy", "message": "", "reason": "max_sessions", "live": 1, "limit": 1,
            "retry_after": 10, "queue": {},
        }  # fmt: skip
        assert error["queue"]["position"] == 1
        assert "try again in 10 s with your queue ticket" in error["message"]
        # a session created before the server filled: its offer is refused the same way
        late = offer(second)
        error_of(late, 503, "busy")
        assert late.headers["Retry-After"] == "10"
        ops = admin.get("/v1/admin/ops").json()
        assert ops["capacity"]["admission"]["admitted"] is False
        assert ops["capacity"]["live"] == 1 and ops["capacity"]["max"] == 1

        def create(ticket: str | None = None) -> Any:
            headers = {"Talkie-Queue-Ticket": ticket} if ticket else {}
            return admin.post("/v1/sessions", json={"character_id": "astronaut"}, headers=headers)

        def place(r: Any) -> tuple[str, int]:
            error_of(r, 503, "busy")
            queue = r.json()["error"]["queue"]
            return queue["ticket"], queue["position"]

        ticket2, position = place(create())
        assert position == 2
        assert place(create(ticket2)) == (ticket2, 2)  # the ticket keeps its place
        assert place(create(ticket1)) == (ticket1, 1)
        assert admin.get("/v1/admin/ops").json()["capacity"]["waiting"] == 2
        # the live session ends: one slot, for the first in line only
        assert admin.delete(f"/v1/sessions/{first['session']['id']}").status_code == 200
        behind = create(ticket2)
        assert place(behind) == (ticket2, 2)
        assert behind.json()["error"]["reason"] == "queue"
        assert "1 person is waiting before you" in behind.json()["error"]["message"]
        assert create(ticket1).status_code == 201
        # its slot is held while it sends its offer; then the next in line gets it
        assert place(create(ticket2)) == (ticket2, 1)
        time.sleep(1.2)  # the hold (1 s) lapses: that session never sent its offer
        assert create(ticket2).status_code == 201
        ticket3, position = place(create())  # a newcomer: the slot is held for ticket 2's offer
        assert position == 1
        time.sleep(1.2)
        assert create(ticket3).status_code == 201
        m = admin.get("/metrics").text
        assert 'talkie_admission_refused_total{reason="queue"} 1.0' in m
        assert 'talkie_admission_refused_total{reason="max_sessions"} 6.0' in m
        assert "talkie_admission_waiting 0.0" in m
