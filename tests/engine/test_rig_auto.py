"""Any style, automatically where possible: a wrong detection becomes "needs points" (never a
broken character), and drawings, emoji and animals get a first guess of their points.

The faces are drawn or shipped at test time (``talkie.quality.sample_faces``); each drawn face
comes with where its points really are, so the guess is scored against the truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from talkie.errors import ImplausibleFaceError, NoFaceFoundError
from talkie.quality import sample_faces as faces
from talkie.rig import build_rig, build_rig_from_points
from talkie.rig.guess import guess_points
from talkie.rig.manual import MANUAL_POINTS, validate_points
from talkie.rig.plausibility import check_face


def test_a_misread_emoji_needs_points_and_says_why() -> None:
    emoji = faces.emoji()
    # MediaPipe does "find" a face in it: the lip outline lands on the teeth, the eyes above.
    from talkie.rig import detect

    assert detect.face_landmarks(emoji.image) is not None
    with pytest.raises(ImplausibleFaceError, match="outline of the lips is not on the lips"):
        build_rig(emoji.image)


def test_an_upside_down_photo_is_not_animated_with_its_mouth_on_the_hair(
    astronaut: np.ndarray,
) -> None:
    """The landmark model finds the eyes of an upside-down portrait but lays the face outline
    and the mouth over the hair, as if it were upright: that mesh must not be animated."""
    with pytest.raises(ImplausibleFaceError, match="lips"):
        build_rig(np.ascontiguousarray(astronaut[::-1, ::-1]))


def test_an_implausible_face_is_a_no_face_error_for_old_callers() -> None:
    assert issubclass(ImplausibleFaceError, NoFaceFoundError)


def test_real_faces_pass_the_check(astronaut: np.ndarray, astronaut_rig) -> None:  # type: ignore[no-untyped-def]
    report = check_face(astronaut_rig.image, astronaut_rig.face.points)
    assert report.ok, report
    assert report.scores["lip_edge_ratio"] > 2.0
    cartoon = build_rig(faces.cartoon().image)  # a drawn human face is read correctly
    assert check_face(cartoon.image, cartoon.face.points).ok


def _swap_mouth_and_eyes(landmarks: np.ndarray) -> np.ndarray:
    """The mesh flipped upside down about the nose: the mouth above the eyes."""
    out = landmarks.copy()
    nose_y = landmarks[1, 1]
    out[:, 1] = 2 * nose_y - landmarks[:, 1]
    return out


def _without_lips(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The photo with its mouth painted over in flat skin colour: the mesh's lip outline then
    lies on no edge at all, as on a misread drawing."""
    import cv2

    from talkie.rig import topology as topo

    mouth = landmarks[list(topo.OUTER_LIP_UPPER + topo.OUTER_LIP_LOWER[::-1]), :2]
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(mouth).astype(np.int32)], 255)
    mask = cv2.dilate(mask, np.ones((15, 15), np.uint8))
    cheeks = landmarks[[50, 280], :2].astype(int)
    skin = np.median(image[cheeks[:, 1], cheeks[:, 0]], axis=0)
    out = image.copy()
    out[mask > 0] = skin
    return out


def test_each_check_fails_on_its_own_kind_of_wrong_mesh(astronaut_rig) -> None:  # type: ignore[no-untyped-def]
    image, lm = astronaut_rig.image, astronaut_rig.face.points
    flipped = check_face(image, _swap_mouth_and_eyes(lm))
    assert any("not in order" in p for p in flipped.problems)
    no_lips = check_face(_without_lips(image, lm), lm)
    assert any("lips" in p for p in no_lips.problems), no_lips
    squashed = lm.copy()  # the right eye and mouth corner pulled in to the face's middle
    squashed[[468, 61], 0] = lm[168, 0] - 0.15 * (lm[168, 0] - lm[[468, 61], 0])
    assert any("sides" in p for p in check_face(image, squashed).problems)


@pytest.mark.parametrize("make", [faces.cartoon, faces.emoji, faces.chelsea, faces.drawn_cat])
def test_the_first_guess_lands_near_the_true_points(make) -> None:  # type: ignore[no-untyped-def]
    face = make()
    assert face.points is not None
    guess = guess_points(face.image)
    # Every point but the two of a mouth drawn open (which a person adds when needed).
    assert set(guess.points) == set(MANUAL_POINTS) - {"mouth_open_top", "mouth_open_bottom"}
    h, w = face.image.shape[:2]
    validate_points(guess.points, (w, h))  # always usable as it is
    truth = {k: np.array(v) for k, v in face.points.items()}
    eye_distance = np.linalg.norm(
        (truth["left_eye_outer"] + truth["left_eye_inner"]) / 2
        - (truth["right_eye_outer"] + truth["right_eye_inner"]) / 2
    )
    errors = [
        np.linalg.norm(np.array(guess.points[k]) - truth[k]) / eye_distance
        for k in truth
        if k in guess.points
    ]
    print(f"{face.name}: {guess.found}, mean error {np.mean(errors):.2f} eye distances")
    assert guess.found in ("features", "eyes")
    assert np.mean(errors) < 0.25
    # The eyes and mouth corners, what a person checks first, are close.
    for key in ("right_eye_outer", "left_eye_outer", "mouth_right", "mouth_left"):
        assert np.linalg.norm(np.array(guess.points[key]) - truth[key]) < 0.45 * eye_distance


@pytest.mark.parametrize("kind", ["blank", "noise", "tiny"])
def test_a_guess_on_anything_is_valid(kind: str) -> None:
    rng = np.random.default_rng(1)
    image = {
        "blank": np.full((300, 500, 3), 90, np.uint8),
        "noise": rng.integers(0, 255, (400, 300, 3), dtype=np.uint8),
        "tiny": np.full((40, 40, 3), 200, np.uint8),
    }[kind]
    guess = guess_points(image)
    validate_points(guess.points, (image.shape[1], image.shape[0]))


def test_the_guess_rigs_and_a_misread_emoji_animates_from_it() -> None:
    emoji = faces.emoji()
    rig = build_rig_from_points(emoji.image, guess_points(emoji.image).points)
    assert rig.face.source == "manual"


def test_a_mouth_drawn_open_is_opened_in_the_mesh_too() -> None:
    from talkie.errors import InvalidInputError

    emoji = faces.emoji()
    points = dict(emoji.points or {})
    rig = build_rig_from_points(emoji.image, points)
    x0, y0, scale = rig.crop
    inner_top, inner_bottom = rig.face.points[[13, 14], :2] / scale + (x0, y0)
    assert np.hypot(*(inner_top - points["mouth_open_top"])) < 2.0
    assert np.hypot(*(inner_bottom - points["mouth_open_bottom"])) < 2.0
    alone = {k: v for k, v in points.items() if k != "mouth_open_bottom"}
    with pytest.raises(InvalidInputError, match="mouth_open_top needs its partner"):
        build_rig_from_points(emoji.image, alone)
    upside = dict(points, mouth_open_top=points["mouth_open_bottom"],
                  mouth_open_bottom=points["mouth_open_top"])  # fmt: skip
    with pytest.raises(InvalidInputError, match="mouth_open_top must be above"):
        build_rig_from_points(emoji.image, upside)
