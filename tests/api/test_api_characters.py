"""/v1/characters against the real app: create from a photo, read, list, update, delete."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from api_testutil import error_of, png_bytes
from fastapi.testclient import TestClient
from PIL import Image


@pytest.fixture(scope="module")
def created(admin: TestClient, face_png: bytes) -> dict[str, Any]:
    tools = [
        {
            "name": "show_product",
            "description": "Show a product card on the page",
            "kind": "ui",
            "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}},
            "examples": ["show me the blue kettle"],
        }
    ]
    r = admin.post(
        "/v1/characters",
        files={"image": ("me.png", face_png, "image/png")},
        data={
            "name": "Mirror Nova",
            "greeting": "Hello from the mirror!",
            "language": "en-GB",
            "voice": "espeak:en-gb+f3",
            "tools": json.dumps(tools),
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_create_stores_everything_given(created: dict[str, Any]) -> None:
    assert created["id"].startswith("ch_")
    assert created["name"] == "Mirror Nova" and created["sample"] is False
    assert created["greeting"] == "Hello from the mirror!"
    assert created["language"] == "en-GB" and created["voice"] == "espeak:en-gb+f3"
    assert created["tools"][0]["name"] == "show_product"
    assert "Mirror Nova" in created["system_prompt"]  # a default persona built from the name
    assert created["rig_source"] == "detected"


def test_get_list_and_preview(admin: TestClient, created: dict[str, Any]) -> None:
    got = admin.get(f"/v1/characters/{created['id']}").json()
    assert got == created
    listed = admin.get("/v1/characters").json()
    ids = [c["id"] for c in listed["characters"]]
    assert ids[0] == "astronaut" and created["id"] in ids  # samples first
    r = admin.get(created["preview_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    preview = Image.open(io.BytesIO(r.content))
    assert preview.size == (640, 360)
    error_of(admin.get("/v1/characters/ch_nobody"), 404, "unknown_character")
    error_of(admin.get("/v1/characters/ch_nobody/preview.jpg"), 404, "unknown_character")


def test_pagination_walks_every_character_once(admin: TestClient, face_png: bytes) -> None:
    for i in range(3):
        r = admin.post(
            f"/v1/characters?name=Page{i}", content=face_png, headers={"content-type": "image/png"}
        )  # a raw image body with the fields in the query (curl-friendly)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == f"Page{i}"
    everything = [c["id"] for c in admin.get("/v1/characters?limit=100").json()["characters"]]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/characters?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = admin.get(url).json()
        assert len(page["characters"]) <= 2
        seen += [c["id"] for c in page["characters"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(seen) == len(set(seen)) >= 4
    error_of(admin.get("/v1/characters?cursor=garbage!"), 400)
    error_of(admin.get("/v1/characters?limit=0"), 400, "invalid_request")
    error_of(admin.get("/v1/characters?limit=abc"), 400, "invalid_request")


def test_update_changes_only_the_given_fields(admin: TestClient, created: dict[str, Any]) -> None:
    url = f"/v1/characters/{created['id']}"
    r = admin.patch(url, json={"greeting": "Good day!", "knowledge": "We open at nine."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["greeting"] == "Good day!" and body["knowledge"] == "We open at nine."
    assert body["name"] == created["name"] and body["updated_at"] > created["updated_at"]
    assert admin.get(url).json()["greeting"] == "Good day!"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": "x"}, "nickname"),
        ({"name": 42}, "name"),
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"greeting": "y" * 5000}, "greeting"),
        ({"system_prompt": "z" * 20_001}, "system_prompt"),
        ({"language": "english!"}, "language"),
        ({"voice": "piper:/etc/passwd"}, "voice"),
        ({"tools": [{"name": "x"}]}, "tools"),
        ({"tools": "not a list"}, "tools"),
        ({"tools": [{"name": "a b", "description": "d", "kind": "ui"}]}, "tools"),
        ({"tools": [{"name": "hook", "description": "d", "kind": "webhook"}]}, "tools"),
    ],
)
def test_bad_updates_are_400_naming_the_field(
    admin: TestClient, created: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    message = error_of(admin.patch(f"/v1/characters/{created['id']}", json=body), 400)
    assert field in message, message


def test_bad_create_fields_are_400_naming_the_field(admin: TestClient, face_png: bytes) -> None:
    image = {"image": ("me.png", face_png, "image/png")}
    for data, field in [
        ({"nickname": "x"}, "nickname"),
        ({"tools": "[not json"}, "tools"),
        ({"language": "??"}, "language"),
        ({"name": "n" * 300}, "name"),
    ]:
        message = error_of(admin.post("/v1/characters", files=image, data=data), 400)
        assert field in message, (data, message)


def test_samples_are_read_only(admin: TestClient) -> None:
    error_of(admin.patch("/v1/characters/astronaut", json={"name": "X"}), 403, "read_only")
    error_of(admin.delete("/v1/characters/astronaut"), 403, "read_only")


def test_no_face_waits_for_face_points(admin: TestClient) -> None:
    import numpy as np

    flat = png_bytes(np.full((300, 300, 3), 128, np.uint8))
    r = admin.post("/v1/characters", files={"image": ("f.png", flat, "image/png")})
    assert r.status_code == 201, r.text  # kept, in the needs_rig state (tests/api/test_api_rig.py)
    assert r.json()["status"] == "needs_rig" and "no face found" in r.json()["rig_problem"]
    admin.delete(f"/v1/characters/{r.json()['id']}")


def test_delete_removes_the_character_and_its_unshared_media(
    admin: TestClient, data_dir: Path
) -> None:
    from skimage import data

    photo = png_bytes(data.astronaut()[40:, 20:])  # its own bytes: nothing else shares them
    r = admin.post("/v1/characters", files={"image": ("del.png", photo, "image/png")})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    import hashlib

    image_file = data_dir / "media" / hashlib.sha256(photo).hexdigest()[:2]
    image_file = image_file / hashlib.sha256(photo).hexdigest()
    assert image_file.exists()
    assert admin.delete(f"/v1/characters/{cid}").status_code == 204
    error_of(admin.get(f"/v1/characters/{cid}"), 404)
    error_of(admin.delete(f"/v1/characters/{cid}"), 404)
    assert not image_file.exists()


def test_openapi_and_docs_are_served(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["info"]["title"] == "Talkie"
    for path in ("/v1/characters", "/v1/sessions", "/v1/keys", "/v1/health", "/v1/version"):
        assert path in spec["paths"], path
    create = spec["paths"]["/v1/characters"]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert api.get("/docs/assets/swagger-ui-bundle.js").status_code == 200  # no CDN needed
    version = api.get("/v1/version").json()
    assert version["api"] == "v1" and version["schema_version"] >= 1


def test_guardrails_are_stored_and_reach_the_live_character(
    admin: TestClient, created: dict[str, Any]
) -> None:
    url = f"/v1/characters/{created['id']}"
    policy = {"blocked_topics": ["politics"], "blocked_words": ["casino"], "refusal": "No."}
    r = admin.patch(url, json={"guardrails": policy})
    assert r.status_code == 200, r.text
    assert admin.get(url).json()["guardrails"]["blocked_words"] == ["casino"]
    loaded = admin.app.state.services.characters.load(created["id"])  # type: ignore[attr-defined]
    assert loaded.guardrails.violation("any casino nearby?") == "casino"
    for bad in ({"blocked_words": ["!!"]}, {"refusal": ""}, {"block": ["x"]}):
        assert "guardrails" in error_of(admin.patch(url, json={"guardrails": bad}), 400)
