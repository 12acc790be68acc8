"""/v1/meetings refusals: who may send a character into a meeting, and which addresses.

Joining a real meeting (a browser on the server) is tested end to end in
tests/live/test_live_meet.py; here every refusal comes before any browser starts.
"""

from __future__ import annotations

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

ROOM = "/?room=standup"


def post(http: TestClient, **body: object) -> object:
    return http.post("/v1/meetings", json={"character_id": "astronaut", **body})


def test_meetings_need_a_key(api: TestClient) -> None:
    r = api.post("/v1/meetings", json={"character_id": "astronaut", "url": "https://x.org" + ROOM})
    error_of(r, 401)
    error_of(api.get("/v1/meetings"), 401)


@pytest.mark.parametrize(
    ("url", "code"),
    [("ftp://files.example.org/room", "invalid_url"),
     ("http://127.0.0.1:8090" + ROOM, "private_url"),
     ("http://localhost:8090" + ROOM, "private_url"),
     ("http://10.1.2.3" + ROOM, "private_url"),
     ("http://169.254.169.254" + ROOM, "private_url"),
     ("http://[::1]:8090" + ROOM, "private_url"),
     ("http://0x7f.1" + ROOM, "private_url")],
)  # fmt: skip
def test_addresses_that_are_not_public_meetings_are_refused(
    admin: TestClient, url: str, code: str
) -> None:
    error_of(post(admin, url=url), 400, code)


def test_bad_bodies_and_unknown_things_are_clear_errors(admin: TestClient) -> None:
    error_of(
        post(admin, url="https://meet.example.org/abc", client="skype"), 400, "invalid_request"
    )
    error_of(post(admin, url="https://8.8.8.8/abc"), 400, "unknown_client")  # no join script
    r = admin.post("/v1/meetings", json={"character_id": "nobody", "url": "https://a.org/"})
    error_of(r, 404, "unknown_character")
    error_of(admin.get("/v1/meetings/mt_nothing"), 404, "unknown_meeting")
    error_of(admin.delete("/v1/meetings/mt_nothing"), 404, "unknown_meeting")
    assert admin.get("/v1/meetings").json() == {"meetings": []}


def test_a_publishable_key_may_not_start_a_browser_on_the_server(admin: TestClient) -> None:
    r = admin.post(
        "/v1/keys",
        json={"name": "site", "scopes": ["sessions"], "publishable": True,
              "origins": ["https://site.example"]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    r = admin.post(
        "/v1/meetings",
        json={"character_id": "astronaut", "url": "https://8.8.8.8" + ROOM},
        headers={"Authorization": f"Bearer {secret}", "Origin": "https://site.example"},
    )
    error_of(r, 403, "forbidden")
