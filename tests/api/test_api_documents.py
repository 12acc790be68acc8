"""/v1/characters/{id}/documents: a character's knowledge base through the API, and the live
character answering from it (built-in brain, naming the source)."""

from __future__ import annotations

from typing import Any

import pytest
from api_testutil import error_of
from fastapi.testclient import TestClient

from talkie.brain import load_brain

POLICY = """# Travel policy

## Booking flights
Book economy class for flights under six hours. Business class is allowed for longer flights.

## Hotel limits
Hotels may cost up to 180 euros per night in large cities and 120 euros elsewhere.
"""


@pytest.fixture(scope="module")
def character(admin: TestClient, face_png: bytes) -> dict[str, Any]:
    r = admin.post("/v1/characters?name=Helper", content=face_png,
                   headers={"content-type": "image/png"})  # fmt: skip
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _put(admin: TestClient, cid: str, doc: str, text: str, ctype: str = "text/markdown") -> Any:
    return admin.put(
        f"/v1/characters/{cid}/documents/{doc}", content=text.encode(),
        headers={"content-type": ctype},
    )  # fmt: skip


def test_upload_search_replace_delete(admin: TestClient, character: dict[str, Any]) -> None:
    cid = character["id"]
    r = _put(admin, cid, "travel", POLICY)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["source"] == "travel.md" and doc["title"] == "Travel policy"
    assert doc["passages"] >= 2
    listed = admin.get(f"/v1/characters/{cid}/documents").json()["documents"]
    assert [d["id"] for d in listed] == ["travel"]
    hits = admin.get(f"/v1/characters/{cid}/search", params={"q": "how much can a hotel cost"})
    top = hits.json()["passages"][0]
    assert "180 euros" in top["text"] and top["heading"].endswith("Hotel limits")

    # the live character's brain answers from it and names the source
    service = admin.app.state.services.characters  # type: ignore[attr-defined]
    loaded = service.load(cid)
    brain = load_brain("builtin", persona=loaded.persona, retriever=loaded.knowledge)

    async def ask(question: str) -> str:
        return "".join([d async for d in brain.reply([], question)])

    import asyncio

    answer = asyncio.run(ask("What is the hotel limit in big cities?"))
    assert "180" in answer and "travel" in answer.lower(), answer

    # replacing the document replaces its passages
    r = _put(admin, cid, "travel", "# Travel policy\n\nHotels may cost up to 250 euros a night.")
    assert r.status_code == 200 and r.json()["passages"] == 1
    hits = admin.get(f"/v1/characters/{cid}/search", params={"q": "hotel cost per night"})
    texts = " ".join(p["text"] for p in hits.json()["passages"])
    assert "250" in texts and "180" not in texts

    assert admin.delete(f"/v1/characters/{cid}/documents/travel").status_code == 204
    assert admin.get(f"/v1/characters/{cid}/documents").json()["documents"] == []
    hits = admin.get(f"/v1/characters/{cid}/search", params={"q": "hotel cost per night"})
    assert hits.json()["passages"] == []
    assert asyncio.run(ask("What is the hotel limit?")) and loaded.knowledge.search("hotel") == []
    error_of(admin.delete(f"/v1/characters/{cid}/documents/travel"), 404, "unknown_document")


def test_bad_documents_are_4xx(admin: TestClient, character: dict[str, Any]) -> None:
    cid = character["id"]
    error_of(_put(admin, cid, "x", "hello", "application/pdf"), 415, "unsupported_type")
    error_of(_put(admin, cid, "x", ""), 400)
    error_of(_put(admin, cid, "x", "# Only a heading"), 400)
    r = admin.put(f"/v1/characters/{cid}/documents/bin", content=b"\x00\xff\xfe" * 100,
                  headers={"content-type": "text/plain"})  # fmt: skip
    error_of(r, 400)
    big = "word " * 500_000
    error_of(_put(admin, cid, "big", big, "text/plain"), 413, "too_large")
    assert _put(admin, cid, "../etc", "hello there").status_code in (404, 405)  # not a route
    error_of(_put(admin, cid, "-bad", "hello there"), 400)
    error_of(_put(admin, "astronaut", "x", "hello there"), 403, "read_only")
    error_of(_put(admin, "ch_nobody", "x", "hello there"), 404, "unknown_character")


def test_deleting_a_character_deletes_its_documents(admin: TestClient, face_png: bytes) -> None:
    r = admin.post("/v1/characters?name=Temp", content=face_png,
                   headers={"content-type": "image/png"})  # fmt: skip
    cid = r.json()["id"]
    assert _put(admin, cid, "notes", "Our office opens at nine.", "text/plain").status_code == 200
    assert admin.delete(f"/v1/characters/{cid}").status_code == 204
    kb = admin.app.state.services.knowledge()  # type: ignore[attr-defined]
    assert kb.list_documents(cid) == []
