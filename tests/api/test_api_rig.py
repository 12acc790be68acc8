"""A face the detector cannot use becomes a ``needs_rig`` character (201, with an id), gets a
first guess of its points, previews the mesh and a test animation for moved points, saves them
(errors name the point at fault), and only then can talk."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from api_testutil import error_of, png_bytes
from fastapi.testclient import TestClient

from talkie.quality.sample_faces import SampleFace, drawn_cat, emoji
from talkie.rig.manual import MANUAL_POINTS

OWN_ORIGIN = {"Origin": "http://testserver"}


def _create(client: TestClient, face: SampleFace, **headers: str) -> dict[str, Any]:
    r = client.post(
        "/v1/characters",
        files={"image": (f"{face.name}.png", png_bytes(face.image), "image/png")},
        data={"name": face.name},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _points(face: SampleFace) -> dict[str, Any]:
    assert face.points is not None
    return {"points": {k: {"x": x, "y": y} for k, (x, y) in face.points.items()}}


@pytest.fixture(scope="module")
def cat(admin: TestClient) -> dict[str, Any]:
    return _create(admin, drawn_cat())


def test_no_face_is_a_needs_rig_character_with_an_id(admin: TestClient, cat: dict) -> None:  # type: ignore[type-arg]
    assert cat["id"].startswith("ch_")
    assert cat["status"] == "needs_rig" and cat["rig_source"] == "needs_rig"
    assert "no face found" in cat["rig_problem"]
    listed = admin.get(f"/v1/characters/{cat['id']}").json()
    assert listed["status"] == "needs_rig" and listed["rig_problem"] is None
    # It has a card picture (the photo itself) but cannot talk yet.
    preview = admin.get(f"/v1/characters/{cat['id']}/preview.jpg")
    assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    message = error_of(
        admin.post("/v1/sessions", json={"character_id": cat["id"]}), 409, "needs_rig"
    )
    assert "face points" in message


def test_a_misread_face_needs_points_too(admin: TestClient) -> None:
    created = _create(admin, emoji())
    assert created["status"] == "needs_rig"
    assert "lips" in created["rig_problem"]


def test_the_editor_gets_a_guess_the_photo_and_the_mesh(admin: TestClient, cat: dict) -> None:  # type: ignore[type-arg]
    info = admin.get(f"/v1/characters/{cat['id']}/rig").json()
    assert info["status"] == "needs_rig" and info["source"] == "guess"
    assert info["guess"] == "features"
    opening = {"mouth_open_top", "mouth_open_bottom"}  # placed only for a mouth drawn open
    assert set(info["points"]) == set(MANUAL_POINTS) - opening
    assert [p["name"] for p in info["point_info"]] == list(MANUAL_POINTS)
    assert info["image_width"] == 640 and info["image_height"] == 480
    assert len(info["triangles"]) > 800 and "lips_outer" in info["outlines"]
    image = admin.get(info["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    # The guess is close to where the cat's points really are.
    truth = drawn_cat().points
    assert truth is not None
    err = np.mean(
        [
            np.hypot(info["points"][k]["x"] - x, info["points"][k]["y"] - y)
            for k, (x, y) in truth.items()
        ]
    )
    assert err < 20, err


def test_preview_fits_the_mesh_and_animates(admin: TestClient, cat: dict) -> None:  # type: ignore[type-arg]
    url = f"/v1/characters/{cat['id']}/rig/preview"
    fast = admin.post(url + "?frames=false", json=_points(drawn_cat())).json()
    assert len(fast["landmarks"]) == 478 and fast["frames"] == []
    chin = drawn_cat().points["chin"]  # type: ignore[index]
    assert np.hypot(*(np.array(fast["landmarks"][152]) - chin)) < 1.0  # exactly through the point
    full = admin.post(url, json=_points(drawn_cat())).json()
    assert full["frame_names"][:5] == ["rest", "half open", "open", "closed", "blink"]
    frames = [base64.b64decode(f.split(",", 1)[1]) for f in full["frames"]]
    assert all(f[:2] == b"\xff\xd8" for f in frames)
    assert frames[0] != frames[2]  # the mouth opened
    # Nothing was saved.
    assert admin.get(f"/v1/characters/{cat['id']}").json()["status"] == "needs_rig"


def test_bad_points_name_the_point(admin: TestClient, cat: dict) -> None:  # type: ignore[type-arg]
    url = f"/v1/characters/{cat['id']}/rig/preview?frames=false"
    body = _points(drawn_cat())
    left, right = body["points"]["mouth_left"], body["points"]["mouth_right"]
    body["points"]["mouth_left"], body["points"]["mouth_right"] = right, left  # swapped
    r = admin.post(url, json=body)
    error_of(r, 422, "bad_points")
    assert set(r.json()["error"]["points"]) == {"mouth_left", "mouth_right"}
    folded = _points(drawn_cat())
    folded["points"]["mouth_right"] = {"x": 328.0, "y": 292.0}  # dragged past the mouth's middle
    r = admin.put(f"/v1/characters/{cat['id']}/rig", json=folded)
    message = error_of(r, 422, "bad_points")
    assert "bend the face over itself" in message
    assert "mouth_right" in r.json()["error"]["points"]
    assert admin.get(f"/v1/characters/{cat['id']}").json()["status"] == "needs_rig"


def test_saving_the_points_makes_it_ready_to_talk(admin: TestClient) -> None:
    created = _create(admin, drawn_cat())
    rigged = admin.put(f"/v1/characters/{created['id']}/rig", json=_points(drawn_cat()))
    assert rigged.status_code == 200, rigged.text
    assert rigged.json()["status"] == "ready" and rigged.json()["rig_source"] == "manual"
    info = admin.get(f"/v1/characters/{created['id']}/rig").json()
    assert info["source"] == "manual" and info["status"] == "ready"
    assert abs(info["points"]["chin"]["y"] - drawn_cat().points["chin"][1]) < 1.0  # type: ignore[index]
    assert admin.post("/v1/sessions", json={"character_id": created["id"]}).status_code == 201


def test_the_pages_key_places_points_only_on_its_own_characters(
    api: TestClient, admin: TestClient
) -> None:
    key = api.get("/api/config").json()["api_key"]
    page = {"Authorization": f"Bearer {key}", **OWN_ORIGIN}
    mine = _create(api, drawn_cat(), **page)
    assert mine["status"] == "needs_rig"
    theirs = _create(admin, drawn_cat())
    body = _points(drawn_cat())
    url = "/v1/characters/{}/rig/preview?frames=false"
    assert api.post(url.format(mine["id"]), json=body, headers=page).status_code == 200
    error_of(api.post(url.format(theirs["id"]), json=body, headers=page), 403, "forbidden")
    assert api.put(f"/v1/characters/{mine['id']}/rig", json=body, headers=page).status_code == 200
    # A detected face is changed only with a secret key.
    error_of(api.put("/v1/characters/astronaut/rig", json=body, headers=page), 403)
