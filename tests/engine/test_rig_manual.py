"""Manual rig: the full face fitted to hand-placed points, for drawings where detection fails.

Checked on a real photo (points placed at its detected landmarks must give back the detected
face) and on a cartoon drawn here, which the detectors do not see: it must blink and open its
mouth cleanly. Every kind of bad point is a one-line error that names the point.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from talkie.cli import main as cli_main
from talkie.errors import InvalidInputError, NoFaceFoundError
from talkie.messages import FaceParams
from talkie.quality.sample_faces import CAT_PAPER as PAPER
from talkie.quality.sample_faces import EYE_GREEN, LIP_RED, draw_cat
from talkie.render import MeshWarpRenderer
from talkie.rig import CharacterRig, build_rig, build_rig_from_points, load_rig
from talkie.rig import topology as topo
from talkie.rig.manual import (
    MANUAL_POINTS,
    POINT_INFO,
    REQUIRED_POINTS,
    load_points,
    points_of_rig,
)

Points = dict[str, tuple[float, float]]


@pytest.fixture(scope="module")
def cat() -> tuple[np.ndarray, Points]:
    return draw_cat()


@pytest.fixture(scope="module")
def cat_rig(cat: tuple[np.ndarray, Points]) -> CharacterRig:
    return build_rig_from_points(*cat)


@pytest.fixture(scope="module")
def cat_renderer(cat_rig: CharacterRig) -> MeshWarpRenderer:
    return MeshWarpRenderer(cat_rig)


def _in_source(rig: CharacterRig) -> np.ndarray:
    x0, y0, scale = rig.crop
    return rig.face.points[:, :2] / scale + np.array([x0, y0])


def _polygon_mask(shape: tuple[int, ...], poly: np.ndarray, grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    if grow > 0:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    elif grow < 0:
        mask = cv2.erode(mask, np.ones((-2 * grow + 1, -2 * grow + 1), np.uint8))
    return mask > 0


def _near(frame: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return np.asarray(np.abs(frame.astype(int) - colour).max(axis=2) <= tol)


def _outer_lips(verts: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [verts[list(topo.OUTER_LIP_UPPER)], verts[list(topo.OUTER_LIP_LOWER)][::-1]]
    )


# -- a photo: the fit reproduces the detected face ---------------------------------------------


@pytest.mark.parametrize("which", ["all points", "required points"])
def test_points_on_a_photo_give_back_its_detected_landmarks(
    astronaut: np.ndarray, astronaut_rig: CharacterRig, which: str
) -> None:
    placed = points_of_rig(astronaut_rig)
    if which == "required points":
        placed = {n: placed[n] for n in REQUIRED_POINTS}
    rig = build_rig_from_points(astronaut, placed)
    assert rig.face.source == "manual"
    assert rig.face.points.shape == (topo.N_FACE_LANDMARKS, 3)
    detected, fitted = _in_source(astronaut_rig), _in_source(rig)
    err = np.linalg.norm(fitted - detected, axis=1)
    eye_distance = float(np.linalg.norm(detected[33] - detected[263]))
    print(
        f"{which}: fitted vs detected landmarks, median {np.median(err):.2f} px, "
        f"p90 {np.percentile(err, 90):.2f} px, max {err.max():.2f} px "
        f"(eye corners {eye_distance:.0f} px apart)"
    )
    assert np.median(err) < 2.5
    assert np.percentile(err, 90) < 8.0
    # Every placed point lands exactly where it was placed.
    for name, (x, y) in placed.items():
        assert np.allclose(fitted[POINT_INFO[name].landmark], (x, y), atol=0.05), name


def test_manual_photo_rig_opens_its_mouth(
    astronaut: np.ndarray, astronaut_rig: CharacterRig
) -> None:
    rig = build_rig_from_points(astronaut, points_of_rig(astronaut_rig))
    renderer = MeshWarpRenderer(rig)
    rest = renderer.render(FaceParams())
    assert np.array_equal(rest, renderer.stage.canvas), "at rest the frame is the photo"
    params = FaceParams(jaw_open=0.8)
    frame = renderer.render(params)
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8 and frame.std() > 10
    mouth = _polygon_mask(frame.shape, _outer_lips(renderer.deformed_vertices(params)), grow=4)
    inner = np.concatenate(
        [renderer.rest[list(topo.INNER_LIP_UPPER)], renderer.rest[list(topo.INNER_LIP_LOWER)]]
    )
    opened = _polygon_mask(
        frame.shape,
        np.concatenate(
            [
                renderer.deformed_vertices(params)[list(topo.INNER_LIP_UPPER)],
                renderer.deformed_vertices(params)[list(topo.INNER_LIP_LOWER)][::-1],
            ]
        ),
    )
    changed = np.abs(frame.astype(int) - rest).max(axis=2) > 25
    print(
        f"photo, open mouth: {changed[mouth].mean():.0%} of the mouth changed, opening "
        f"{opened.sum()} px, mean brightness there {rest[opened].mean():.0f} -> "
        f"{frame[opened].mean():.0f}"
    )
    assert changed[mouth].mean() > 0.3
    assert opened.sum() > 0.1 * np.ptp(inner[:, 0]) ** 2, "the lips part"
    assert frame[opened].mean() < rest[opened].mean() - 30, "a dark mouth opens"
    # Away from the face (the top of the frame) nothing moves.
    assert np.array_equal(frame[:60], rest[:60])


# -- a drawing the detectors do not see ----------------------------------------------------------


def test_a_cartoon_defeats_detection_but_rigs_from_points(
    cat: tuple[np.ndarray, Points], cat_rig: CharacterRig
) -> None:
    image, placed = cat
    with pytest.raises(NoFaceFoundError, match="no face found"):
        build_rig(image)
    assert cat_rig.face.source == "manual"
    for name, xy in points_of_rig(cat_rig).items():
        if name in placed:
            assert np.allclose(xy, placed[name], atol=0.01), name
    # The mesh covers the whole working image (no holes for the renderer).
    w, h = cat_rig.size
    covered = np.zeros((h, w), np.uint8)
    verts = cat_rig.mesh.vertices[:, :2]
    for tri in cat_rig.mesh.triangles:
        cv2.fillConvexPoly(covered, np.round(verts[tri] * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    assert covered[1:-1, 1:-1].all()


def test_the_cartoon_blinks(cat_renderer: MeshWarpRenderer) -> None:
    rest = cat_renderer.render(FaceParams())
    closed = cat_renderer.render(FaceParams(blink_left=1.0, blink_right=1.0))
    wink = cat_renderer.render(FaceParams(blink_left=1.0))
    verts = cat_renderer.rest
    eyes = {}
    for side, (upper, lower) in {
        "right": (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
        "left": (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
    }.items():
        eyes[side] = _polygon_mask(rest.shape, verts[list(upper) + list(lower[::-1])], grow=3)
    for side, mask in eyes.items():
        green_open = _near(rest, EYE_GREEN)[mask].sum()
        green_closed = _near(closed, EYE_GREEN)[mask].sum()
        changed = (np.abs(closed.astype(int) - rest).max(axis=2) > 25)[mask].mean()
        print(f"cartoon {side} eye: green {green_open} -> {green_closed} px, {changed:.0%} changed")
        assert green_open > 1000
        assert green_closed < 0.1 * green_open, f"the {side} eye closes over the whole eye"
        assert changed > 0.5
    # A wink closes the character's left eye only, and nothing moves outside the eyes.
    assert (
        _near(wink, EYE_GREEN)[eyes["left"]].sum()
        < 0.1 * _near(rest, EYE_GREEN)[eyes["left"]].sum()
    )
    assert np.array_equal(wink[eyes["right"]], rest[eyes["right"]])
    around = np.zeros(rest.shape[:2], bool)
    for mask in eyes.values():
        around |= cv2.dilate(mask.astype(np.uint8), np.ones((61, 61), np.uint8)) > 0
    assert np.array_equal(closed[~around], rest[~around])


def test_the_cartoon_opens_its_mouth_without_tearing(cat_renderer: MeshWarpRenderer) -> None:
    rest = cat_renderer.render(FaceParams())
    params = FaceParams(jaw_open=1.0)
    frame = cat_renderer.render(params)
    assert frame.shape == (720, 1280, 3) and frame.std() > 10
    verts = cat_renderer.deformed_vertices(params)
    lips = _polygon_mask(frame.shape, _outer_lips(verts), grow=3)
    dark_rest = (rest.max(axis=2) < 70) & lips
    dark = (frame.max(axis=2) < 70) & lips
    opened = _polygon_mask(
        frame.shape,
        np.concatenate(
            [verts[list(topo.INNER_LIP_UPPER)], verts[list(topo.INNER_LIP_LOWER)][::-1]]
        ),
    )
    red_rest = _near(rest, LIP_RED, 50)[lips].sum()
    red = _near(frame, LIP_RED, 50)[lips].sum()
    print(
        f"cartoon mouth: opening {opened.sum()} px, dark {dark_rest.sum()} -> {dark.sum()} px, "
        f"lip line {red_rest} -> {red} px"
    )
    assert opened.sum() > 2000, "the mouth opens wide"
    assert dark.sum() > dark_rest.sum() + 0.5 * opened.sum(), "a dark mouth shows"
    # No tearing: all of the new dark sits within the lips (strokes like the whiskers move a
    # pixel or two with the cheeks, so what lies next to dark ink at rest does not count), the
    # drawn lip line is still there around it, and no background shows through in the face.
    ink = cv2.dilate((rest.max(axis=2) < 70).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    new_dark = (frame.max(axis=2) < 70) & ~ink
    assert new_dark[lips].sum() >= 0.99 * new_dark.sum()
    assert red > 0.6 * red_rest
    oval = _polygon_mask(frame.shape, cat_renderer.rest[list(topo.FACE_OVAL)], grow=-6)
    assert not _near(frame, PAPER, 30)[oval].any(), "the background shows through the face"


def test_a_tilted_drawing(cat: tuple[np.ndarray, Points]) -> None:
    image, placed = cat
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -25, 1.0)  # clockwise in the image
    tilted = cv2.warpAffine(image, m, (w, h), borderValue=PAPER)
    moved = {
        n: (float(m[0] @ (x, y, 1.0)), float(m[1] @ (x, y, 1.0))) for n, (x, y) in placed.items()
    }
    rig = build_rig_from_points(tilted, moved)
    renderer = MeshWarpRenderer(rig)
    rest, frame = renderer.render(FaceParams()), renderer.render(FaceParams(jaw_open=1.0))
    lips = _polygon_mask(
        rest.shape, _outer_lips(renderer.deformed_vertices(FaceParams(jaw_open=1.0))), grow=3
    )
    assert ((frame.max(axis=2) < 70) & lips).sum() > ((rest.max(axis=2) < 70) & lips).sum() + 1000


def test_points_survive_the_working_crop(cat: tuple[np.ndarray, Points]) -> None:
    """A big canvas is cropped and scaled down to a working image; points_of_rig maps back."""
    image, placed = cat
    big = np.full((1800, 2400, 3), PAPER, np.uint8)
    big[500:1800, 900:2400] = cv2.resize(image, (1920, 1440))[:1300, :1500]
    scaled = {n: (x * 3 + 900, y * 3 + 500) for n, (x, y) in placed.items()}
    rig = build_rig_from_points(big, scaled)
    assert rig.crop[2] < 1.0 and max(rig.size) < 2400
    for name, xy in points_of_rig(rig).items():
        if name in scaled:
            assert np.allclose(xy, scaled[name], atol=0.05), name


def test_progress_is_reported(cat: tuple[np.ndarray, Points]) -> None:
    said: list[str] = []
    build_rig_from_points(*cat, progress=said.append)
    assert said[:2] == ["checking the placed points", "fitting the face to the placed points"]
    assert "building the mesh" in said


def test_save_and_load_keep_the_manual_source(cat_rig: CharacterRig, tmp_path: Path) -> None:
    path = tmp_path / "cat.rig"
    cat_rig.save(path)
    loaded = load_rig(path)
    assert loaded.face.source == "manual"
    assert np.allclose(loaded.face.points, cat_rig.face.points)
    assert np.allclose(loaded.mesh.vertices, cat_rig.mesh.vertices)
    assert np.array_equal(loaded.image, cat_rig.image)
    assert loaded.crop == cat_rig.crop and loaded.source_size == cat_rig.source_size


# -- bad points --------------------------------------------------------------------------------


def _mirrored(points: Points, *, mouth: bool) -> Points:
    """Left and right labels swapped, as when someone labels by the image's sides."""
    out = dict(points)
    for name in points:
        if "right" in name and ("eye" in name or mouth):
            other = name.replace("right", "left")
            out[name], out[other] = points[other], points[name]
    return out


def _shrunk(points: Points, factor: float) -> Points:
    return {n: (320 + (x - 320) * factor, 260 + (y - 260) * factor) for n, (x, y) in points.items()}


def _with(points: Points, **changes: object) -> dict[str, object]:
    out: dict[str, object] = dict(points)
    for name, value in changes.items():
        if value is None:
            out.pop(name)
        else:
            out[name] = value
    return out


def _bad_points(p: Points) -> dict[str, tuple[Mapping[str, object], list[str]]]:
    """case -> (points, words the error must contain)."""
    cx, cy = 320.0, 260.0
    return {
        "missing point": (_with(p, chin=None), ["missing required point", "chin"]),
        "missing points": (_with(p, chin=None, nose_tip=None), ["chin", "nose_tip"]),
        "unknown point": (_with(p, left_ear=(200.0, 100.0)), ["unknown point", "left_ear"]),
        "not a number": (_with(p, nose_tip=(math.nan, cy)), ["nose_tip", "non-finite"]),
        "infinite": (_with(p, chin=(cx, math.inf)), ["chin", "non-finite"]),
        "left of the image": (_with(p, face_right=(-3.0, cy)), ["face_right", "outside"]),
        "below the image": (_with(p, chin=(cx, 481.0)), ["chin", "outside"]),
        "not a pair": (_with(p, chin="320,385"), ["chin", "pair of numbers"]),
        "three numbers": (_with(p, chin=[cx, 385.0, 0.0]), ["chin", "pair of numbers"]),
        "a boolean": (_with(p, chin=[True, 385.0]), ["chin", "pair of numbers"]),
        "swapped eyes": (_mirrored(p, mouth=False), ["right_eye", "left_eye", "swapped"]),
        "all sides swapped": (_mirrored(p, mouth=True), ["swapped", "character's own"]),
        "mouth above the eyes": (
            _with(p, mouth_right=(cx - 52, cy - 90), mouth_left=(cx + 52, cy - 90)),
            ["mouth_right", "mouth_left", "below the eyes"],
        ),
        "eyes on top of each other": (
            _with(
                p,
                left_eye_inner=(p["right_eye_inner"][0] + 3, p["right_eye_inner"][1]),
                left_eye_outer=(p["right_eye_outer"][0] + 3, p["right_eye_outer"][1]),
                left_eye_top=None,
                left_eye_bottom=None,
            ),
            ["eyes are", "px apart", "on top of each other"],
        ),  # fmt: skip
        "face too small": (_shrunk(p, 0.09), ["eyes are", "too small"]),
        "eye corners on one spot": (
            _with(p, right_eye_inner=(p["right_eye_outer"][0] + 1, p["right_eye_outer"][1])),
            ["right_eye_outer", "right_eye_inner", "on top of each other"],
        ),
        "eye corners swapped": (
            _with(p, right_eye_outer=p["right_eye_inner"], right_eye_inner=p["right_eye_outer"]),
            ["right_eye_outer", "right_eye_inner", "swapped"],
        ),
        "mouth corners swapped": (
            _with(p, mouth_right=p["mouth_left"], mouth_left=p["mouth_right"]),
            ["mouth_right", "mouth_left", "swapped"],
        ),
        "nose below the mouth": (_with(p, nose_tip=(cx, cy + 70)), ["nose_tip"]),
        "chin above the mouth": (_with(p, chin=(cx, cy + 50)), ["chin", "below the mouth"]),
        "lips upside down": (
            _with(p, upper_lip=p["lower_lip"], lower_lip=p["upper_lip"]),
            ["upper_lip", "lower_lip"],
        ),
        "eye top beside the eye": (
            _with(p, right_eye_top=(p["right_eye_outer"][0] - 10, cy - 54)),
            ["right_eye_top", "between"],
        ),
        "eye top under its bottom": (
            _with(p, right_eye_top=p["right_eye_bottom"], right_eye_bottom=p["right_eye_top"]),
            ["right_eye_top", "right_eye_bottom"],
        ),
        "forehead below the eyes": (_with(p, forehead=(cx, cy)), ["forehead", "above the eyes"]),
        "face edge inside the eye": (
            _with(p, face_right=(p["right_eye_outer"][0] + 10, cy)),
            ["face_right", "farther out"],
        ),
        "folds the face": (
            _with(p, mouth_right=(cx + 8, cy + 32)),
            ["bend the face over itself", "mouth_right"],
        ),
    }


@pytest.mark.parametrize("case", list(_bad_points(draw_cat()[1])))
def test_bad_points_are_a_clear_error(cat: tuple[np.ndarray, Points], case: str) -> None:
    image, placed = cat
    points, words = _bad_points(placed)[case]
    with pytest.raises(InvalidInputError) as info:
        build_rig_from_points(image, points)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_a_face_cut_off_by_the_border_is_a_clear_error(cat: tuple[np.ndarray, Points]) -> None:
    image, placed = cat
    strip = np.ascontiguousarray(image[:, 225:415])  # just wider than the eyes
    points = {n: (x - 225, y) for n, (x, y) in placed.items() if n in REQUIRED_POINTS}
    with pytest.raises(InvalidInputError, match="beyond the image border"):
        build_rig_from_points(strip, points)


def test_other_bad_arguments(cat: tuple[np.ndarray, Points]) -> None:
    image, placed = cat
    with pytest.raises(InvalidInputError, match="mapping"):
        build_rig_from_points(image, list(placed.items()))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="RGB uint8"):
        build_rig_from_points(image[..., 0], placed)


# -- points files and the command line ----------------------------------------------------------


def test_points_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"chin": [1, 2], "nose_tip": [3.5, 4]}))
    assert load_points(plain) == {"chin": [1, 2], "nose_tip": [3.5, 4]}
    api = tmp_path / "api.json"  # the body of the REST API's re-rig call
    api.write_text(json.dumps({"points": {"chin": {"x": 1, "y": 2}}}))
    assert load_points(api) == {"chin": [1, 2]}
    for text, words in (
        ("{not json", "not valid JSON"),
        ("[[1, 2]]", "JSON object"),
        ('"chin"', "JSON object"),
    ):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(InvalidInputError, match=words):
            load_points(bad)
    with pytest.raises(InvalidInputError, match="no such points file"):
        load_points(tmp_path / "missing.json")


def test_rig_help_names_every_point(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["rig", "--help"])
    text = capsys.readouterr().out
    for name in MANUAL_POINTS:
        assert name in text, name


def test_cli_rig_from_points(cat: tuple[np.ndarray, Points], tmp_path: Path) -> None:
    image, placed = cat
    image_path, points_path = tmp_path / "cat.png", tmp_path / "cat.json"
    Image.fromarray(image).save(image_path)
    points_path.write_text(json.dumps({n: [x, y] for n, (x, y) in placed.items()}))
    out_rig, preview = tmp_path / "cat.rig", tmp_path / "cat_preview.png"

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "talkie.cli", *map(str, args)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    done = run("rig", image_path, "--points", points_path, "--save", out_rig, "--preview", preview)
    assert done.returncode == 0, done.stderr
    assert "face from manual" in done.stdout
    assert load_rig(out_rig).face.source == "manual"
    assert Image.open(preview).size[0] >= 900

    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps({n: list(v) for n, v in _mirrored(placed, mouth=True).items()}))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({n: list(v) for n, v in placed.items() if n != "chin"}))
    for points, words in (
        (swapped, "swapped"),
        (missing, "missing required point chin"),
        (tmp_path / "nowhere.json", "no such points file"),
    ):
        out = tmp_path / "bad.rig"
        done = run("rig", image_path, "--points", points, "--save", out)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("talkie: error:") and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert not out.exists()
