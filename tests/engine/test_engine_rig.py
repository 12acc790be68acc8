"""Rig: one image -> landmarks on the face, a mesh that covers the frame, matte, plate, file."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from talkie.errors import InvalidInputError, NoFaceFoundError
from talkie.rig import CharacterRig, build_rig, load_rig
from talkie.rig.preview import draw_rig_preview


def _in_source(rig: CharacterRig, pts: np.ndarray) -> np.ndarray:
    x0, y0, scale = rig.crop
    return pts[:, :2] / scale + np.array([x0, y0])


def test_landmarks_fall_on_the_face(astronaut: np.ndarray, astronaut_rig: CharacterRig) -> None:
    # Independent check: OpenCV's Haar cascade box for the astronaut's face.
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    (x, y, w, h), *_ = cascade.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))
    pts = _in_source(astronaut_rig, astronaut_rig.face.points)
    centre = pts.mean(axis=0)
    assert x < centre[0] < x + w and y < centre[1] < y + h
    regions = astronaut_rig.mesh.regions
    eyes_y = pts[np.concatenate([regions["right_eye_upper"], regions["left_eye_upper"]]), 1].mean()
    mouth_y = pts[regions["inner_lip_upper"], 1].mean()
    chin_y = pts[regions["chin"], 1].mean()
    assert eyes_y < mouth_y < chin_y
    # The character's right eye is on the image's left.
    assert pts[regions["right_eye_upper"], 0].mean() < pts[regions["left_eye_upper"], 0].mean()
    assert astronaut_rig.face.source == "mediapipe"


def test_mesh_covers_the_whole_working_image(astronaut_rig: CharacterRig) -> None:
    w, h = astronaut_rig.size
    covered = np.zeros((h, w), np.uint8)
    verts = astronaut_rig.mesh.vertices[:, :2]
    for tri in astronaut_rig.mesh.triangles:
        cv2.fillConvexPoly(covered, np.round(verts[tri] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    assert covered[1:-1, 1:-1].all(), "every pixel must belong to a triangle (no holes)"
    assert astronaut_rig.mesh.layers.shape == (len(astronaut_rig.mesh.triangles),)


def test_matte_and_plate(astronaut_rig: CharacterRig) -> None:
    alpha = astronaut_rig.alpha
    pts = astronaut_rig.face.points[:, :2].astype(int)
    assert (alpha[pts[:, 1], pts[:, 0]] > 200).mean() > 0.98, "the face is part of the person"
    assert alpha[5, 5] < 50 or alpha[5, -5] < 50, "a corner of the photo is background"
    # Behind the head, the plate is filled from the surroundings, not the face itself.
    face_c = pts.mean(axis=0).astype(int)
    plate_px = astronaut_rig.plate[face_c[1], face_c[0]].astype(int)
    photo_px = astronaut_rig.image[face_c[1], face_c[0]].astype(int)
    assert np.abs(plate_px - photo_px).sum() > 30


def test_save_and_load_round_trip(astronaut_rig: CharacterRig, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a.rig"
    astronaut_rig.save(path)
    t0 = time.perf_counter()
    loaded = load_rig(path)
    load_s = time.perf_counter() - t0
    assert np.array_equal(loaded.image, astronaut_rig.image)
    assert np.array_equal(loaded.alpha, astronaut_rig.alpha)
    assert np.allclose(loaded.mesh.vertices, astronaut_rig.mesh.vertices)
    assert np.array_equal(loaded.mesh.triangles, astronaut_rig.mesh.triangles)
    assert set(loaded.mesh.regions) == set(astronaut_rig.mesh.regions)
    assert np.abs(loaded.plate.astype(int) - astronaut_rig.plate).mean() < 2  # JPEG inside
    print(f"rig load: {load_s * 1000:.1f} ms")  # measured in bench/engine.py, not asserted


def test_corrupt_rig_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.rig"
    path.write_bytes(b"not a rig")
    with pytest.raises(InvalidInputError, match="not a readable Talkie rig"):
        load_rig(path)


def test_group_photo_picks_the_most_prominent_face(astronaut: np.ndarray) -> None:
    canvas = np.full((1600, 2400, 3), 200, np.uint8)
    canvas[300:1000, 1400:2100] = cv2.resize(astronaut, (700, 700))
    canvas[600:930, 200:530] = cv2.resize(astronaut, (330, 330))
    rig = build_rig(canvas)
    centre = _in_source(rig, rig.face.points).mean(axis=0)
    assert 1400 < centre[0] < 2100 and 300 < centre[1] < 1000
    assert any("found 2 faces" in note for note in rig.notes)


def test_small_face_in_a_large_photo(astronaut: np.ndarray) -> None:
    huge = np.full((3000, 4000, 3), 120, np.uint8)
    huge[2000:2380, 3000:3380] = cv2.resize(astronaut, (380, 380))
    rig = build_rig(huge)
    centre = _in_source(rig, rig.face.points).mean(axis=0)
    assert 3000 < centre[0] < 3380 and 2000 < centre[1] < 2380
    assert max(rig.size) <= 4000 * rig.crop[2] + 1


@pytest.mark.parametrize("kind", ["cat", "blank", "noise"])
def test_no_face_is_a_clear_error(kind: str) -> None:
    from skimage import data

    rng = np.random.default_rng(0)
    image = {
        "cat": data.chelsea(),
        "blank": np.full((400, 600, 3), 128, np.uint8),
        "noise": rng.integers(0, 255, (400, 600, 3), dtype=np.uint8),
    }[kind]
    with pytest.raises(NoFaceFoundError, match="no face found"):
        build_rig(image)


def test_preview_draws_over_the_image(astronaut_rig: CharacterRig) -> None:
    preview = draw_rig_preview(astronaut_rig)
    assert preview.ndim == 3 and min(preview.shape[:2]) >= 900
    photo = cv2.resize(astronaut_rig.image, (preview.shape[1], preview.shape[0]))
    assert np.abs(preview.astype(int) - photo).mean() > 5  # something was drawn


def _variant(astronaut: np.ndarray, kind: str) -> np.ndarray:
    h, w = astronaut.shape[:2]
    if kind == "mirrored":
        return astronaut[:, ::-1].copy()
    if kind == "tilted":
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0)
        return cv2.warpAffine(astronaut, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if kind == "dark":
        return (astronaut * 0.35).astype(np.uint8)
    if kind == "grayscale":
        return np.repeat(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    if kind == "heavy jpeg":
        _, data = cv2.imencode(".jpg", astronaut, [cv2.IMWRITE_JPEG_QUALITY, 10])
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    if kind == "low resolution":
        return cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    if kind == "phone portrait":
        tall = np.pad(astronaut, ((300, 300), (0, 0), (0, 0)), mode="edge")
        return cv2.resize(tall, (540, 1100))
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind",
    ["mirrored", "tilted", "dark", "grayscale", "heavy jpeg", "low resolution", "phone portrait"],
)
def test_other_framings_and_lighting_still_rig_and_render(astronaut: np.ndarray, kind: str) -> None:
    from talkie.messages import FaceParams
    from talkie.render import MeshWarpRenderer

    image = np.ascontiguousarray(_variant(astronaut, kind))
    rig = build_rig(image)
    regions = rig.mesh.regions
    pts = rig.face.points
    eyes_y = pts[np.concatenate([regions["right_eye_upper"], regions["left_eye_upper"]]), 1].mean()
    assert eyes_y < pts[regions["inner_lip_upper"], 1].mean() < pts[regions["chin"], 1].mean()
    frame = MeshWarpRenderer(rig).render(FaceParams(jaw_open=0.7, head_yaw=4))
    assert frame.shape == (720, 1280, 3) and frame.std() > 10
